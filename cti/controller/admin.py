"""Who works here, changed live through the admin API: advisors (and supervisors,
coaches, admins) added, changed and removed without editing the YAML or
restarting.

Each change is stored with its audit line first (cti/store/advisors.py), then
applied everywhere that knows the people on the floor: the directory (logins),
the skill book and the distributor (offers), the SIP edge's users table
(registrations; a restarted edge renders it from the directory). A password is
hashed here (argon2id for the API, HA1 for SIP digest) and never stored, logged
or audited in clear.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import ValidationError

from cti.config import AdvisorSettings
from cti.controller.context import FlowContext
from cti.core.advisors import AdminError, record_of
from cti.core.skills import skills_of

log = logging.getLogger("cti.admin")

MIN_PASSWORD = 10
#: What a change may set; "password" is turned into the two hashes.
FIELDS = ("display_name", "role", "languages", "topics", "trainings")
SKILL_FIELDS = ("languages", "topics", "trainings")


class SipUsers(Protocol):
    """The SIP edge's users table (the gateway keeps a live Kamailio in step)."""

    async def set(self, name: str, ha1: str) -> None: ...
    async def remove(self, name: str) -> None: ...


class Logins(Protocol):
    """The API's tokens (cti/api/auth.py Authenticator)."""

    def revoke(self, user: str) -> int: ...


class ApplyActions(Protocol):
    def __call__(self, actions: list[Any]) -> None: ...


class AdvisorAdmin:
    def __init__(self, ctx: FlowContext, apply: ApplyActions, logins: Logins,
                 sip: SipUsers) -> None:
        self.ctx = ctx
        self._apply = apply
        self._logins = logins
        self._sip = sip

    async def add(self, name: str, password: str, fields: Mapping[str, Any],
                  by: str, address: str | None = None) -> AdvisorSettings:
        ctx = self.ctx
        async with ctx.state_lock:
            if name in ctx.advisors:
                raise AdminError(409, f"there is already an advisor {name!r}")
            advisor = self._validated({"name": name, **fields,
                                       **await self._hashes(name, password)})
            details = _audited(record_of(advisor))
            await ctx.store.advisors.save(name, record_of(advisor), "advisor.add", by,
                                          details, address, new_skills=True)
            ctx.advisors.put(advisor)
            if advisor.role == "advisor":
                ctx.distributor.add_advisor(ctx.skills.add(advisor))
            await self._sip.set(name, advisor.sip_ha1)
        log.info("advisor added advisor=%s role=%s by=%s", name, advisor.role, by)
        return advisor

    async def update(self, name: str, fields: Mapping[str, Any], password: str | None,
                     by: str, address: str | None = None) -> AdvisorSettings:
        """Display name, role, skills, a new password: whatever ``fields`` names."""
        ctx = self.ctx
        async with ctx.state_lock:
            old = self._existing(name)
            data = record_of(old)
            if name in ctx.skills.names():  # the live skills (a supervisor's edit too)
                data.update(ctx.skills.get(name).as_dict())
            data.update(fields)
            if password is not None:
                data.update(await self._hashes(name, password))
            new = self._validated(data)
            new_skills = any(k in fields for k in SKILL_FIELDS)
            self._check_role_change(old, new)
            details = {k: v for k, v in _audited(record_of(new)).items() if k in fields}
            if password is not None:
                details["password_changed"] = True
            await ctx.store.advisors.save(name, record_of(new), "advisor.update", by,
                                          details, address, new_skills=new_skills)
            if old.role != new.role or password is not None:
                # A token carries its role: the user logs in again with the new one.
                # A new password (the old one leaked?) ends the logins made with it.
                await ctx.store.advisors.revoke_sessions(name)
                self._logins.revoke(name)
            ctx.advisors.put(new)
            self._apply_routing(old, new, new_skills)
            if new.sip_ha1 != old.sip_ha1:
                await self._sip.set(name, new.sip_ha1)
        log.info("advisor changed advisor=%s fields=%s by=%s", name, sorted(details), by)
        return new

    async def remove(self, name: str, by: str, address: str | None = None) -> None:
        """Logged out first (refused while on a call), then their logins end and
        their phone's registration goes; the name stays removed after a restart."""
        ctx = self.ctx
        async with ctx.state_lock:
            old = self._existing(name)
            takes_calls = name in ctx.distributor.advisor_names()
            if takes_calls:
                try:  # no offer can reach them from here on
                    actions = ctx.distributor.remove_advisor(name, time.time())
                except ValueError as e:
                    raise AdminError(409, str(e)) from None
                self._apply(actions)
            try:
                await ctx.store.advisors.remove(name, by, address)
            except Exception:
                if takes_calls:  # not removed: back, logged out
                    ctx.distributor.add_advisor(ctx.skills.get(name).profile(name))
                raise
            ctx.advisors.remove(name)
            ctx.skills.remove(name)
            ended = self._logins.revoke(name)
            await self._sip.remove(name)
        log.info("advisor removed advisor=%s role=%s by=%s tokens_ended=%d", name, old.role,
                 by, ended)

    # ------------------------------------------------------------ helpers
    def _existing(self, name: str) -> AdvisorSettings:
        advisor = self.ctx.advisors.get(name)
        if advisor is None:
            raise AdminError(404, "no such advisor")
        return advisor

    def _check_role_change(self, old: AdvisorSettings, new: AdvisorSettings) -> None:
        if old.role == "advisor" and new.role != "advisor":
            state = self.ctx.distributor.advisor_state(old.name).value
            if state in ("reserved", "on_call"):
                raise AdminError(409, f"advisor {old.name!r} is {state}: change the role "
                                      "after the call")

    def _apply_routing(self, old: AdvisorSettings, new: AdvisorSettings,
                       new_skills: bool) -> None:
        ctx, now = self.ctx, time.time()
        if old.role == "advisor" and new.role != "advisor":
            self._apply(ctx.distributor.remove_advisor(old.name, now))
            ctx.skills.remove(old.name)
        elif old.role != "advisor" and new.role == "advisor":
            ctx.distributor.add_advisor(ctx.skills.add(new))
        elif new.role == "advisor" and new_skills:
            profile = ctx.skills.set(new.name, skills_of(new))
            self._apply(ctx.distributor.update_advisor(profile, now))

    def _validated(self, data: Mapping[str, Any]) -> AdvisorSettings:
        try:
            return AdvisorSettings.model_validate(data)
        except ValidationError as e:
            raise AdminError(422, "; ".join(err["msg"] for err in e.errors())) from None

    async def _hashes(self, name: str, password: str) -> dict[str, str]:
        from cti.api.auth import hash_password, sip_ha1

        if len(password) < MIN_PASSWORD:
            raise AdminError(422, f"a password has at least {MIN_PASSWORD} characters")
        # argon2 takes tens of ms: not on the event loop.
        return {"password_hash": await asyncio.to_thread(hash_password, password),
                "sip_ha1": sip_ha1(name, self.ctx.settings.sip.realm, password)}


def _audited(record: Mapping[str, Any]) -> dict[str, Any]:
    """What the audit says of a record: no hash (a hash is as good as the password
    for SIP digest, and guessable offline for the API)."""
    return {k: v for k, v in record.items() if k not in ("password_hash", "sip_ha1", "name")}

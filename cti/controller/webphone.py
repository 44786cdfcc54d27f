"""Short-lived SIP credentials for the browser phone of /agent.

The page never holds the advisor's long-lived SIP password. After an API login it
asks for credentials of its own: a random authorization user and password, valid
for the advisor's AOR only, over WebSocket only, until the API token ends (logout
or expiry). The edge keeps them in htables (webha1, webaor, webexp: cfg route
WEB_AUTH) and checks the expiry itself; at the end the controller deletes them and
drops the browser's registration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cti.config import AdvisorSettings, Settings
from cti.edge.render import ha1
from cti.edge.rpc import EdgeRpc, EdgeRpcError

log = logging.getLogger("cti.webphone")


@dataclass(frozen=True)
class WebCredentials:
    advisor: str
    auth_user: str
    password: str = field(repr=False)
    expires_at: float

    def public(self, settings: Settings, secure: bool = False) -> dict[str, Any]:
        """What the page gets (POST /api/v1/agents/me/phone); ``secure``: the page
        is served over https, whose browsers refuse ws:// (mixed content): the
        wss URL then, when there is one (without, the page says what is wrong)."""
        s, rtc = settings.sip, settings.webrtc
        url = (f"wss://{s.ip}:{rtc.wss_port}" if secure and rtc.wss_port
               else f"ws://{s.ip}:{rtc.ws_port}")
        return {
            "mode": "browser", "ws_url": url,
            "uri": f"sip:{self.advisor}@{s.realm}", "auth_user": self.auth_user,
            "password": self.password, "realm": s.realm, "expires_at": self.expires_at,
            "audio_processing": settings.webrtc.audio_processing,
        }


class BrowserPhones:
    """The credentials of every logged-in page, keyed by its API token."""

    def __init__(self, settings: Settings,
                 advisor: Callable[[str], AdvisorSettings | None] | None = None) -> None:
        self.settings = settings
        # Who works here, live (the admin API adds advisors): the config's otherwise.
        self._advisor = advisor or settings.advisor
        self.rpc: EdgeRpc | None = None  # set once the edge runs
        self._by_token: dict[str, WebCredentials] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def enabled_for(self, advisor: str) -> bool:
        a = self._advisor(advisor)
        return self.settings.webrtc.enabled and a is not None and a.phone == "browser"

    async def issue(self, token: str, advisor: str, expires_at: float) -> WebCredentials:
        """New credentials for this token (a reload replaces the earlier ones)."""
        await self.revoke(token, unregister=False)
        creds = WebCredentials(advisor, f"web-{secrets.token_hex(8)}",
                               secrets.token_urlsafe(18), expires_at)
        await self._push(creds)
        self._by_token[token] = creds
        # The edge refuses them by its clock anyway; this also drops the binding.
        delay = max(0.0, expires_at - time.time())
        self._timers[token] = asyncio.get_running_loop().call_later(
            delay, self.revoke_soon, token)
        log.info("browser phone credentials for advisor=%s auth_user=%s until %.0f",
                 advisor, creds.auth_user, expires_at)
        return creds

    async def _push(self, c: WebCredentials) -> None:
        if self.rpc is None:
            raise EdgeRpcError("htable.sets", "the SIP edge is not running")
        realm = self.settings.sip.realm
        await self.rpc.call("htable.sets", "webha1", c.auth_user,
                            ha1(c.auth_user, realm, c.password))
        await self.rpc.call("htable.sets", "webaor", c.auth_user, c.advisor)
        await self.rpc.call("htable.seti", "webexp", c.auth_user, int(c.expires_at))

    def revoke_soon(self, token: str) -> None:
        """From the token's end (logout: Authenticator.on_end, or the expiry timer)."""
        if token not in self._by_token:
            return
        task = asyncio.get_running_loop().create_task(self.revoke(token))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def revoke_advisor_soon(self, advisor: str) -> None:
        """Every page of an advisor whose logins all ended (Authenticator.on_user_end)."""
        for token in [t for t, c in self._by_token.items() if c.advisor == advisor]:
            self.revoke_soon(token)

    async def revoke(self, token: str, unregister: bool = True) -> None:
        timer = self._timers.pop(token, None)
        if timer is not None:
            timer.cancel()
        creds = self._by_token.pop(token, None)
        if creds is None or self.rpc is None:
            return
        try:
            for table in ("webha1", "webaor", "webexp"):
                with contextlib.suppress(EdgeRpcError):  # gone already (edge restart)
                    await self.rpc.call("htable.delete", table, creds.auth_user)
            if unregister:
                await self._drop_browser_bindings(creds.advisor)
        except EdgeRpcError as e:
            log.warning("could not revoke browser phone credentials of advisor=%s: %s",
                        creds.advisor, e)
            return
        log.info("browser phone credentials of advisor=%s auth_user=%s revoked",
                 creds.advisor, creds.auth_user)

    async def _drop_browser_bindings(self, advisor: str) -> None:
        """The advisor's WebSocket registrations (a desk phone's stays)."""
        assert self.rpc is not None
        try:
            result = await self.rpc.call("ul.lookup", "location", advisor)
        except EdgeRpcError:
            return  # not registered
        for contact in _contacts(result):
            address = str(contact.get("Address", ""))
            if "transport=ws" in address or "transport=ws" in str(contact.get("Received", "")):
                with contextlib.suppress(EdgeRpcError):
                    await self.rpc.call("ul.rm_contact", "location", advisor, address)

    async def restore(self) -> None:
        """A restarted edge starts with empty htables: give it the live credentials."""
        now = time.time()
        for token, creds in list(self._by_token.items()):
            if creds.expires_at <= now:
                await self.revoke(token)
                continue
            try:
                await self._push(creds)
            except EdgeRpcError as e:
                log.warning("could not restore browser phone credentials of advisor=%s: %s",
                            creds.advisor, e)

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _contacts(result: Any) -> list[dict[str, Any]]:
    """ul.lookup's answer: {"AoR": ..., "Contacts": [{"Contact": {...}}, ...]}."""
    out: list[dict[str, Any]] = []
    for item in (result or {}).get("Contacts", []) if isinstance(result, dict) else []:
        contact = item.get("Contact", item) if isinstance(item, dict) else None
        if isinstance(contact, dict):
            out.append(contact)
    return out

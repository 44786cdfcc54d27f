"""The crisis line's logic: starting and ending a crisis, what it changes for a
caller (announcement, IVR option, routing), and the overflow to the crisis team.

Hooks are synchronous; what must be stored (counters, timers) runs in tasks
this class keeps and logs if they fail.
"""

from __future__ import annotations

import time
from typing import Any

from cti.core.views import CallView
from cti.plugins.api import ActionError, IvrExtension, MenuOption, RoutingRequest, Services
from plugins.crisis_line.schemas import CrisisLineSettings, CrisisStart
from plugins.crisis_line.storage import Crisis, CrisisRepository

ANNOUNCE = "crisis_line.announce"
OPTION = "crisis_line.option"
#: Fixed prompt of prompts.yaml (built by cti prompts build).
OVERFLOW_PROMPT = "crisis_line.overflow"
#: The call flag that marks a crisis call (its value: the crisis's name).
FLAG = "crisis"
OVERFLOW = "overflow"


class BadCrisis(ActionError):
    """A start request whose values do not fit the config (the API answers 422)."""


class CrisisLine:
    def __init__(self, services: Services) -> None:
        self.s = services
        self.cfg: CrisisLineSettings = services.settings
        self.repo = CrisisRepository(services.store)
        self.current: Crisis | None = None

    # ------------------------------------------------------------ lifecycle
    async def resume(self) -> None:
        """At load: a crisis in force before a restart is in force again."""
        self.current = self.repo.active()
        self.s.timers.on(OVERFLOW, self._overflow_due)
        crisis = self.current
        if crisis is None:
            return
        self.s.log.info("crisis in force since a previous run crisis_id=%s name=%s",
                        crisis.crisis_id, crisis.name)
        # The prompt cache may have been cleared meanwhile: speak what is missing.
        languages = [m.code for m in self.s.gateway.ivr.languages]
        for key, texts in crisis.extra.get("texts", {}).items():
            if not all(self.s.prompts.has(lang, key) for lang in languages):
                await self.s.prompts.speak(key, texts)

    async def start(self, req: CrisisStart, by: str | None) -> Crisis:
        if self.current is not None:
            raise ActionError(f"crisis {self.current.name!r} is in force: end it first")
        cfg, gw = self.cfg, self.s.gateway
        team = req.team or cfg.team
        if team not in {d.key for d in gw.directory}:
            raise BadCrisis(f"team {team!r} is not a directory entry")
        for number in [*req.numbers, *([req.dedicated_number] if req.dedicated_number else [])]:
            if number not in gw.sip.hotlines:
                raise BadCrisis(f"{number!r} is not one of the hotlines "
                                  f"({', '.join(gw.sip.hotlines)})")
        crisis = Crisis(
            crisis_id=0, name=req.name, numbers=list(req.numbers),
            dedicated_number=req.dedicated_number,
            priority=cfg.priority if req.priority is None else req.priority,
            training=cfg.training if req.training is None else req.training,
            reserve=list(cfg.reserve if req.reserve is None else req.reserve),
            reserve_training=req.reserve_training or cfg.reserve_training,
            team=team, overflow_after_s=req.overflow_after_s or cfg.overflow_after_s,
            overflow_waiting=req.overflow_waiting or cfg.overflow_waiting,
            started_at=self.s.now(), started_by=by)
        unknown = [n for n in crisis.reserve if n not in {a.name for a in gw.advisors}]
        if unknown:
            raise BadCrisis(f"reserve: {unknown[0]!r} is not an advisor")
        await self._speak(crisis, req)
        crisis.crisis_id = await self.repo.add(crisis)
        self.current = crisis
        await self.s.audit.record("crisis.start", by, {"crisis_id": crisis.crisis_id,
                                                       "name": crisis.name})
        self.s.log.info("crisis started crisis_id=%s name=%s by=%s", crisis.crisis_id,
                        crisis.name, by)
        self.s.events.publish("crisis.started", {
            "crisis_id": crisis.crisis_id, "name": crisis.name, "by": by,
            "numbers": crisis.numbers, "dedicated_number": crisis.dedicated_number,
            "priority": crisis.priority})
        return crisis

    async def end(self, by: str | None) -> Crisis:
        crisis = self.current
        if crisis is None:
            raise ActionError("no crisis is in force")
        crisis.ended_at, crisis.ended_by = self.s.now(), by
        await self.repo.end(crisis.crisis_id, crisis.ended_at, by)
        self.current = None
        await self.s.audit.record("crisis.end", by, {"crisis_id": crisis.crisis_id,
                                                     "name": crisis.name})
        self.s.log.info("crisis ended crisis_id=%s by=%s", crisis.crisis_id, by)
        self.s.events.publish("crisis.ended", {
            "crisis_id": crisis.crisis_id, "name": crisis.name, "by": by,
            "answered": crisis.answered, "overflowed": crisis.overflowed})
        return crisis

    async def _speak(self, crisis: Crisis, req: CrisisStart) -> None:
        """The announcement and the option, spoken now in every language (a recorded
        WAV in the prompts override folder replaces them)."""
        fill = {"name": crisis.name, "digit": self.cfg.digit}
        # The IVR leaves the crisis out unless every language has both prompts: a
        # language given no text gets the default's, else the English (or first) one.
        languages = [m.code for m in self.s.gateway.ivr.languages]
        spoken: dict[str, dict[str, str]] = {}
        for key, given, default in ((ANNOUNCE, req.announcement, self.cfg.announcement),
                                    (OPTION, req.option, self.cfg.option)):
            merged = {**default, **(given or {})}
            fallback = merged.get("en") or next(iter(merged.values()))
            try:
                texts = {lang: merged.get(lang, fallback).format(**fill) for lang in languages}
            except (KeyError, IndexError, ValueError) as e:  # "{x}" or a lone brace
                raise BadCrisis(f"{key.rsplit('.', 1)[-1]}: only {{name}} and {{digit}} "
                                  f"may stand in braces ({e!r})") from None
            await self.s.prompts.speak(key, texts)
            spoken[key] = texts
        crisis.extra["texts"] = spoken

    # -------------------------------------------------------------- callers
    def is_crisis_call(self, call: CallView) -> bool:
        return self.current is not None and call.flags.get(FLAG) == self.current.name

    def incoming(self, call: CallView) -> None:
        crisis = self.current
        if crisis is not None and crisis.dedicated_number == call.dialled:
            self.s.calls.set_flag(call.call_id, FLAG, crisis.name)

    def ivr_extension(self, call: CallView) -> IvrExtension | None:
        crisis = self.current
        if crisis is None or not (crisis.applies_to(call.dialled)
                                  or crisis.dedicated_number == call.dialled):
            return None
        option = MenuOption(menu=self.cfg.menu, digit=self.cfg.digit, prompt=OPTION,
                            label="crisis", topic=self.cfg.topic, priority=crisis.priority,
                            flags={FLAG: crisis.name})
        return IvrExtension(intro=(ANNOUNCE,), options=(option,))

    def routing(self, call: CallView) -> RoutingRequest | None:
        crisis = self.current
        if crisis is None or not self.is_crisis_call(call):
            return None
        return RoutingRequest(priority=crisis.priority,
                              trainings=frozenset({crisis.training} - {""}),
                              reserve=self.reserve_pool(crisis))

    def reserve_pool(self, crisis: Crisis) -> frozenset[str]:
        pool = set(crisis.reserve)
        if crisis.reserve_training:
            pool |= set(self.s.advisors.with_training(crisis.reserve_training))
        return frozenset(pool)

    def queued(self, call: CallView) -> None:
        crisis = self.current
        if crisis is None or not self.is_crisis_call(call):
            return
        waiting = [c for c in self.s.queues.waiting().waiting if self.is_crisis_call(c)]
        if len(waiting) > crisis.overflow_waiting:
            self.s.log.info("crisis overflow: %d waiting call_id=%s", len(waiting), call.call_id)
            self.overflow(call.call_id, "waiting")
            return
        at = (call.queued_at or self.s.now()) + crisis.overflow_after_s
        self.s.spawn(self.s.timers.schedule(OVERFLOW, at, {"call_id": call.call_id},
                                           key=call.call_id))

    def connected(self, call: CallView) -> None:
        crisis = self.current
        if crisis is not None and self.is_crisis_call(call) and call.advisor is not None:
            crisis.answered += 1
            self.s.metrics.inc("answered", "Crisis callers answered by an advisor.")
            self.s.spawn(self.repo.count(crisis.crisis_id, "answered"))

    def ended(self, call: CallView) -> None:
        if call.flags.get(FLAG):
            self.s.spawn(self.s.timers.cancel(call.call_id))

    async def _overflow_due(self, timer_id: str, payload: dict[str, Any]) -> None:
        call = self.s.calls.get(str(payload.get("call_id")))
        if call is not None and call.state == "queued" and self.is_crisis_call(call):
            self.overflow(call.call_id, "waited")

    def overflow(self, call_id: str, why: str) -> None:
        """To the crisis team; back at the head of the queue if the team does not answer."""
        crisis = self.current
        call = self.s.calls.get(call_id)
        if crisis is None or call is None:
            return
        try:
            self.s.calls.transfer(call_id, crisis.team, fallback="queue_head",
                                  by="crisis_line")
        except (ActionError, KeyError) as e:
            self.s.log.warning("crisis overflow failed call_id=%s: %s", call_id, e)
            return
        # "You are being transferred to the crisis team", then music while it rings.
        try:
            self.s.calls.play(call_id, [OVERFLOW_PROMPT])
        except (ActionError, KeyError) as e:
            self.s.log.warning("overflow prompt not played call_id=%s: %s", call_id, e)
        crisis.overflowed += 1
        self.s.metrics.inc("overflows", "Crisis callers sent to the crisis team.", reason=why)
        self.s.spawn(self.repo.count(crisis.crisis_id, "overflowed"))
        self.s.events.publish("crisis.overflowed", {
            "crisis_id": crisis.crisis_id, "team": crisis.team, "reason": why,
            "waited_s": call.waited_s(time.time())}, call_id=call_id)

    def screen_pop(self, call: CallView) -> dict[str, Any] | None:
        if not self.is_crisis_call(call) or self.current is None:
            return None
        return {"crisis": self.current.name, "crisis_id": self.current.crisis_id}

    # --------------------------------------------------------------- reading
    def stats(self, crisis: Crisis) -> dict[str, int]:
        active = self.current is not None and self.current.crisis_id == crisis.crisis_id
        waiting = sum(1 for c in self.s.queues.waiting().waiting
                      if active and self.is_crisis_call(c))
        return {"waiting": waiting, "answered": crisis.answered,
                "overflowed": crisis.overflowed}

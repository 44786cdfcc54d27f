"""The caller's side of the call flow: the IVR, transfers from it, and the wait.

A mixin of :class:`cti.controller.flow.CallFlow` (which owns the helpers it
uses: ``_send``, ``_publish``, ``_spawn``, ``_end_call``, ``_apply_routing``):
kept apart so each file stays readable. Every log line carries the call id.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from cti.config import Settings
from cti.controller.calls import Call, CallRegistry, Leg
from cti.controller.prompts import PromptLibrary
from cti.controller.workers import WorkerCommandError, WorkerPool
from cti.core.views import call_view
from cti.ivr import Done, Flow, Hangup, IvrSession, Play, StopPlay, Transfer
from cti.ivr.announce import wait_announcement
from cti.ivr.hours import is_open
from cti.plugins import PluginHost
from cti.routing import Distributor

log = logging.getLogger("cti.flow")


class IvrFlowMixin:
    settings: Settings
    pool: WorkerPool
    plugins: PluginHost
    prompts: PromptLibrary
    distributor: Distributor
    ivr_flows: dict[str, Flow]
    #: Gateway-wide flags flows branch on (ivr.flags; supervisors change them live).
    flags: dict[str, bool]
    _ivr: dict[str, IvrSession]
    _ivr_timers: dict[str, asyncio.TimerHandle]
    _announce_timers: dict[str, asyncio.TimerHandle]
    _max_wait_timers: dict[str, asyncio.TimerHandle]

    calls: CallRegistry

    if TYPE_CHECKING:  # provided by CallFlow and CallControlMixin
        def _external_failed(self, call: Call, leg: Leg) -> None: ...
        def _send(self, call: Call, cmd: str, **fields: Any) -> None: ...
        def _publish(self, type_: str, call: Call | None, data: dict[str, Any],
                     advisor: str | None = None) -> int: ...
        def _spawn(self, coro: Coroutine[Any, Any, Any], call_id: str | None = None) -> None: ...
        def _end_call(self, call: Call, reason: str, worker_alive: bool = True) -> None: ...
        def _apply_routing(self, actions: list[Any]) -> None: ...

    # ------------------------------------------------------------------ the IVR
    def flow_for(self, dialled: str) -> Flow:
        """The flow of the dialled number, or the standard flow."""
        return self.ivr_flows.get(dialled) or self.ivr_flows[""]

    def _start_ivr(self, call: Call) -> None:
        call.state = "ivr"
        ivr = self.settings.ivr
        guess = ivr.country_languages.get(call.caller_country or "")
        hours = ivr.opening_hours
        open_now = hours is None or is_open(hours.days, hours.timezone, time.time())

        def ask(question: str) -> str | None:
            answer = self.plugins.first("cti_ivr_branch", call_id=call.call_id, call=call_view(call),
                                        question=question)
            return None if answer is None else str(answer)

        session = IvrSession(self.flow_for(call.dialled), guessed_language=guess,
                             open_now=open_now, country=call.caller_country, flags=self.flags,
                             ask=ask)
        self._ivr[call.call_id] = session
        log.info("ivr start call_id=%s flow=%s", call.call_id, session.flow.name)
        self._apply_ivr(call, session, session.start(time.time()))

    def _on_digit(self, call: Call, digit: str, method: str) -> None:
        session = self._ivr.get(call.call_id)
        stage = session.stage if session else call.state
        log.info("dtmf call_id=%s digit=%r method=%s stage=%s", call.call_id, digit, method, stage)
        self._publish("ivr.input", call, {"digit": digit, "method": method, "stage": stage,
                                          "accepted": session is not None})
        if session is not None:
            self._apply_ivr(call, session, session.on_digit(digit, time.time()))

    def _on_play_done(self, call: Call, play_id: str) -> None:
        session = self._ivr.get(call.call_id)
        if session is not None:
            self._apply_ivr(call, session, session.on_play_done(play_id, time.time()))
        # After "please hold", an announcement or a transfer's prompt: music while
        # the caller waits for an advisor or for the transfer target to answer.
        if (play_id == call.hold_play_id or play_id.startswith("announce-")) and \
                call.state in ("queued", "offered", "transferring"):
            self._play_music(call)

    def _play(self, call: Call, play_id: str, refs: list[tuple[str, str]], kind: str,
              **extra: Any) -> None:
        """Play prompts to the caller and say so on the bus (ivr.prompt)."""
        self._send(call, "play", leg=call.customer.leg_id, loop=False, play_id=play_id,
                   file=str(self.prompts.sequence(refs)))
        self._publish("ivr.prompt", call, {"play_id": play_id, "kind": kind,
                                           "prompts": [f"{lg}/{key}" for lg, key in refs],
                                           **extra})

    def _apply_ivr(self, call: Call, session: IvrSession, actions: list[Any]) -> None:
        call.ivr_path = list(session.path)
        transfer = any(isinstance(a, Transfer) for a in actions)
        if transfer and not any(isinstance(a, Play) for a in actions):
            self._play_music(call)  # a transfer without a prompt: music at once
        for action in actions:
            if isinstance(action, Play):
                refs = [(p.language, p.key) for p in action.prompts]
                done = any(isinstance(a, Done) for a in actions)
                self._play(call, action.play_id, refs, "hold" if done else "menu",
                           node=session.stage)
                if done or transfer:
                    call.hold_play_id = action.play_id
            elif isinstance(action, StopPlay):
                self._send(call, "stop_play", leg=call.customer.leg_id)
            elif isinstance(action, Done):
                self._ivr_done(call, action)
                return
            elif isinstance(action, Transfer):
                self._ivr_transfer(call, action)
            elif isinstance(action, Hangup):
                self._end_call(call, action.reason)
                return
        self._arm_ivr_timer(call, session)

    def _arm_ivr_timer(self, call: Call, session: IvrSession) -> None:
        if (old := self._ivr_timers.pop(call.call_id, None)) is not None:
            old.cancel()
        if session.deadline is None:
            return
        delay = max(0.0, session.deadline - time.time())

        def fire() -> None:
            self._ivr_timers.pop(call.call_id, None)
            if self._ivr.get(call.call_id) is session:
                self._apply_ivr(call, session, session.on_timer(time.time()))

        self._ivr_timers[call.call_id] = asyncio.get_running_loop().call_later(delay, fire)

    def _end_ivr(self, call: Call) -> None:
        self._ivr.pop(call.call_id, None)
        if (t := self._ivr_timers.pop(call.call_id, None)) is not None:
            t.cancel()

    def _ivr_done(self, call: Call, done: Done) -> None:
        self._end_ivr(call)
        call.language, call.topic, call.ivr_path = done.language, done.topic, list(done.path)
        call.flags.update(done.flags)
        prio = done.priority
        if prio is None:
            prio = self.plugins.first("cti_call_priority", call_id=call.call_id, call=call_view(call))
        if prio is None:
            prio = 10 if done.topic in self.settings.ivr.emergency_topics else 0
        call.priority = int(prio)
        call.state, call.queued_at = "queued", time.time()
        log.info("ivr done call_id=%s language=%s topic=%s path=%s", call.call_id,
                 call.language, call.topic, ",".join(call.ivr_path))
        self._publish("ivr.done", call, {"language": call.language, "topic": call.topic,
                                         "ivr_path": call.ivr_path})
        self._schedule_announcement(call, self.settings.ivr.announce_first_s)
        if self.settings.routing.max_wait_s > 0:
            self._timer(self._max_wait_timers, call, self.settings.routing.max_wait_s,
                        self._max_wait)
        self.plugins.call("cti_call_queued", call_id=call.call_id, call=call_view(call))
        self._publish("call.queued", call, {"language": call.language, "topic": call.topic,
                                            "priority": call.priority})
        self._apply_routing(self.distributor.add_call(
            call.call_id, language=call.language, topic=call.topic, priority=call.priority,
            now=time.time()))

    # ---------------------------------------------------------- IVR transfers
    def transfer_uri(self, target: str) -> str:
        """A directory key's URI, or the target itself (a sip: URI)."""
        entry = next((d for d in self.settings.directory if d.key == target), None)
        return entry.uri if entry is not None else target

    def _ivr_transfer(self, call: Call, action: Transfer) -> None:
        """Dial the target from the caller's worker; the IVR waits for the outcome."""
        uri = self.transfer_uri(action.target)
        leg = Leg(uuid.uuid4().hex, call.worker, "external", action.target)
        call.external_leg = leg
        call.legs.append(leg)
        self.calls.bind_leg(call, leg)
        call.state = "transferring"
        log.info("ivr transfer call_id=%s target=%s uri=%s", call.call_id, action.target, uri)
        self._publish("call.transferring", call, {
            "target": action.target, "target_type": "external", "kind": "blind", "by": "ivr",
            "node": action.node})
        self._spawn(self._dial_external(call, leg, uri), call.call_id)

    async def _dial_leg(self, call: Call, leg: Leg, uri: str, worker: str | None = None,
                        headers: dict[str, str] | None = None) -> bool:
        """Dial a new leg of the call (from its worker unless told); False (logged) if
        that failed."""
        link = self.pool.get(worker or call.worker)
        try:
            if link is None or not link.up:
                raise WorkerCommandError("worker gone")
            await link.command("dial", leg=leg.leg_id, uri=uri,
                               headers={"X-CTI-Call-ID": call.call_id, **(headers or {})})
            return True
        except WorkerCommandError as e:
            log.warning("dial failed call_id=%s role=%s uri=%s: %s", call.call_id, leg.role,
                        uri, e)
            leg.state = "disconnected"
            return False

    async def _dial_external(self, call: Call, leg: Leg, uri: str) -> None:
        if not await self._dial_leg(call, leg, uri):
            self._on_external_leg(call, leg)

    def _on_external_leg(self, call: Call, leg: Leg) -> None:
        """A transfer target (from the IVR or a blind transfer) answered or went away."""
        session = self._ivr.get(call.call_id)
        by = call.transfer_by or "ivr"
        if leg.state == "confirmed" and call.state == "transferring":
            call.state, call.answered_at = "transferred", call.answered_at or time.time()
            self._send(call, "bridge", a=call.customer.leg_id, b=leg.leg_id)
            if session is not None:
                session.on_transfer_result(True, time.time())
                call.ivr_path = list(session.path)
                self._end_ivr(call)
            log.info("transferred call_id=%s target=%s", call.call_id, leg.peer)
            self._publish("call.transferred", call, {
                "target": leg.peer, "target_type": "external", "kind": "blind", "by": by})
        elif leg.state == "disconnected" and call.state == "transferred":
            self._end_call(call, "transfer_ended")
        elif leg.state == "disconnected" and call.state == "transferring":
            log.info("transfer failed call_id=%s target=%s code=%s", call.call_id, leg.peer,
                     leg.end_code)
            if session is None:  # an advisor's blind transfer: back to the queue
                self._external_failed(call, leg)
                return
            # Busy, no answer or unreachable: the flow's fallback keeps the caller.
            call.external_leg, call.state = None, "ivr"
            self._publish("call.transfer_failed", call, {
                "target": leg.peer, "code": leg.end_code, "reason": "no answer or busy"})
            self._apply_ivr(call, session, session.on_transfer_result(False, time.time()))

    # ------------------------------------------------------------------ waiting
    def _timer(self, timers: dict[str, asyncio.TimerHandle], call: Call, delay: float,
               fn: Callable[[Call], None]) -> None:
        timers[call.call_id] = asyncio.get_running_loop().call_later(delay, fn, call)

    def _max_wait(self, call: Call) -> None:
        """The call waited routing.max_wait_s: a plugin acts, or it changes queue."""
        self._max_wait_timers.pop(call.call_id, None)
        if call.state == "offered":  # ringing an advisor now: look again shortly
            self._timer(self._max_wait_timers, call, 5.0, self._max_wait)
            return
        if call.state != "queued":
            return
        action = self.settings.routing.max_wait_action
        log.info("max wait reached call_id=%s action=%s", call.call_id, action)
        if action == "hook":
            handled = bool(self.plugins.first("cti_call_max_wait", call_id=call.call_id,
                                              call=call_view(call)))
            self._publish("call.max_wait", call, {"action": action, "handled": handled})
            return
        topic = action.partition(":")[2]
        now = time.time()
        actions = self.distributor.remove_call(call.call_id, now)
        call.topic = topic
        call.ivr_path.append(f"max_wait->{topic}")
        self._publish("call.max_wait", call, {"action": action, "topic": topic})
        self._apply_routing(actions + self.distributor.add_call(
            call.call_id, language=call.language or "", topic=topic, priority=call.priority,
            now=now, enqueued_at=call.queued_at))

    def _schedule_announcement(self, call: Call, delay: float) -> None:
        if delay <= 0:
            return
        handle = asyncio.get_running_loop().call_later(delay, self._announce, call)
        self._announce_timers[call.call_id] = handle

    def _announce(self, call: Call) -> None:
        """Tell a waiting caller their position and expected wait, then music again."""
        self._announce_timers.pop(call.call_id, None)
        if call.state == "ended":
            return
        position = self.distributor.position(call.call_id) if call.state == "queued" else None
        if position is not None and call.language:
            wait = self.distributor.expected_wait_s(call.call_id, time.time())
            call.announcements += 1
            refs = [(r.language, r.key)
                    for r in wait_announcement(call.language, position, wait)]
            self._play(call, f"announce-{call.announcements}", refs, "announcement",
                       position=position, expected_wait_s=wait)
        self._schedule_announcement(call, self.settings.ivr.announce_every_s)

    def _play_music(self, call: Call) -> None:
        self._send(call, "play", leg=call.customer.leg_id, loop=True, play_id="music",
                   file=str(self.prompts.music()))


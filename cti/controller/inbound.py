"""The caller's side: a new call answered, the IVR, and transfers to outside numbers.

:class:`Inbound` turns the caller's leg events (incoming, media up, digits,
prompts played) into IVR session steps and their actions into media commands;
a finished IVR hands the call to :class:`cti.controller.waiting.Waiting`.
It also dials transfer targets from the directory — for the IVR and for an
advisor's blind transfer — since both end the same way on the caller's leg.

Collaborators (constructor): the IVR sessions (shared with the call ending,
which drops a session when its call ends), the waiting service, the call
ending, and the consults (an incoming ``join-`` call belongs to one). None of
them calls back into it. Every log line carries the call id.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from cti.config import ivr_flows
from cti.controller.calls import Call, Leg, call_view, sip_user
from cti.controller.consult import JOIN_PREFIX, Consults
from cti.controller.context import FlowContext
from cti.controller.durable import persist_flag
from cti.controller.ending import CallEnding
from cti.controller.waiting import Waiting
from cti.ivr import Done, Flow, FlowError, Hangup, IvrSession, Play, StopPlay, Transfer
from cti.ivr.extend import ExtraOption, extend_flow
from cti.ivr.hours import is_open

log = logging.getLogger("cti.flow")


class IvrSessions:
    """The callers in the IVR: their session and digit timer, by call id."""

    def __init__(self) -> None:
        self._sessions: dict[str, IvrSession] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def get(self, call_id: str) -> IvrSession | None:
        return self._sessions.get(call_id)

    def start(self, call_id: str, session: IvrSession) -> None:
        self._sessions[call_id] = session

    def set_timer(self, call_id: str, timer: asyncio.TimerHandle | None) -> None:
        """Replace the call's digit timer (None: no timer)."""
        if (old := self._timers.pop(call_id, None)) is not None:
            old.cancel()
        if timer is not None:
            self._timers[call_id] = timer

    def timer_fired(self, call_id: str) -> None:
        self._timers.pop(call_id, None)

    def end(self, call: Call) -> None:
        """The call left the IVR (or ended)."""
        self._sessions.pop(call.call_id, None)
        self.set_timer(call.call_id, None)


class Inbound:
    def __init__(self, ctx: FlowContext, sessions: IvrSessions, waiting: Waiting,
                 ending: CallEnding, consults: Consults) -> None:
        self.ctx = ctx
        self.sessions = sessions
        self.waiting = waiting
        self.ending = ending
        self.consults = consults
        self.ivr_flows: dict[str, Flow] = ivr_flows(ctx.settings)

    # ------------------------------------------------------------ a new call
    def incoming(self, worker: str, msg: dict[str, Any]) -> None:
        """leg.incoming: a caller (answered at once), or another worker joining a consult."""
        ctx = self.ctx
        dialled = sip_user(msg.get("to", ""))
        if dialled.startswith(JOIN_PREFIX):
            self.consults.join_incoming(worker, msg, dialled.removeprefix(JOIN_PREFIX))
            return
        leg = Leg(str(msg["leg"]), worker, "customer", sip_user(msg.get("from", "")),
                  sip_call_id=msg.get("sip_call_id"))
        call = Call(worker=worker, customer=leg, caller_number=leg.peer, dialled=dialled)
        ctx.calls.add(call)
        ctx.store.save_call(call.to_record())  # the row from the first second (restarts)
        log.info("call incoming call_id=%s from=%s country=%s worker=%s leg=%s",
                 call.call_id, call.caller_number, call.caller_country, worker, leg.leg_id)
        ctx.plugins.call("cti_call_incoming", call_id=call.call_id, call=call_view(call))
        ctx.publish("call.incoming", call, self.caller_data(call))
        # No X-CTI-Call-ID in the caller's 200 OK: our call id is for the advisors'
        # phones (their INVITE carries it), not for the outside (the edge strips
        # X-CTI-* from every reply it relays as well).
        ctx.send(call, "answer", leg=leg.leg_id, code=200)

    @staticmethod
    def caller_data(call: Call) -> dict[str, Any]:
        return {"caller": {"number": call.caller_number, "country": call.caller_country},
                "dialled": call.dialled}

    async def set_flag(self, name: str, value: bool, by: str | None = None,
                       address: str | None = None) -> None:
        """A gateway-wide IVR flag, read by flows from the next caller on; stored (and
        audited) before it counts."""
        async with self.ctx.state_lock:
            await persist_flag(self.ctx.store, name, value, by, address)
            self.ctx.flags[name] = value
        log.info("ivr flag name=%s value=%s by=%s", name, value, by)
        self.ctx.publish("ivr.flag", None, {"name": name, "value": value, "by": by})

    # ------------------------------------------------------------ the IVR
    def flow_for(self, dialled: str) -> Flow:
        """The flow of the dialled number, or the standard flow."""
        return self.ivr_flows.get(dialled) or self.ivr_flows[""]

    def start_ivr(self, call: Call) -> None:
        """The caller's media is up: their walk through the flow begins."""
        ctx = self.ctx
        call.state = "ivr"
        ivr = ctx.settings.ivr
        guess = ivr.country_languages.get(call.caller_country or "")
        hours = ivr.opening_hours
        open_now = hours is None or is_open(hours.days, hours.timezone, time.time())

        def ask(question: str) -> str | None:
            answer = ctx.plugins.first("cti_ivr_branch", call_id=call.call_id,
                                       call=call_view(call), question=question)
            return None if answer is None else str(answer)

        # Flags a plugin set on the call (cti_call_incoming) count like gateway flags.
        session = IvrSession(self._extended_flow(call), guessed_language=guess,
                             open_now=open_now, country=call.caller_country,
                             flags={**ctx.flags, **call.flags}, ask=ask)
        self.sessions.start(call.call_id, session)
        log.info("ivr start call_id=%s flow=%s", call.call_id, session.flow.name)
        self._apply_ivr(call, session, session.start(time.time()))

    def _extended_flow(self, call: Call) -> Flow:
        """The call's flow with what plugins add (cti_ivr_extend); an extension that
        does not fit the flow or lacks a prompt is logged and left out."""
        ctx = self.ctx
        flow = self.flow_for(call.dialled)
        view = call_view(call)
        for ext in ctx.plugins.call("cti_ivr_extend", call_id=call.call_id, call=view,
                                    flow=flow.name):
            keys = [*ext.intro, *(o.prompt for o in ext.options)]
            langs = [m.code for m in ctx.settings.ivr.languages]
            missing = ctx.prompts.missing([(lang, k) for k in keys for lang in langs])
            try:
                if missing:
                    raise FlowError(f"missing prompt {missing[0][0]}/{missing[0][1]}.wav")
                flow = extend_flow(flow, ext.intro, [
                    ExtraOption(menu=o.menu, digit=o.digit, prompt=o.prompt, label=o.label,
                                topic=o.topic, priority=o.priority, flags=dict(o.flags))
                    for o in ext.options])
            except (FlowError, ValueError) as e:
                ctx.plugins.errors[("(ivr extension)", "cti_ivr_extend")] += 1
                log.error("ivr extension left out call_id=%s: %s", call.call_id, e)
        return flow

    def digit(self, call: Call, digit: str, method: str) -> None:
        session = self.sessions.get(call.call_id)
        stage = session.stage if session else call.state
        log.info("dtmf call_id=%s digit=%r method=%s stage=%s", call.call_id, digit, method,
                 stage)
        # Outside the IVR a key counts if a plugin takes it ("press 1 to be called back").
        taken = session is None and call.state == "queued" and bool(self.ctx.plugins.first(
            "cti_call_digit", call_id=call.call_id, call=call_view(call), digit=digit))
        accepted = taken or (session is not None and session.takes_digits)
        self.ctx.publish("ivr.input", call, {"digit": digit, "method": method, "stage": stage,
                                             "accepted": accepted})
        if session is not None:
            self._apply_ivr(call, session, session.on_digit(digit, time.time()))

    def play_done(self, call: Call, play_id: str) -> None:
        session = self.sessions.get(call.call_id)
        if session is not None:
            self._apply_ivr(call, session, session.on_play_done(play_id, time.time()))
        # After "please hold", an announcement or a transfer's prompt: music while
        # the caller waits for an advisor or for the transfer target to answer.
        if (play_id == call.hold_play_id or play_id.startswith("announce-")) and \
                call.state in ("queued", "offered", "transferring"):
            self.ctx.play_music(call)

    def _apply_ivr(self, call: Call, session: IvrSession, actions: list[Any]) -> None:
        ctx = self.ctx
        call.ivr_path = list(session.path)
        transfer = any(isinstance(a, Transfer) for a in actions)
        if transfer and not any(isinstance(a, Play) for a in actions):
            ctx.play_music(call)  # a transfer without a prompt: music at once
        for action in actions:
            if isinstance(action, Play):
                refs = [(p.language, p.key) for p in action.prompts]
                done = any(isinstance(a, Done) for a in actions)
                ctx.play(call, action.play_id, refs, "hold" if done else "menu",
                         node=session.stage)
                if done or transfer:
                    call.hold_play_id = action.play_id
            elif isinstance(action, StopPlay):
                ctx.send(call, "stop_play", leg=call.customer.leg_id)
            elif isinstance(action, Done):
                self._ivr_done(call, action)
                return
            elif isinstance(action, Transfer):
                self._ivr_transfer(call, action)
            elif isinstance(action, Hangup):
                self.ending.end_call(call, action.reason)
                return
        self._arm_ivr_timer(call, session)

    def _arm_ivr_timer(self, call: Call, session: IvrSession) -> None:
        if session.deadline is None:
            self.sessions.set_timer(call.call_id, None)
            return
        delay = max(0.0, session.deadline - time.time())

        def fire() -> None:
            self.sessions.timer_fired(call.call_id)
            if self.sessions.get(call.call_id) is session:
                self._apply_ivr(call, session, session.on_timer(time.time()))

        self.sessions.set_timer(call.call_id,
                                asyncio.get_running_loop().call_later(delay, fire))

    def _ivr_done(self, call: Call, done: Done) -> None:
        ctx = self.ctx
        self.sessions.end(call)
        call.language, call.topic, call.ivr_path = done.language, done.topic, list(done.path)
        call.flags.update(done.flags)
        prio = done.priority
        if prio is None:
            prio = ctx.plugins.first("cti_call_priority", call_id=call.call_id,
                                     call=call_view(call))
        if prio is None:
            prio = 10 if done.topic in ctx.settings.ivr.emergency_topics else 0
        call.priority = int(prio)
        # What plugins ask of the advisor (a crisis: training, reserve pool, priority).
        for req in ctx.plugins.call("cti_call_routing", call_id=call.call_id,
                                    call=call_view(call)):
            if req.priority is not None:
                call.priority = max(call.priority, int(req.priority))
            call.trainings |= set(req.trainings)
            call.reserve |= set(req.reserve)
        call.state, call.queued_at = "queued", time.time()
        log.info("ivr done call_id=%s language=%s topic=%s path=%s", call.call_id,
                 call.language, call.topic, ",".join(call.ivr_path))
        ctx.publish("ivr.done", call, {"language": call.language, "topic": call.topic,
                                       "ivr_path": call.ivr_path})
        self.waiting.enqueue(call)

    # ------------------------------------------------------------ transfers out
    def _ivr_transfer(self, call: Call, action: Transfer) -> None:
        """Dial the target from the caller's worker; the IVR waits for the outcome."""
        uri = self.ctx.transfer_uri(action.target)
        leg = Leg(uuid.uuid4().hex, call.worker, "external", action.target)
        call.external_leg = leg
        self.ctx.add_leg(call, leg)
        call.state = "transferring"
        log.info("ivr transfer call_id=%s target=%s uri=%s", call.call_id, action.target, uri)
        self.ctx.publish("call.transferring", call, {
            "target": action.target, "target_type": "external", "kind": "blind", "by": "ivr",
            "node": action.node})
        self.ctx.spawn(self._dial_external(call, leg, uri), call.call_id)

    def blind_external(self, call: Call, target: str, by: str) -> None:
        """An advisor's blind transfer to a directory entry (music while it rings)."""
        uri = self.ctx.transfer_uri(target)
        leg = Leg(uuid.uuid4().hex, call.worker, "external", target)
        call.external_leg, call.state, call.held = leg, "transferring", False
        call.transfer_by = by
        self.ctx.add_leg(call, leg)
        self.ctx.play_music(call)
        log.info("blind transfer call_id=%s target=%s uri=%s", call.call_id, target, uri)

        async def dial() -> None:
            if not await self.ctx.dial_leg(call, leg, uri):
                self._external_failed(call, leg)

        self.ctx.spawn(dial(), call.call_id)

    async def _dial_external(self, call: Call, leg: Leg, uri: str) -> None:
        if not await self.ctx.dial_leg(call, leg, uri):
            self.external_leg_changed(call, leg)

    def external_leg_changed(self, call: Call, leg: Leg) -> None:
        """A transfer target (from the IVR or a blind transfer) answered or went away."""
        ctx = self.ctx
        session = self.sessions.get(call.call_id)
        by = call.transfer_by or "ivr"
        if leg.state == "confirmed" and call.state == "transferring":
            call.state, call.answered_at = "transferred", call.answered_at or time.time()
            ctx.send(call, "bridge", a=call.customer.leg_id, b=leg.leg_id)
            if session is not None:
                session.on_transfer_result(True, time.time())
                call.ivr_path = list(session.path)
                self.sessions.end(call)
            log.info("transferred call_id=%s target=%s", call.call_id, leg.peer)
            ctx.publish("call.transferred", call, {
                "target": leg.peer, "target_type": "external", "kind": "blind", "by": by})
        elif leg.state == "disconnected" and call.state == "transferred":
            self.ending.end_call(call, "transfer_ended")
        elif leg.state == "disconnected" and call.state == "transferring":
            log.info("transfer failed call_id=%s target=%s code=%s", call.call_id, leg.peer,
                     leg.end_code)
            if session is None:  # an advisor's blind transfer: back to the queue
                self._external_failed(call, leg)
                return
            # Busy, no answer or unreachable: the flow's fallback keeps the caller.
            call.external_leg, call.state = None, "ivr"
            ctx.publish("call.transfer_failed", call, {
                "target": leg.peer, "code": leg.end_code, "reason": "no answer or busy"})
            self._apply_ivr(call, session, session.on_transfer_result(False, time.time()))

    def _external_failed(self, call: Call, leg: Leg) -> None:
        """A blind transfer that nobody answered: the caller goes back to the queue
        (where they were, or at its head after a plugin's overflow), or is hung up."""
        call.external_leg = None
        fallback, call.transfer_fallback = call.transfer_fallback, "queue"
        self.ctx.publish("call.transfer_failed", call, {
            "target": leg.peer, "code": leg.end_code, "reason": "no answer or busy"})
        if fallback == "hangup":
            self.ending.end_call(call, "transfer_failed")
            return
        self.waiting.requeue(call, call.topic or self.ctx.settings.ivr.default_topic,
                             at_head=fallback == "queue_head")

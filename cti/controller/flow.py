"""The call flow: worker events in, IVR and distributor decisions, media commands out.

This is the only place that ties telephony (worker legs) to logic (the pure
IVR engine and distributor). Every log line carries the call id.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from cti.config import Settings, ivr_flows
from cti.controller.calls import (
    Call,
    CallRegistry,
    Leg,
    caller_timezone,
    local_time,
    sip_user,
)
from cti.controller.control import JOIN_PREFIX, CallControlMixin
from cti.controller.durable import persist_flag, persist_skills, restore_skills, start_flags
from cti.controller.flow_ivr import IvrFlowMixin
from cti.controller.prompts import PromptLibrary
from cti.controller.skills import SkillBook, Skills
from cti.controller.workers import WorkerCommandError, WorkerLink, WorkerPool
from cti.core.views import call_view
from cti.events import EventBus, make_event
from cti.ivr import IvrSession
from cti.plugins import PluginHost
from cti.routing import (
    AdvisorChanged,
    AdvisorState,
    Distributor,
    Escalated,
    EscalationStep,
    Offer,
    OfferRevoked,
)
from cti.store.db import Store

log = logging.getLogger("cti.flow")

# Offer delivery: how long the screen pop may take to reach the advisor's
# client before we ring their phone anyway.
SCREEN_POP_WAIT_S = 1.0
# Ended calls whose advisors are remembered for their wrap-up.
RECENT_CALLS = 5000

Delivered = Callable[[str, int, float], Awaitable[bool]]


def make_distributor(settings: Settings, skills: SkillBook) -> Distributor:
    r = settings.routing
    return Distributor(
        skills.profiles(), strategy=r.strategy, offer_timeout_s=r.offer_timeout_s,
        wrap_up_s=r.wrap_up_s, max_missed=r.max_missed, aging_per_s=r.aging_per_minute / 60,
        escalation={
            topic: [EscalationStep(s.after_s, s.min_language, s.min_topic, s.escalate)
                    for s in steps]
            for topic, steps in r.escalation.items()
        },
    )


class CallFlow(IvrFlowMixin, CallControlMixin):
    def __init__(
        self,
        settings: Settings,
        pool: WorkerPool,
        bus: EventBus,
        store: Store,
        plugins: PluginHost,
        prompts: PromptLibrary,
        delivered: Delivered,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.bus = bus
        self.store = store
        self.plugins = plugins
        self.prompts = prompts
        self._delivered = delivered
        self.calls = CallRegistry()
        self.ivr_flows = ivr_flows(settings)
        self.flags = start_flags(settings.ivr.flags, store)  # stored values win
        self.skills = SkillBook(settings)
        restore_skills(self.skills, store)
        self._state_lock = asyncio.Lock()  # stored and applied in the same order
        # The distributor decides when an offer times out (OfferRevoked).
        self.distributor = make_distributor(settings, self.skills)
        self._ivr: dict[str, IvrSession] = {}
        self._ivr_timers: dict[str, asyncio.TimerHandle] = {}
        self._announce_timers: dict[str, asyncio.TimerHandle] = {}
        self._max_wait_timers: dict[str, asyncio.TimerHandle] = {}
        self._dist_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # Advisors who talked to a call (also before a transfer): who may wrap it up.
        self._recent_advisors: dict[str, set[str]] = {}
        self.edge_rotation: Callable[[str, bool], None] | None = None
        self._out_of_rotation: set[str] = set()

    # ------------------------------------------------------------------ helpers
    def _spawn(self, coro: Coroutine[Any, Any, Any], call_id: str | None = None) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and (exc := t.exception()):
                log.error("flow task failed call_id=%s: %s", call_id, exc)

        task.add_done_callback(done)

    def _send(self, call: Call, cmd: str, **fields: Any) -> None:
        """Fire a command at the call's worker; failures are logged with the call id."""
        self._send_to(call.worker, call, cmd, **fields)

    def _send_to(self, worker: str, call: Call, cmd: str, **fields: Any) -> None:
        """Fire a command at a worker about one of the call's legs (consults use two)."""
        link = self.pool.get(worker)
        if link is None or not link.up:
            log.warning("worker down, dropped %s call_id=%s", cmd, call.call_id)
            return

        async def run() -> None:
            try:
                await link.command(cmd, **fields)
            except WorkerCommandError as e:
                # A hang-up racing the far end's own BYE is normal, not a warning.
                level = logging.DEBUG if "unknown leg" in str(e) else logging.WARNING
                log.log(level, "command failed call_id=%s: %s", call.call_id, e)

        self._spawn(run(), call.call_id)

    def _publish(self, type_: str, call: Call | None, data: dict[str, Any],
                 advisor: str | None = None) -> int:
        return self._publish_id(type_, call.call_id if call else None, data,
                                advisor=advisor or (call.advisor if call else None))

    def _publish_id(self, type_: str, call_id: str | None, data: dict[str, Any],
                    advisor: str | None = None) -> int:
        """Publish on the bus (WebSocket, plugins); also for calls that already ended."""
        ev = make_event(type_, data, call_id=call_id, advisor=advisor)
        self.bus.publish(ev)
        self.plugins.call("cti_event", call_id=ev["call_id"], event=ev)
        return ev["seq"]

    # ------------------------------------------------------------ worker events
    def on_worker_event(self, link: WorkerLink, msg: dict[str, Any]) -> None:
        kind = msg.get("event")
        if kind == "leg.incoming":
            self._on_incoming(link, msg)
            return
        call = self.calls.by_leg(link.worker_id, str(msg.get("leg")))
        if call is None:
            if kind == "leg.state" and msg.get("state") != "disconnected":
                log.warning("event for unknown leg worker=%s: %s", link.worker_id, msg)
            return
        if kind == "leg.state":
            self._on_leg_state(call, msg)
        elif kind == "leg.media" and msg.get("active"):
            if msg.get("leg") == call.customer.leg_id and call.state == "incoming":
                self._start_ivr(call)
        elif kind == "leg.dtmf" and msg.get("leg") == call.customer.leg_id:
            self._on_digit(call, str(msg.get("digit", "")), str(msg.get("method", "")))
        elif kind == "play.done" and msg.get("leg") == call.customer.leg_id:
            self._on_play_done(call, str(msg.get("play_id", "")))

    def _on_incoming(self, link: WorkerLink, msg: dict[str, Any]) -> None:
        dialled = sip_user(msg.get("to", ""))
        if dialled.startswith(JOIN_PREFIX):  # another worker joining for a consult
            self.on_join_incoming(link.worker_id, msg, dialled.removeprefix(JOIN_PREFIX))
            return
        leg = Leg(str(msg["leg"]), link.worker_id, "customer", sip_user(msg.get("from", "")),
                  sip_call_id=msg.get("sip_call_id"))
        call = Call(worker=link.worker_id, customer=leg, caller_number=leg.peer,
                    dialled=sip_user(msg.get("to", "")))
        self.calls.add(call)
        log.info("call incoming call_id=%s from=%s country=%s worker=%s leg=%s",
                 call.call_id, call.caller_number, call.caller_country, link.worker_id,
                 leg.leg_id)
        self.plugins.call("cti_call_incoming", call_id=call.call_id, call=call_view(call))
        self._publish("call.incoming", call, self._caller_data(call))
        self._send(call, "answer", leg=leg.leg_id, code=200,
                   headers={"X-CTI-Call-ID": call.call_id})

    def _on_leg_state(self, call: Call, msg: dict[str, Any]) -> None:
        state = str(msg.get("state"))
        leg = next((x for x in call.legs if x.leg_id == msg.get("leg")), None)
        if leg is None:
            return
        leg.state = state
        leg.sip_call_id = leg.sip_call_id or msg.get("sip_call_id")
        if state == "disconnected":
            leg.ended_at = time.time()
            leg.end_code = msg.get("code")
            if self._out_of_rotation:
                asyncio.get_running_loop().call_soon(self.recheck_rotation)
            if leg is call.customer:
                self._on_customer_gone(call)
            elif leg is call.advisor_leg and call.consult is not None \
                    and call.consult.state == "talking":
                # The advisor hung up the held call while consulting: hand it over.
                self.consult_complete(call.call_id, call.advisor or "")
            elif leg is call.advisor_leg:
                self._on_advisor_leg_gone(call, leg)
        elif state == "confirmed" and leg is call.advisor_leg:
            self._on_advisor_answered(call, leg)
        if leg is call.external_leg and state in ("confirmed", "disconnected"):
            self._on_external_leg(call, leg)
        elif call.consult is not None and leg.role in ("consult_advisor", "consult_target",
                                                       "join") \
                and state in ("confirmed", "disconnected"):
            self._on_consult_leg(call, leg)

    # ------------------------------------------------------------------ routing
    def _apply_routing(self, actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, Offer):
                self._offer(action.call_id, action.advisor, action.trace)
            elif isinstance(action, OfferRevoked):
                self._revoke(action)
            elif isinstance(action, Escalated):
                self._escalated(action)
            elif isinstance(action, AdvisorChanged):
                self._publish("agent.state", None, {
                    "state": action.state.value, "reason": action.reason,
                }, advisor=action.advisor)
        self._arm_distributor_timer()

    def _arm_distributor_timer(self) -> None:
        if self._dist_timer is not None:
            self._dist_timer.cancel()
            self._dist_timer = None
        deadline = self.distributor.next_deadline()
        if deadline is not None:
            delay = max(0.0, deadline - time.time())
            self._dist_timer = asyncio.get_running_loop().call_later(
                delay, lambda: self._apply_routing(self.distributor.tick(time.time())))

    def _escalated(self, action: Escalated) -> None:
        call = self.calls.get(action.call_id)
        if call is None:
            return
        log.info("call escalated call_id=%s step=%s", call.call_id, action.step)
        self.plugins.call("cti_call_escalated", call_id=call.call_id, call=call_view(call),
                          step=action.step)
        self._publish("call.escalated", call, {"step": action.step,
                                               "waited_s": call.waited_s()})

    async def update_skills(self, advisor: str, skills: Skills, by: str | None = None,
                            address: str | None = None) -> None:
        """From the API: stored (and audited), then they count from the next routing
        decision."""
        async with self._state_lock:
            await persist_skills(self.store, self.skills, advisor, skills, by, address)
            profile = self.skills.set(advisor, skills)
        self._apply_routing(self.distributor.update_advisor(profile, time.time()))

    async def set_flag(self, name: str, value: bool, by: str | None = None,
                       address: str | None = None) -> None:
        """From the API: a gateway-wide IVR flag, read by flows from the next caller on;
        stored (and audited) before it counts."""
        async with self._state_lock:
            await persist_flag(self.store, name, value, by, address)
            self.flags[name] = value
        log.info("ivr flag name=%s value=%s by=%s", name, value, by)
        self._publish("ivr.flag", None, {"name": name, "value": value, "by": by})

    def set_advisor_state(self, advisor: str, state: str, reason: str | None = None) -> None:
        """From the API: an advisor sets themself available / away / logged out."""
        self._apply_routing(self.distributor.set_state(
            advisor, AdvisorState(state), time.time(), reason=reason))

    def _close_offer(self, call: Call, outcome: str) -> None:
        if call.offer_id is not None:
            self.store.set_offer_outcome(call.offer_id, outcome, time.time())
            call.offer_id = None

    def _offer(self, call_id: str, advisor: str, trace: dict[str, Any]) -> None:
        call = self.calls.get(call_id)
        if call is None:
            log.error("offer for an unknown call call_id=%s advisor=%s", call_id, advisor)
            self._apply_routing(self.distributor.remove_call(call_id, time.time()))
            return
        if call.advisor_leg is not None:  # a stale ring: stop it first
            self._drop_advisor_leg(call)
        call.state, call.advisor, call.offered_at = "offered", advisor, time.time()
        # The trace is durable before the phone rings: "why did this call go there?"
        call.offer_id = self.store.add_offer(call.call_id, advisor, call.offered_at, trace)
        leg = Leg(uuid.uuid4().hex, call.worker, "advisor", advisor)
        call.advisor_leg = leg
        call.legs.append(leg)
        self.calls.bind_leg(call, leg)
        seq = self._publish("call.offered", call, self._screen_pop(call), advisor=advisor)
        log.info("offer call_id=%s advisor=%s seq=%s", call.call_id, advisor, seq)
        self._spawn(self._ring(call, leg, advisor, seq), call.call_id)

    async def _ring(self, call: Call, leg: Leg, advisor: str, seq: int) -> None:
        # The screen pop goes out before the phone rings (bounded wait).
        await self._delivered(advisor, seq, SCREEN_POP_WAIT_S)
        if call.advisor_leg is not leg or call.state != "offered":
            return
        uri = f"sip:{advisor}@{self.settings.sip.ip}:{self.settings.sip.port}"
        if not await self._dial_leg(call, leg, uri):
            self._on_advisor_leg_gone(call, leg)

    def _revoke(self, action: OfferRevoked) -> None:
        """The distributor gave up on an offer (ring timeout): stop ringing."""
        call = self.calls.get(action.call_id)
        if call is None or call.advisor != action.advisor:
            return
        log.info("offer revoked call_id=%s advisor=%s reason=%s", call.call_id,
                 action.advisor, action.reason)
        self._drop_advisor_leg(call)
        self._close_offer(call, f"revoked:{action.reason}")
        if call.state == "offered":
            call.state, call.advisor = "queued", None

    def _drop_advisor_leg(self, call: Call) -> None:
        leg = call.advisor_leg
        call.advisor_leg = None
        if leg is not None and leg.state != "disconnected":
            self._send(call, "hangup", leg=leg.leg_id)

    def _on_advisor_answered(self, call: Call, leg: Leg) -> None:
        call.state, call.answered_at = "connected", time.time()
        self._close_offer(call, "accepted")
        self._send(call, "bridge", a=call.customer.leg_id, b=leg.leg_id)
        self._apply_routing(self.distributor.offer_accepted(call.call_id, time.time()))
        log.info("connected call_id=%s advisor=%s waited_s=%s", call.call_id, call.advisor,
                 call.waited_s())
        self.plugins.call("cti_call_connected", call_id=call.call_id, call=call_view(call))
        self._publish("call.connected", call, {"waited_s": call.waited_s()})

    def _on_advisor_leg_gone(self, call: Call, leg: Leg) -> None:
        if call.state == "connected":
            self._end_call(call, "advisor_hangup")
            return
        if call.state != "offered" or call.advisor_leg is not leg:
            return
        code = leg.end_code or 0
        reason = "rejected" if code in (486, 600, 603) else (
            "unreachable" if code in (404, 480, 503) or not code else "no_answer")
        log.info("offer failed call_id=%s advisor=%s code=%s reason=%s", call.call_id,
                 leg.peer, code, reason)
        self._close_offer(call, reason)
        call.advisor_leg, call.advisor, call.state = None, None, "queued"
        self._apply_routing(self.distributor.offer_failed(call.call_id, time.time(),
                                                          reason=reason))

    def _on_customer_gone(self, call: Call) -> None:
        talking = call.state in ("connected", "transferred")
        reason = "caller_hangup" if talking else "caller_abandoned"
        self._end_call(call, reason)

    # ------------------------------------------------------------------ ending
    def _end_call(self, call: Call, reason: str, worker_alive: bool = True) -> None:
        if call.state == "ended":
            return
        was = call.state
        call.state, call.ended_at, call.end_reason = "ended", time.time(), reason
        self._ivr.pop(call.call_id, None)
        for timers in (self._ivr_timers, self._announce_timers, self._max_wait_timers):
            if (t := timers.pop(call.call_id, None)) is not None:
                t.cancel()
        if worker_alive:
            for leg in call.legs:
                if leg.state != "disconnected":
                    self._send_to(leg.worker, call, "hangup", leg=leg.leg_id)
        if call.advisor:
            self._recent_advisors.setdefault(call.call_id, set()).add(call.advisor)
        while len(self._recent_advisors) > RECENT_CALLS:  # oldest first (insertion order)
            self._recent_advisors.pop(next(iter(self._recent_advisors)))
        self._close_offer(call, reason)
        now = time.time()
        if was == "connected":
            actions = self.distributor.call_ended(call.call_id, now)
        else:
            actions = self.distributor.remove_call(call.call_id, now)
        self.store.save_call(call.to_record())
        log.info("call ended call_id=%s reason=%s advisor=%s", call.call_id, reason,
                 call.advisor)
        self.calls.remove(call)
        self.plugins.call("cti_call_ended", call_id=call.call_id, call=call_view(call))
        self._publish("call.ended", call, {"reason": reason, "advisor": call.advisor,
                                           "duration_s": round(now - call.started_at, 1)})
        self._apply_routing(actions)

    async def on_worker_down(self, link: WorkerLink) -> list[str]:
        """A worker died: its calls are lost media-wise; end them with a reason.

        Returns the SIP Call-IDs of the advisor legs that were up, so the edge
        can send those advisors the BYE the dead worker cannot.
        """
        advisor_dialogs = [
            c.advisor_leg.sip_call_id for c in self.calls.on_worker(link.worker_id)
            if c.advisor_leg is not None and c.advisor_leg.sip_call_id
            and c.advisor_leg.state not in ("disconnected", "new")
        ]
        for call in self.calls.all():
            if call.consult is not None and call.consult.worker == link.worker_id \
                    and call.worker != link.worker_id:
                for leg in (call.consult.advisor_leg, call.consult.target_leg):
                    leg.state = "disconnected"
                if call.consult.state in ("ringing", "talking"):
                    self._finish_consult(call, "failed")
                else:  # the caller was joined to the target there: that is gone
                    self._end_call(call, "worker_failed")
        for call in self.calls.on_worker(link.worker_id):
            log.error("worker failed during call call_id=%s worker=%s", call.call_id,
                      link.worker_id)
            self._end_call(call, "worker_failed", worker_alive=False)
        return advisor_dialogs

    async def on_worker_up(self, link: WorkerLink) -> None:
        log.info("worker up worker=%s restarts=%s", link.worker_id, link.restarts)

    def hangup_all(self) -> None:
        for call in self.calls.all():
            self._end_call(call, "shutdown")

    # ------------------------------------------------------------- screen pop
    def _caller_data(self, call: Call) -> dict[str, Any]:
        return {"caller": {"number": call.caller_number, "country": call.caller_country},
                "dialled": call.dialled}

    def _screen_pop(self, call: Call) -> dict[str, Any]:
        """Everything the advisor needs before saying hello (call.offered)."""
        zone = caller_timezone(call.caller_number)
        caller = {"number": call.caller_number, "country": call.caller_country,
                  "timezone": zone, "local_time": local_time(zone, time.time())}
        return {
            "caller": caller,
            "dialled": call.dialled,
            "earlier_contacts": self.store.earlier_contacts(call.caller_number, 5,
                                                            before=call.started_at),
            "crisis": bool(self.flags.get("crisis") or call.flags.get("crisis")),
            "language": call.language,
            "topic": call.topic,
            "ivr_path": call.ivr_path,
            "priority": call.priority,
            "flags": call.flags,
            "waited_s": call.waited_s(),
            "offer_timeout_s": self.settings.routing.offer_timeout_s,
        }

    def active_calls(self) -> list[dict[str, Any]]:
        return [
            {"call_id": c.call_id, "state": c.state, "advisor": c.advisor,
             **self._screen_pop(c)}
            for c in self.calls.all()
        ]

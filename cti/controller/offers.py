"""Offers: the distributor's actions carried out, and the advisor's side of a call.

:class:`Offers` is the one place that applies distributor actions
(:meth:`Offers.apply`: offers, revoked offers, escalations, advisor state
changes) and keeps the distributor's timer armed. Every other service hands the
actions its distributor calls return to ``apply``.

An offer is the same for every kind of work up to ringing; how the advisor is
reached and what their answer does is the call kind's :class:`TaskHandler`
(cti/controller/work.py).

Cycle: ending a call closes its offer and applies the distributor's answer
(ending needs offers), and an advisor hanging up a connected call ends it
(offers need ending). :class:`cti.controller.ending.CallEnding` gets ``Offers``
in its constructor; ``Offers`` gets the ending afterwards through
:meth:`Offers.bind_ending`, typed by the small :class:`CallEnder` protocol.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from cti.controller.calls import Call, Leg, call_view, caller_timezone, local_time
from cti.controller.context import FlowContext
from cti.controller.durable import persist_skills
from cti.controller.skills import Skills
from cti.controller.work import TaskHandler
from cti.core.views import WorkKind
from cti.routing import (
    SETTABLE_STATES,
    AdvisorChanged,
    AdvisorState,
    Escalated,
    Offer,
    OfferRevoked,
    WrapUpExpired,
)

log = logging.getLogger("cti.flow")

# Offer delivery: how long the screen pop may take to reach the advisor's
# client before we ring their phone anyway.
SCREEN_POP_WAIT_S = 1.0

#: (advisor, event seq, timeout) -> True once the advisor's client was sent the event.
Delivered = Callable[[str, int, float], Awaitable[bool]]


class CallEnder(Protocol):
    def end_call(self, call: Call, reason: str, worker_alive: bool = True) -> None: ...


class Offers:
    def __init__(self, ctx: FlowContext, handlers: Mapping[WorkKind, TaskHandler],
                 delivered: Delivered) -> None:
        self.ctx = ctx
        self.handlers = handlers
        self._delivered = delivered
        self._ender: CallEnder | None = None
        self._dist_timer: asyncio.TimerHandle | None = None
        #: Told of every advisor state change, after it is announced (recovery breaks).
        self.state_observers: list[Callable[[AdvisorChanged], None]] = []

    def bind_ending(self, ender: CallEnder) -> None:
        """Set once by CallFlow after both exist (see the module doc)."""
        self._ender = ender

    def _end_call(self, call: Call, reason: str) -> None:
        assert self._ender is not None, "Offers.bind_ending was not called"
        self._ender.end_call(call, reason)

    # ---------------------------------------------------- distributor actions
    def apply(self, actions: list[Any]) -> None:
        """Carry out what the distributor decided, then re-arm its timer."""
        for action in actions:
            if isinstance(action, Offer):
                self.offer(action.call_id, action.advisor, action.trace)
            elif isinstance(action, OfferRevoked):
                self.revoke(action)
            elif isinstance(action, Escalated):
                self._escalated(action)
            elif isinstance(action, WrapUpExpired):
                # Before the state change below: the desktop lists the call as not
                # wrapped up when it hears that the advisor is available again.
                log.info("wrap-up time over call_id=%s advisor=%s: not wrapped up",
                         action.call_id, action.advisor)
                self.ctx.publish_id("call.not_wrapped_up", action.call_id,
                                    {"advisor": action.advisor}, advisor=action.advisor)
            elif isinstance(action, AdvisorChanged):
                if action.state in SETTABLE_STATES:  # the state chosen, kept over a restart
                    self.ctx.store.advisor_states.save(action.advisor, action.state.value,
                                                       action.reason, action.at or time.time())
                self.ctx.publish("agent.state", None, {
                    "state": action.state.value, "reason": action.reason,
                }, advisor=action.advisor)
                for observe in self.state_observers:
                    observe(action)
        self._arm_distributor_timer()

    def _arm_distributor_timer(self) -> None:
        if self._dist_timer is not None:
            self._dist_timer.cancel()
            self._dist_timer = None
        distributor = self.ctx.distributor
        deadline = distributor.next_deadline()
        if deadline is not None:
            delay = max(0.0, deadline - time.time())
            self._dist_timer = asyncio.get_running_loop().call_later(
                delay, lambda: self.apply(distributor.tick(time.time())))

    def _escalated(self, action: Escalated) -> None:
        call = self.ctx.calls.get(action.call_id)
        if call is None:
            return
        log.info("call escalated call_id=%s step=%s", call.call_id, action.step)
        self.ctx.plugins.call("cti_call_escalated", call_id=call.call_id,
                              call=call_view(call), step=action.step)
        self.ctx.publish("call.escalated", call, {"step": action.step,
                                                  "waited_s": call.waited_s()})

    # ---------------------------------------------------- advisors (the API)
    async def update_skills(self, advisor: str, skills: Skills, by: str | None = None,
                            address: str | None = None) -> None:
        """Stored (and audited), then the new skills count from the next routing
        decision."""
        async with self.ctx.state_lock:
            await persist_skills(self.ctx.store, self.ctx.skills, advisor, skills, by, address)
            profile = self.ctx.skills.set(advisor, skills)
            self.apply(self.ctx.distributor.update_advisor(profile, time.time()))

    def set_advisor_state(self, advisor: str, state: str, reason: str | None = None) -> None:
        """An advisor sets themself available / away / logged out."""
        self.apply(self.ctx.distributor.set_state(
            advisor, AdvisorState(state), time.time(), reason=reason))

    # ---------------------------------------------------- one offer
    def close_offer(self, call: Call, outcome: str) -> None:
        """Record how the open offer ended (its decision trace row)."""
        if call.offer_id is not None:
            self.ctx.store.set_offer_outcome(call.offer_id, outcome, time.time(),
                                              call.call_id)
            call.offer_id = None

    def offer(self, call_id: str, advisor: str, trace: dict[str, Any]) -> None:
        ctx = self.ctx
        call = ctx.calls.get(call_id)
        if call is None:
            log.error("offer for an unknown call call_id=%s advisor=%s", call_id, advisor)
            self.apply(ctx.distributor.remove_call(call_id, time.time()))
            return
        if call.advisor_leg is not None:  # a stale ring: stop it first
            self.drop_advisor_leg(call)
        call.state, call.advisor, call.offered_at = "offered", advisor, time.time()
        # The trace is durable before the phone rings: "why did this call go there?"
        call.offer_id = ctx.store.add_offer(call.call_id, advisor, call.offered_at, trace)
        leg = Leg(uuid.uuid4().hex, call.worker, "advisor", advisor)
        call.advisor_leg = leg
        ctx.add_leg(call, leg)
        ctx.plugins.call("cti_call_offered", call_id=call.call_id, call=call_view(call),
                         advisor=advisor)
        seq = ctx.publish("call.offered", call, self.screen_pop(call), advisor=advisor)
        log.info("offer call_id=%s advisor=%s seq=%s", call.call_id, advisor, seq)
        ctx.spawn(self._ring(call, leg, advisor, seq), call.call_id)

    async def _ring(self, call: Call, leg: Leg, advisor: str, seq: int) -> None:
        # The screen pop goes out before the phone rings (bounded wait).
        await self._delivered(advisor, seq, SCREEN_POP_WAIT_S)
        if call.advisor_leg is not leg or call.state != "offered":
            return
        if not await self.handlers[call.kind].reach_advisor(call, leg, advisor):
            self.advisor_leg_gone(call, leg)

    def revoke(self, action: OfferRevoked) -> None:
        """The distributor gave up on an offer (ring timeout): stop ringing."""
        call = self.ctx.calls.get(action.call_id)
        if call is None or call.advisor != action.advisor:
            return
        log.info("offer revoked call_id=%s advisor=%s reason=%s", call.call_id,
                 action.advisor, action.reason)
        self.drop_advisor_leg(call)
        self.close_offer(call, f"revoked:{action.reason}")
        if call.state == "offered":
            call.state, call.advisor = "queued", None

    def reject(self, call: Call, advisor: str) -> None:
        """The advisor declined the ringing call in their client: the next one gets it."""
        leg = call.advisor_leg
        self.drop_advisor_leg(call)
        self.close_offer(call, "rejected")
        call.advisor_leg, call.advisor, call.state = None, None, "queued"
        if leg is not None:
            leg.state = "disconnected"
        self.apply(self.ctx.distributor.offer_failed(call.call_id, time.time(),
                                                     reason="rejected", advisor=advisor))

    def drop_advisor_leg(self, call: Call) -> None:
        leg = call.advisor_leg
        call.advisor_leg = None
        if leg is not None and leg.state != "disconnected":
            self.ctx.send(call, "hangup", leg=leg.leg_id)

    # ---------------------------------------------------- the advisor's phone
    def advisor_answered(self, call: Call, leg: Leg) -> None:
        ctx = self.ctx
        call.state, call.answered_at = "connected", time.time()
        self.close_offer(call, "accepted")
        ctx.store.save_call(call.to_record())  # a restart's record knows who talked
        self.handlers[call.kind].advisor_answered(call, leg)
        self.apply(ctx.distributor.offer_accepted(call.call_id, time.time()))
        log.info("connected call_id=%s advisor=%s waited_s=%s", call.call_id, call.advisor,
                 call.waited_s())
        ctx.plugins.call("cti_call_connected", call_id=call.call_id, call=call_view(call))
        ctx.publish("call.connected", call, {"waited_s": call.waited_s()})

    def advisor_leg_gone(self, call: Call, leg: Leg) -> None:
        """The advisor's leg ended: a connected call ends, a ringing offer failed."""
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
        self.close_offer(call, reason)
        call.advisor_leg, call.advisor, call.state = None, None, "queued"
        self.apply(self.ctx.distributor.offer_failed(call.call_id, time.time(),
                                                     reason=reason))

    def release_advisor(self, call: Call) -> None:
        """The advisor hands the call on: their leg ends, they go to wrap-up."""
        if call.advisor:
            self.ctx.recent_advisors.add(call.call_id, call.advisor)
        leg, call.advisor_leg = call.advisor_leg, None
        if leg is not None and leg.state != "disconnected":
            self.ctx.send(call, "hangup", leg=leg.leg_id)
        self.apply(self.ctx.distributor.call_ended(call.call_id, time.time()))

    # ---------------------------------------------------- screen pop
    def screen_pop(self, call: Call) -> dict[str, Any]:
        """Everything the advisor needs before saying hello (call.offered)."""
        ctx = self.ctx
        zone = caller_timezone(call.caller_number)
        caller = {"number": call.caller_number, "country": call.caller_country,
                  "timezone": zone, "local_time": local_time(zone, time.time())}
        return {
            "kind": call.kind,
            "caller": caller,
            "dialled": call.dialled,
            "earlier_contacts": ctx.store.earlier_contacts(call.caller_number, 5,
                                                           before=call.started_at),
            "crisis": bool(ctx.flags.get("crisis") or call.flags.get("crisis")),
            "language": call.language,
            "topic": call.topic,
            "ivr_path": call.ivr_path,
            "priority": call.priority,
            "flags": call.flags,
            "waited_s": call.waited_s(),
            "offer_timeout_s": ctx.settings.routing.offer_timeout_s,
            "plugins": self._plugin_fields(call),
        }

    def _plugin_fields(self, call: Call) -> dict[str, Any]:
        """Each plugin's cti_screen_pop fields, under its name."""
        view, out = call_view(call), {}
        for name in self.ctx.plugins.plugins:
            extra = self.ctx.plugins.one(name, "cti_screen_pop")(call=view)
            found = [e for e in extra if isinstance(e, dict)]
            if found:
                out[name] = found[0]
        return out

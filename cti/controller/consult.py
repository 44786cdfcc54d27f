"""Consult transfers: the advisor talks to a colleague or an outside party first.

Consult needs a third leg, and a media worker holds 4 calls (2 customers with
their advisors). The consult therefore runs on a worker with 2 free calls —
the call's own worker when it has them, else another one: that worker calls
the advisor's phone a second time (``X-CTI-Consult``) and the consult target,
and bridges the two. On completion the advisor's legs are dropped; if the
consult ran on another worker, the call's worker joins it with a SIP call
(``sip:join-<call id>@<worker>``) so the caller reaches the target. A colleague
consulted is reserved by the distributor and takes the call over on completion.

:class:`Consults` gets its collaborators in the constructor: the offers (the
distributor's actions, the screen pop, releasing the advisor), the worker rooms
and the call ending. None of them calls back into it. Every log line carries
the call id.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cti.controller.calls import Call, Leg
from cti.controller.capacity import WorkerRooms
from cti.controller.context import CallControlError, FlowContext
from cti.controller.ending import CallEnding
from cti.controller.offers import Offers

log = logging.getLogger("cti.flow")

JOIN_PREFIX = "join-"


@dataclass
class Consult:
    target: str
    target_type: str
    by: str
    worker: str
    advisor_leg: Leg  # the advisor's phone, called a second time
    target_leg: Leg
    state: str = "ringing"  # ringing -> talking -> completed | cancelled | failed
    join_leg: Leg | None = None  # on the call's worker, when the consult ran elsewhere
    colleague: str | None = None  # an advisor consulted (reserved meanwhile)


class Consults:
    def __init__(self, ctx: FlowContext, offers: Offers, rooms: WorkerRooms,
                 ending: CallEnding,
                 advisor_changed: Callable[[Call, Leg], None] | None = None) -> None:
        self.ctx = ctx
        self.offers = offers
        self.rooms = rooms
        self.ending = ending
        #: A consulted colleague took the call over (the monitors' links follow).
        self.advisor_changed = advisor_changed

    def consulted(self, call_id: str) -> str | None:
        """The colleague a running consult about the call rings or talks to."""
        call = self.ctx.calls.get(call_id)
        return call.consult.colleague if call is not None and call.consult else None

    # ------------------------------------------------------------ start
    def start(self, call: Call, by: str, target_type: str, target: str) -> None:
        """Put the caller on hold and ring the advisor's phone again and the target."""
        ctx = self.ctx
        if by != call.advisor:
            raise CallControlError("only the advisor on the call can consult")
        colleague = None
        if target_type == "external":
            worker, uri = self._consult_worker(call), ctx.transfer_uri(target)
        else:
            colleague, uri = self._reserve_colleague(call, target_type, target)
            worker = call.worker
        second = Leg(uuid.uuid4().hex, worker, "consult_advisor", by)
        other = Leg(uuid.uuid4().hex, worker, "consult_target", colleague or target)
        call.consult = Consult(target, target_type, by, worker, second, other,
                               colleague=colleague)
        for leg in (second, other):
            ctx.add_leg(call, leg)
        assert call.advisor_leg is not None
        ctx.send(call, "unbridge", a=call.customer.leg_id, b=call.advisor_leg.leg_id)
        ctx.play_music(call)
        log.info("consult call_id=%s target=%s colleague=%s worker=%s", call.call_id, target,
                 colleague, worker)
        self.rooms.guard_room(worker)
        if colleague is not None:  # their card shows the caller before their phone rings
            ctx.publish("call.offered", call, self.offers.screen_pop(call), advisor=colleague)
        self._event(call, call.consult, "ringing")
        for leg, to, headers in (
            (second, ctx.advisor_uri(by), {"X-CTI-Consult": colleague or target}),
            (other, uri, {"X-CTI-Consult": by} if colleague else {}),
        ):
            ctx.spawn(self._dial(call, leg, to, headers), call.call_id)

    def _consult_worker(self, call: Call) -> str:
        worker = self.rooms.consult_worker(call.worker)
        if worker is None:
            raise CallControlError("no media worker has room for a consult now: "
                                   "try again in a moment or transfer blind")
        return worker

    def _reserve_colleague(self, call: Call, target_type: str, target: str) -> tuple[str, str]:
        """The colleague to consult (named, or the best free one of a queue), reserved."""
        distributor = self.ctx.distributor
        now = time.time()
        if target_type == "queue":
            colleague = distributor.pick_advisor(call.language or "", target, now)
            if colleague is None:
                raise CallControlError(f"nobody for {target} is free for a consult now: "
                                       "transfer blind to the queue")
        else:
            colleague = target
        # Both consult legs stay on the call's worker: the colleague then simply
        # keeps the caller there when the consult is completed.
        if self.rooms.free_calls(call.worker) < 2:
            raise CallControlError("no room on this call's media worker for a consult with "
                                   "a colleague now: transfer blind")
        try:
            actions = distributor.reserve_for_consult(colleague, call.call_id, now)
        except ValueError as e:
            raise CallControlError(str(e)) from None
        self.offers.apply(actions)
        return colleague, self.ctx.advisor_uri(colleague)

    def _event(self, call: Call, consult: Consult, state: str) -> None:
        """call.consult, once for the consulting advisor and once for the colleague."""
        data = {"state": state, "target": consult.target, "target_type": consult.target_type,
                "by": consult.by}
        for advisor in filter(None, (consult.by, consult.colleague)):
            self.ctx.publish("call.consult", call, data, advisor=advisor)

    async def _dial(self, call: Call, leg: Leg, uri: str, headers: dict[str, str]) -> None:
        if not await self.ctx.dial_leg(call, leg, uri, worker=leg.worker, headers=headers):
            self.leg_changed(call, leg)

    # ------------------------------------------------------------ legs
    def leg_changed(self, call: Call, leg: Leg) -> None:
        """A consult leg answered or ended."""
        consult = call.consult
        if consult is None:
            return
        if leg is consult.join_leg:
            if leg.state == "confirmed":
                self.ctx.send(call, "bridge", a=call.customer.leg_id, b=leg.leg_id)
            elif leg.state == "disconnected":
                self.ending.end_call(call, "transfer_ended")
            return
        if leg.state == "disconnected":
            if consult.state == "completed" and leg is consult.target_leg:
                self.ending.end_call(call, "transfer_ended")
            elif consult.state in ("ringing", "talking"):
                failed = leg is consult.target_leg and consult.state == "ringing"
                self.finish(call, "failed" if failed else "cancelled", leg.end_code)
            return
        both = consult.advisor_leg.state == consult.target_leg.state == "confirmed"
        if leg.state == "confirmed" and both and consult.state == "ringing":
            consult.state = "talking"
            self.ctx.send_to(consult.worker, call, "bridge", a=consult.advisor_leg.leg_id,
                             b=consult.target_leg.leg_id)
            self._event(call, consult, "talking")

    # ------------------------------------------------------------ the end
    def cancel(self, call_id: str, by: str) -> None:
        call = self.ctx.active(call_id)
        if call.consult is None or call.consult.state not in ("ringing", "talking"):
            raise CallControlError("no consult in progress")
        self.finish(call, "cancelled")

    def finish(self, call: Call, state: str, code: int | None = None) -> None:
        """Cancelled or failed: the consult legs end, the advisor has the caller again."""
        ctx = self.ctx
        consult = call.consult
        assert consult is not None
        call.consult = None
        for leg in (consult.advisor_leg, consult.target_leg):
            if leg.state != "disconnected":
                ctx.send_to(consult.worker, call, "hangup", leg=leg.leg_id)
        if call.advisor_leg is not None and call.state == "connected":
            ctx.send(call, "bridge", a=call.customer.leg_id, b=call.advisor_leg.leg_id)
        if consult.colleague is not None:
            self.offers.apply(ctx.distributor.release_consult(consult.colleague, time.time()))
        log.info("consult %s call_id=%s target=%s code=%s", state, call.call_id, consult.target,
                 code)
        self._event(call, consult, state)

    def complete(self, call_id: str, by: str) -> None:
        """Hand the caller to the consulted party; the advisor goes to wrap-up."""
        ctx = self.ctx
        call = ctx.active(call_id)
        consult = call.consult
        if consult is None or consult.state != "talking":
            raise CallControlError("the consulted party has not answered yet")
        consult.state = "completed"
        advisor = call.advisor
        ctx.send_to(consult.worker, call, "hangup", leg=consult.advisor_leg.leg_id)
        self.offers.release_advisor(call)
        call.state, call.held, call.transfer_by = "transferred", False, by
        log.info("consult completed call_id=%s target=%s", call.call_id, consult.target)
        self._event(call, consult, "completed")
        if consult.colleague is not None:
            self._colleague_takes_over(call, consult)
        elif consult.worker == call.worker:
            ctx.send(call, "bridge", a=call.customer.leg_id, b=consult.target_leg.leg_id)
        else:
            self._join_workers(call, consult)
        ctx.publish("call.transferred", call, {
            "target": consult.target, "target_type": consult.target_type, "kind": "consult",
            "by": by}, advisor=advisor)

    def _colleague_takes_over(self, call: Call, consult: Consult) -> None:
        """The consulted colleague keeps the caller: a connected call of theirs now."""
        colleague = consult.colleague
        assert colleague is not None
        leg = consult.target_leg
        leg.role = "advisor"
        call.consult, call.state = None, "connected"
        call.advisor, call.advisor_leg = colleague, leg
        self.ctx.send(call, "bridge", a=call.customer.leg_id, b=leg.leg_id)
        if self.advisor_changed is not None:
            self.advisor_changed(call, leg)
        self.offers.apply(self.ctx.distributor.take_over(
            call.call_id, colleague, language=call.language or "", topic=call.topic or "",
            priority=call.priority, now=time.time()))
        self.ctx.publish("call.connected", call, {"waited_s": call.waited_s()})

    # ------------------------------------------------------------ joining workers
    def _join_workers(self, call: Call, consult: Consult) -> None:
        """Connect the caller's worker to the consult's worker with a SIP call."""
        ctx = self.ctx
        link = ctx.pool.get(consult.worker)
        assert link is not None
        leg = Leg(uuid.uuid4().hex, call.worker, "join", consult.worker)
        consult.join_leg = leg
        ctx.add_leg(call, leg)
        uri = f"sip:{JOIN_PREFIX}{call.call_id}@{link.spec.ip}:{link.spec.sip_port}"

        async def dial() -> None:
            if not await ctx.dial_leg(call, leg, uri):
                self.ending.end_call(call, "transfer_failed")

        ctx.spawn(dial(), call.call_id)

    def join_incoming(self, worker: str, msg: dict[str, Any], call_id: str) -> None:
        """The consult's worker receives the join: answer it and bridge it to the target."""
        ctx = self.ctx
        leg_id = str(msg["leg"])
        call = ctx.calls.get(call_id)
        consult = call.consult if call is not None else None
        if call is None or consult is None or consult.worker != worker:
            log.warning("unexpected join call_id=%s worker=%s", call_id, worker)
            link = ctx.pool.get(worker)
            if link is not None:
                ctx.spawn(link.command("hangup", leg=leg_id, code=404), call_id)
            return
        leg = Leg(leg_id, worker, "join_in", call.worker)
        ctx.add_leg(call, leg)
        ctx.send_to(worker, call, "answer", leg=leg_id, code=200)
        ctx.send_to(worker, call, "bridge", a=leg_id, b=consult.target_leg.leg_id)

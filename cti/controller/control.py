"""Call control for advisors and supervisors: hang up, hold, transfer, consult, wrap-up.

A mixin of :class:`cti.controller.flow.CallFlow`, called from the REST API and
the WebSocket commands. Every request is checked and refused with a one-line
:class:`CallControlError`; an unknown call id raises KeyError.

Consult needs a third leg, and a media worker holds 4 calls (2 customers with
their advisors). The consult therefore runs on a worker with 2 free calls —
the call's own worker when it has them, else another one: that worker calls
the advisor's phone a second time (``X-CTI-Consult``) and the consult target,
and bridges the two. On completion the advisor's legs are dropped; if the
consult ran on another worker, the call's worker joins it with a SIP call
(``sip:join-<call id>@<worker>``) so the caller reaches the target. Capacity
for customers is never reserved for consults that may not happen.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from cti.controller.calls import Call, CallRegistry, Leg
from cti.controller.workers import WorkerPool
from cti.routing import AdvisorState, Distributor

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from cti.config import Settings
    from cti.store.db import Store

log = logging.getLogger("cti.flow")

#: Calls one media worker holds (PJSUA_MAX_CALLS of the pjsua2 wheel).
CALLS_PER_WORKER = 4
JOIN_PREFIX = "join-"

TransferKind = Literal["blind", "consult"]
TargetType = Literal["queue", "advisor", "external"]


class CallControlError(ValueError):
    """A call-control request that cannot be carried out; str() is the reason."""


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


class CallControlMixin:
    settings: Settings
    pool: WorkerPool
    store: Store
    calls: CallRegistry
    distributor: Distributor
    flags: dict[str, bool]
    _recent_advisors: dict[str, set[str]]
    #: Set by the gateway: take a worker out of (False) or back into (True) the
    #: edge's rotation for new callers.
    edge_rotation: Callable[[str, bool], None] | None
    _out_of_rotation: set[str]

    if TYPE_CHECKING:  # provided by CallFlow and IvrFlowMixin
        def _send(self, call: Call, cmd: str, **fields: Any) -> None: ...
        def _send_to(self, worker: str, call: Call, cmd: str, **fields: Any) -> None: ...
        def _publish(self, type_: str, call: Call | None, data: dict[str, Any],
                     advisor: str | None = None) -> int: ...
        def _publish_id(self, type_: str, call_id: str | None, data: dict[str, Any],
                        advisor: str | None = None) -> int: ...
        def _spawn(self, coro: Coroutine[Any, Any, Any], call_id: str | None = None) -> None: ...
        def _end_call(self, call: Call, reason: str, worker_alive: bool = True) -> None: ...
        def _apply_routing(self, actions: list[Any]) -> None: ...
        def _play_music(self, call: Call) -> None: ...
        def _dial_leg(self, call: Call, leg: Leg, uri: str, worker: str | None = None,
                      headers: dict[str, str] | None = None) -> Coroutine[Any, Any, bool]: ...
        def _drop_advisor_leg(self, call: Call) -> None: ...
        def _close_offer(self, call: Call, outcome: str) -> None: ...
        def _on_advisor_leg_gone(self, call: Call, leg: Leg) -> None: ...
        def transfer_uri(self, target: str) -> str: ...

    # ------------------------------------------------------------- lookups
    def _active(self, call_id: str) -> Call:
        call = self.calls.get(call_id)
        if call is None:
            raise KeyError(f"no active call {call_id}")
        return call

    def advisor_of(self, call_id: str) -> str | None:
        """The advisor on (or offered) the call, active or already ended."""
        call = self.calls.get(call_id)
        if call is not None:
            return call.advisor
        rec = self.store.get_call(call_id)
        return rec.advisor if rec else None

    def consulted(self, call_id: str) -> str | None:
        """The colleague a running consult about the call rings or talks to."""
        call = self.calls.get(call_id)
        return call.consult.colleague if call is not None and call.consult else None

    def handled_by(self, call_id: str, advisor: str) -> bool:
        """True if ``advisor`` talked to the caller (also before a transfer)."""
        if advisor in self._recent_advisors.get(call_id, ()):
            return True
        return self.advisor_of(call_id) == advisor

    def _connected(self, call_id: str) -> Call:
        call = self._active(call_id)
        if call.state != "connected":
            raise CallControlError(f"call is {call.state}, not connected to an advisor")
        return call

    # ------------------------------------------------------------- offers
    def reject_offer(self, call_id: str, advisor: str) -> None:
        """The advisor declines the ringing call: the next advisor gets it (a
        colleague who declines a consult ends it: the advisor has the caller again)."""
        call = self._active(call_id)
        if self.consulted(call_id) == advisor and call.consult.state == "ringing":
            log.info("consult declined in client call_id=%s colleague=%s", call_id, advisor)
            self._finish_consult(call, "failed")
            return
        if call.state != "offered" or call.advisor != advisor:
            raise CallControlError("this call is not ringing for you")
        leg = call.advisor_leg
        log.info("offer rejected in client call_id=%s advisor=%s", call_id, advisor)
        self._drop_advisor_leg(call)
        self._close_offer(call, "rejected")
        call.advisor_leg, call.advisor, call.state = None, None, "queued"
        if leg is not None:
            leg.state = "disconnected"
        self._apply_routing(self.distributor.offer_failed(call_id, time.time(),
                                                          reason="rejected", advisor=advisor))

    def accept_offer(self, call_id: str, advisor: str) -> None:
        """The advisor takes the ringing call in the client (their phone answers it)."""
        call = self._active(call_id)
        consulted = self.consulted(call_id) == advisor
        if not consulted and (call.state not in ("offered", "connected")
                              or call.advisor != advisor):
            raise CallControlError("this call is not ringing for you")
        call.accepted_in_client_at = call.accepted_in_client_at or time.time()
        log.info("offer accepted in client call_id=%s advisor=%s", call_id, advisor)

    # -------------------------------------------------------- hang up, hold
    def hangup_call(self, call_id: str, by: str) -> None:
        call = self._active(call_id)
        if call.consult is not None:
            self._finish_consult(call, "cancelled")
        reason = "hangup_by_advisor" if by == call.advisor else "hangup_by_supervisor"
        log.info("hangup requested call_id=%s by=%s", call_id, by)
        self._end_call(call, reason)

    def hold_call(self, call_id: str, by: str, on: bool) -> None:
        call = self._connected(call_id)
        if call.consult is not None:
            raise CallControlError("the caller is already on hold for a consult")
        if call.held == on:
            return
        assert call.advisor_leg is not None
        call.held = on
        if on:
            self._send(call, "unbridge", a=call.customer.leg_id, b=call.advisor_leg.leg_id)
            self._play_music(call)
        else:
            self._send(call, "bridge", a=call.customer.leg_id, b=call.advisor_leg.leg_id)
        self._publish("call.held", call, {"on": on, "by": by})

    # ----------------------------------------------------------- transfers
    def transfer_call(self, call_id: str, by: str, kind: TransferKind, target_type: TargetType,
                      target: str) -> None:
        call = self._connected(call_id)
        if call.consult is not None:
            raise CallControlError("a consult is in progress: complete or cancel it first")
        self._check_target(call, target_type, target)
        if kind == "consult":
            self._start_consult(call, by, target_type, target)
            return
        self._publish("call.transferring", call, {"target": target, "target_type": target_type,
                                                  "kind": kind, "by": by})
        advisor = call.advisor
        self._release_advisor(call)
        if target_type == "external":
            self._blind_external(call, target, by)
            return
        topic = target if target_type == "queue" else call.topic or ""
        self._requeue(call, topic, preferred=target if target_type == "advisor" else None)
        self._publish("call.transferred", call, {"target": target, "target_type": target_type,
                                                 "kind": kind, "by": by}, advisor=advisor)

    def _check_target(self, call: Call, target_type: str, target: str) -> None:
        if target_type == "queue":
            if target not in {m.code for m in self.settings.ivr.topics}:
                raise CallControlError(f"{target!r} is not a queue (an IVR topic)")
        elif target_type == "advisor":
            if self.settings.advisor(target) is None or target == call.advisor:
                raise CallControlError(f"{target!r} is not another advisor")
            if self.distributor.advisor_state(target) is AdvisorState.LOGGED_OUT:
                raise CallControlError(f"{target} is logged out")
            if call.language not in self.distributor.advisor_profile(target).languages:
                raise CallControlError(f"{target} does not speak {call.language}")
        elif target_type == "external":
            if target not in {d.key for d in self.settings.directory}:
                raise CallControlError(f"{target!r} is not in the directory")
        else:
            raise CallControlError(f"unknown target type {target_type!r}")

    def _release_advisor(self, call: Call) -> None:
        """The advisor hands the call on: their leg ends, they go to wrap-up."""
        if call.advisor:
            self._recent_advisors.setdefault(call.call_id, set()).add(call.advisor)
        leg, call.advisor_leg = call.advisor_leg, None
        if leg is not None and leg.state != "disconnected":
            self._send(call, "hangup", leg=leg.leg_id)
        self._apply_routing(self.distributor.call_ended(call.call_id, time.time()))

    def _requeue(self, call: Call, topic: str, preferred: str | None = None) -> None:
        """Back to a queue, keeping the caller's place in time (music while waiting)."""
        call.state, call.advisor, call.held = "queued", None, False
        call.topic = topic
        call.ivr_path.append(f"transfer->{preferred or topic}")
        self._play_music(call)
        self._apply_routing(self.distributor.add_call(
            call.call_id, language=call.language or "", topic=topic, priority=call.priority,
            preferred_advisor=preferred, direct=preferred is not None, now=time.time(),
            enqueued_at=call.queued_at))

    def _blind_external(self, call: Call, target: str, by: str) -> None:
        uri = self.transfer_uri(target)
        leg = Leg(uuid.uuid4().hex, call.worker, "external", target)
        call.external_leg, call.state, call.held = leg, "transferring", False
        call.transfer_by = by
        call.legs.append(leg)
        self.calls.bind_leg(call, leg)
        self._play_music(call)
        log.info("blind transfer call_id=%s target=%s uri=%s", call.call_id, target, uri)

        async def dial() -> None:
            if not await self._dial_leg(call, leg, uri):
                self._external_failed(call, leg)

        self._spawn(dial(), call.call_id)

    def _external_failed(self, call: Call, leg: Leg) -> None:
        """A blind transfer that nobody answered: the caller goes back to the queue."""
        call.external_leg = None
        self._publish("call.transfer_failed", call, {
            "target": leg.peer, "code": leg.end_code, "reason": "no answer or busy"})
        self._requeue(call, call.topic or self.settings.ivr.default_topic)

    # ------------------------------------------------------------- consult
    def _free_calls(self, worker: str) -> int:
        """Calls the worker can still take: each waiting customer keeps one for its advisor."""
        used = 0
        for call in self.calls.all():
            for leg in call.legs:
                if leg.worker == worker and leg.state != "disconnected":
                    used += 1
            if call.worker == worker and call.advisor_leg is None and \
                    call.state in ("incoming", "ivr", "queued", "offered"):
                used += 1
        return CALLS_PER_WORKER - used

    def _guard_room(self, worker: str) -> None:
        """The edge counts callers, not consult legs: a worker a consult filled up
        leaves the rotation until it has room for a caller and an advisor again."""
        if self._free_calls(worker) < 2 and worker not in self._out_of_rotation:
            self._out_of_rotation.add(worker)
            log.info("worker out of rotation for a consult worker=%s", worker)
            if self.edge_rotation is not None:
                self.edge_rotation(worker, False)

    def recheck_rotation(self) -> None:
        """After legs ended: workers with room again go back into the edge's rotation."""
        for worker in list(self._out_of_rotation):
            link = self.pool.get(worker)
            if self._free_calls(worker) >= 2 and link is not None and link.up:
                self._out_of_rotation.discard(worker)
                log.info("worker back in rotation worker=%s", worker)
                if self.edge_rotation is not None:
                    self.edge_rotation(worker, True)

    def _consult_worker(self, call: Call) -> str:
        candidates = [call.worker] + [w for w in list(self.pool.links) if w != call.worker]
        for worker in candidates:
            link = self.pool.get(worker)
            if link is not None and link.up and self._free_calls(worker) >= 2:
                return worker
        raise CallControlError("no media worker has room for a consult now: "
                               "try again in a moment or transfer blind")

    def _start_consult(self, call: Call, by: str, target_type: str, target: str) -> None:
        if by != call.advisor:
            raise CallControlError("only the advisor on the call can consult")
        colleague = None
        if target_type == "external":
            worker, uri = self._consult_worker(call), self.transfer_uri(target)
        else:
            colleague, uri = self._reserve_colleague(call, target_type, target)
            worker = call.worker
        second = Leg(uuid.uuid4().hex, worker, "consult_advisor", by)
        other = Leg(uuid.uuid4().hex, worker, "consult_target", colleague or target)
        call.consult = Consult(target, target_type, by, worker, second, other,
                               colleague=colleague)
        for leg in (second, other):
            call.legs.append(leg)
            self.calls.bind_leg(call, leg)
        assert call.advisor_leg is not None
        self._send(call, "unbridge", a=call.customer.leg_id, b=call.advisor_leg.leg_id)
        self._play_music(call)
        log.info("consult call_id=%s target=%s colleague=%s worker=%s", call.call_id, target,
                 colleague, worker)
        self._guard_room(worker)
        if colleague is not None:  # their card shows the caller before their phone rings
            self._publish("call.offered", call, self._screen_pop(call), advisor=colleague)
        self._consult_event(call, call.consult, "ringing")
        advisor_uri = f"sip:{by}@{self.settings.sip.ip}:{self.settings.sip.port}"
        for leg, to, headers in (
            (second, advisor_uri, {"X-CTI-Consult": colleague or target}),
            (other, uri, {"X-CTI-Consult": by} if colleague else {}),
        ):
            self._spawn(self._dial_consult(call, leg, to, headers), call.call_id)

    def _reserve_colleague(self, call: Call, target_type: str, target: str) -> tuple[str, str]:
        """The colleague to consult (named, or the best free one of a queue), reserved."""
        now = time.time()
        if target_type == "queue":
            colleague = self.distributor.pick_advisor(call.language or "", target, now)
            if colleague is None:
                raise CallControlError(f"nobody for {target} is free for a consult now: "
                                       "transfer blind to the queue")
        else:
            colleague = target
        # Both consult legs stay on the call's worker: the colleague then simply
        # keeps the caller there when the consult is completed.
        if self._free_calls(call.worker) < 2:
            raise CallControlError("no room on this call's media worker for a consult with "
                                   "a colleague now: transfer blind")
        try:
            actions = self.distributor.reserve_for_consult(colleague, call.call_id, now)
        except ValueError as e:
            raise CallControlError(str(e)) from None
        self._apply_routing(actions)
        return colleague, f"sip:{colleague}@{self.settings.sip.ip}:{self.settings.sip.port}"

    def _consult_event(self, call: Call, consult: Consult, state: str) -> None:
        """call.consult, once for the consulting advisor and once for the colleague."""
        data = {"state": state, "target": consult.target, "target_type": consult.target_type,
                "by": consult.by}
        for advisor in filter(None, (consult.by, consult.colleague)):
            self._publish("call.consult", call, data, advisor=advisor)

    async def _dial_consult(self, call: Call, leg: Leg, uri: str, headers: dict[str, str]) -> None:
        if not await self._dial_leg(call, leg, uri, worker=leg.worker, headers=headers):
            self._on_consult_leg(call, leg)

    def _on_consult_leg(self, call: Call, leg: Leg) -> None:
        """A consult leg answered or ended."""
        consult = call.consult
        if consult is None:
            return
        if leg is consult.join_leg:
            if leg.state == "confirmed":
                self._send(call, "bridge", a=call.customer.leg_id, b=leg.leg_id)
            elif leg.state == "disconnected":
                self._end_call(call, "transfer_ended")
            return
        if leg.state == "disconnected":
            if consult.state == "completed" and leg is consult.target_leg:
                self._end_call(call, "transfer_ended")
            elif consult.state in ("ringing", "talking"):
                failed = leg is consult.target_leg and consult.state == "ringing"
                self._finish_consult(call, "failed" if failed else "cancelled", leg.end_code)
            return
        both = consult.advisor_leg.state == consult.target_leg.state == "confirmed"
        if leg.state == "confirmed" and both and consult.state == "ringing":
            consult.state = "talking"
            self._send_to(consult.worker, call, "bridge", a=consult.advisor_leg.leg_id,
                          b=consult.target_leg.leg_id)
            self._consult_event(call, consult, "talking")

    def consult_cancel(self, call_id: str, by: str) -> None:
        call = self._active(call_id)
        if call.consult is None or call.consult.state not in ("ringing", "talking"):
            raise CallControlError("no consult in progress")
        self._finish_consult(call, "cancelled")

    def _finish_consult(self, call: Call, state: str, code: int | None = None) -> None:
        """Cancelled or failed: the consult legs end, the advisor has the caller again."""
        consult = call.consult
        assert consult is not None
        call.consult = None
        for leg in (consult.advisor_leg, consult.target_leg):
            if leg.state != "disconnected":
                self._send_to(consult.worker, call, "hangup", leg=leg.leg_id)
        if call.advisor_leg is not None and call.state == "connected":
            self._send(call, "bridge", a=call.customer.leg_id, b=call.advisor_leg.leg_id)
        if consult.colleague is not None:
            self._apply_routing(self.distributor.release_consult(consult.colleague, time.time()))
        log.info("consult %s call_id=%s target=%s code=%s", state, call.call_id, consult.target,
                 code)
        self._consult_event(call, consult, state)

    def consult_complete(self, call_id: str, by: str) -> None:
        """Hand the caller to the consulted party; the advisor goes to wrap-up."""
        call = self._active(call_id)
        consult = call.consult
        if consult is None or consult.state != "talking":
            raise CallControlError("the consulted party has not answered yet")
        consult.state = "completed"
        advisor = call.advisor
        self._send_to(consult.worker, call, "hangup", leg=consult.advisor_leg.leg_id)
        self._release_advisor(call)
        call.state, call.held, call.transfer_by = "transferred", False, by
        log.info("consult completed call_id=%s target=%s", call.call_id, consult.target)
        self._consult_event(call, consult, "completed")
        if consult.colleague is not None:
            self._colleague_takes_over(call, consult)
        elif consult.worker == call.worker:
            self._send(call, "bridge", a=call.customer.leg_id, b=consult.target_leg.leg_id)
        else:
            self._join_workers(call, consult)
        self._publish("call.transferred", call, {
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
        self._send(call, "bridge", a=call.customer.leg_id, b=leg.leg_id)
        self._apply_routing(self.distributor.take_over(
            call.call_id, colleague, language=call.language or "", topic=call.topic or "",
            priority=call.priority, now=time.time()))
        self._publish("call.connected", call, {"waited_s": call.waited_s()})

    def _join_workers(self, call: Call, consult: Consult) -> None:
        """Connect the caller's worker to the consult's worker with a SIP call."""
        link = self.pool.get(consult.worker)
        assert link is not None
        leg = Leg(uuid.uuid4().hex, call.worker, "join", consult.worker)
        consult.join_leg = leg
        call.legs.append(leg)
        self.calls.bind_leg(call, leg)
        uri = f"sip:{JOIN_PREFIX}{call.call_id}@{link.spec.ip}:{link.spec.sip_port}"

        async def dial() -> None:
            if not await self._dial_leg(call, leg, uri):
                self._end_call(call, "transfer_failed")

        self._spawn(dial(), call.call_id)

    def on_join_incoming(self, worker: str, msg: dict[str, Any], call_id: str) -> None:
        """The consult's worker receives the join: answer it and bridge it to the target."""
        leg_id = str(msg["leg"])
        call = self.calls.get(call_id)
        consult = call.consult if call is not None else None
        if call is None or consult is None or consult.worker != worker:
            log.warning("unexpected join call_id=%s worker=%s", call_id, worker)
            link = self.pool.get(worker)
            if link is not None:
                self._spawn(link.command("hangup", leg=leg_id, code=404), call_id)
            return
        leg = Leg(leg_id, worker, "join_in", call.worker)
        call.legs.append(leg)
        self.calls.bind_leg(call, leg)
        self._send_to(worker, call, "answer", leg=leg_id, code=200)
        self._send_to(worker, call, "bridge", a=leg_id, b=consult.target_leg.leg_id)

    # ------------------------------------------------------------- wrap-up
    def wrap_up(self, call_id: str, advisor: str, code: str, note: str) -> None:
        """Store the after-call work; the advisor is available again."""
        if not self.handled_by(call_id, advisor):
            raise KeyError(f"no call {call_id} of {advisor}")
        codes = [c.code for c in self.settings.wrap_up.codes]
        if code not in codes:
            raise CallControlError(f"unknown wrap-up code {code!r} (expected one of "
                                   f"{', '.join(codes)})")
        self.store.save_wrap_up(call_id, advisor, code, note, time.time())
        self._publish_id("call.wrap_up", call_id, {"code": code, "note": note, "by": advisor},
                         advisor=advisor)
        if self.distributor.advisor_state(advisor) is AdvisorState.WRAP_UP:
            self._apply_routing(self.distributor.set_state(advisor, AdvisorState.AVAILABLE,
                                                           time.time()))

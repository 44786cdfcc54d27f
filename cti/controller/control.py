"""Call control for advisors and supervisors: hang up, hold, blind transfer, wrap-up.

Called from the REST API and the WebSocket commands (through the CallFlow
facade). Every request is checked and refused with a one-line
:class:`CallControlError`; an unknown call id raises KeyError. A consult
transfer is started here and run by :class:`cti.controller.consult.Consults`.

:class:`CallControl` gets every service it uses in its constructor (offers,
consults, waiting, inbound for blind transfers out, the call ending); none of
them calls back into it.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Literal

from cti.controller.calls import Call
from cti.controller.consult import Consults
from cti.controller.context import CallControlError, FlowContext
from cti.controller.ending import CallEnding
from cti.controller.inbound import Inbound
from cti.controller.offers import Offers
from cti.controller.recovery import RecoveryBreaks
from cti.controller.waiting import Waiting
from cti.routing import AdvisorState

__all__ = ["CallControl", "CallControlError", "TargetType", "TransferKind"]

log = logging.getLogger("cti.flow")

TransferKind = Literal["blind", "consult"]
TargetType = Literal["queue", "advisor", "external"]


class CallControl:
    def __init__(self, ctx: FlowContext, offers: Offers, consults: Consults,
                 waiting: Waiting, inbound: Inbound, ending: CallEnding,
                 recovery: RecoveryBreaks) -> None:
        self.ctx = ctx
        self.recovery = recovery
        self.offers = offers
        self.consults = consults
        self.waiting = waiting
        self.inbound = inbound
        self.ending = ending

    # ------------------------------------------------------------- lookups
    def advisor_of(self, call_id: str) -> str | None:
        """The advisor on (or offered) the call, active or already ended."""
        call = self.ctx.calls.get(call_id)
        if call is not None:
            return call.advisor
        rec = self.ctx.store.get_call(call_id)
        return rec.advisor if rec else None

    def handled_by(self, call_id: str, advisor: str) -> bool:
        """True if ``advisor`` talked to the caller (also before a transfer)."""
        if self.ctx.recent_advisors.talked_to(call_id, advisor):
            return True
        if self.advisor_of(call_id) == advisor:
            return True
        try:  # a call wrapped up later: forgotten here, or from before a restart
            return self.ctx.store.talked_to(call_id, advisor)
        except sqlite3.Error:
            return False

    def _connected(self, call_id: str) -> Call:
        call = self.ctx.active(call_id)
        if call.state != "connected":
            raise CallControlError(f"call is {call.state}, not connected to an advisor")
        return call

    # ------------------------------------------------------------- offers
    def reject_offer(self, call_id: str, advisor: str) -> None:
        """The advisor declines the ringing call: the next advisor gets it (a
        colleague who declines a consult ends it: the advisor has the caller again)."""
        call = self.ctx.active(call_id)
        if self.consults.consulted(call_id) == advisor and call.consult.state == "ringing":
            log.info("consult declined in client call_id=%s colleague=%s", call_id, advisor)
            self.consults.finish(call, "failed")
            return
        if call.state != "offered" or call.advisor != advisor:
            raise CallControlError("this call is not ringing for you")
        log.info("offer rejected in client call_id=%s advisor=%s", call_id, advisor)
        self.offers.reject(call, advisor)

    def accept_offer(self, call_id: str, advisor: str) -> None:
        """The advisor takes the ringing call in the client (their phone answers it)."""
        call = self.ctx.active(call_id)
        consulted = self.consults.consulted(call_id) == advisor
        if not consulted and (call.state not in ("offered", "connected")
                              or call.advisor != advisor):
            raise CallControlError("this call is not ringing for you")
        call.accepted_in_client_at = call.accepted_in_client_at or time.time()
        log.info("offer accepted in client call_id=%s advisor=%s", call_id, advisor)

    # -------------------------------------------------------- hang up, hold
    def hangup_call(self, call_id: str, by: str) -> None:
        call = self.ctx.active(call_id)
        if call.consult is not None:
            self.consults.finish(call, "cancelled")
        reason = "hangup_by_advisor" if by == call.advisor else "hangup_by_supervisor"
        log.info("hangup requested call_id=%s by=%s", call_id, by)
        self.ending.end_call(call, reason)

    def hold_call(self, call_id: str, by: str, on: bool) -> None:
        ctx = self.ctx
        call = self._connected(call_id)
        if call.consult is not None:
            raise CallControlError("the caller is already on hold for a consult")
        if call.held == on:
            return
        assert call.advisor_leg is not None
        call.held = on
        call.held_at = time.time() if on else None  # the desktops' hold timer
        if on:
            ctx.send(call, "unbridge", a=call.customer.leg_id, b=call.advisor_leg.leg_id)
            ctx.play_music(call)
        else:
            ctx.send(call, "bridge", a=call.customer.leg_id, b=call.advisor_leg.leg_id)
        ctx.publish("call.held", call, {"on": on, "by": by})

    # ----------------------------------------------------------- transfers
    def transfer_call(self, call_id: str, by: str, kind: TransferKind, target_type: TargetType,
                      target: str) -> None:
        call = self._connected(call_id)
        if call.consult is not None:
            raise CallControlError("a consult is in progress: complete or cancel it first")
        self._check_target(call, target_type, target)
        if kind == "consult":
            self.consults.start(call, by, target_type, target)
            return
        self.ctx.publish("call.transferring", call, {
            "target": target, "target_type": target_type, "kind": kind, "by": by})
        advisor = call.advisor
        self.offers.release_advisor(call)
        if target_type == "external":
            self.inbound.blind_external(call, target, by)
            return
        topic = target if target_type == "queue" else call.topic or ""
        self.waiting.requeue(call, topic, preferred=target if target_type == "advisor" else None)
        self.ctx.publish("call.transferred", call, {
            "target": target, "target_type": target_type, "kind": kind, "by": by},
            advisor=advisor)

    def _check_target(self, call: Call, target_type: str, target: str) -> None:
        settings, distributor = self.ctx.settings, self.ctx.distributor
        if target_type == "queue":
            if target not in {m.code for m in settings.ivr.topics}:
                raise CallControlError(f"{target!r} is not a queue (an IVR topic)")
        elif target_type == "advisor":
            if target not in self.ctx.advisors or target == call.advisor:
                raise CallControlError(f"{target!r} is not another advisor")
            if distributor.advisor_state(target) is AdvisorState.LOGGED_OUT:
                raise CallControlError(f"{target} is logged out")
            if call.language not in distributor.advisor_profile(target).languages:
                raise CallControlError(f"{target} does not speak {call.language}")
        elif target_type == "external":
            if target not in {d.key for d in settings.directory}:
                raise CallControlError(f"{target!r} is not in the directory")
        else:
            raise CallControlError(f"unknown target type {target_type!r}")

    # ------------------------------------------------------------- wrap-up
    def wrap_up(self, call_id: str, advisor: str, code: str, note: str,
                distressing: bool = False) -> None:
        """Store the after-call work; the advisor is available again, or on a
        recovery break after a distressing call (the box, or a code marked so)."""
        ctx = self.ctx
        if not self.handled_by(call_id, advisor):
            raise KeyError(f"no call {call_id} of {advisor}")
        settings = ctx.settings.wrap_up
        codes = [c.code for c in settings.codes]
        if code not in codes:
            raise CallControlError(f"unknown wrap-up code {code!r} (expected one of "
                                   f"{', '.join(codes)})")
        ctx.store.save_wrap_up(call_id, advisor, code, note, time.time())
        distressing = distressing or any(c.distressing for c in settings.codes if c.code == code)
        ctx.publish_id("call.wrap_up", call_id, {"code": code, "note": note, "by": advisor,
                                                 "distressing": distressing}, advisor=advisor)
        if distressing and settings.recovery_break_s > 0:
            self.recovery.start(advisor, settings.recovery_break_s, call_id=call_id,
                                by=advisor, why="distressing_call")
        elif ctx.distributor.advisor_state(advisor) is AdvisorState.WRAP_UP:
            self.offers.apply(ctx.distributor.set_state(advisor, AdvisorState.AVAILABLE,
                                                        time.time()))

"""Ending a call: every leg hung up, the record saved, the advisor freed, once.

:class:`CallEnding` gets :class:`cti.controller.offers.Offers` in its
constructor (it closes the open offer and applies the distributor's answer) and
the services that keep per-call state as small ``forget`` callables (the IVR
sessions, the waiting timers), so it needs no reference to them. Offers get
the ending after construction (see cti/controller/offers.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from cti.controller.calls import Call, call_view
from cti.controller.context import FlowContext
from cti.controller.offers import Offers

log = logging.getLogger("cti.flow")

#: Drops what a service keeps about a call that ended (timers, sessions).
Forget = Callable[[Call], None]


class CallEnding:
    def __init__(self, ctx: FlowContext, offers: Offers, forget: Sequence[Forget]) -> None:
        self.ctx = ctx
        self.offers = offers
        self._forget = list(forget)

    def end_call(self, call: Call, reason: str, worker_alive: bool = True) -> None:
        """End the call with ``reason``; a call already ended is left alone."""
        if call.state == "ended":
            return
        ctx = self.ctx
        was = call.state
        call.state, call.ended_at, call.end_reason = "ended", time.time(), reason
        for forget in self._forget:
            forget(call)
        if worker_alive:  # a dead worker's legs are ended by the edge, not by commands
            for leg in call.legs:
                # (a call back's legs have no worker until an advisor takes it)
                if leg.state != "disconnected" and leg.worker:
                    ctx.send_to(leg.worker, call, "hangup", leg=leg.leg_id)
        if call.advisor:
            ctx.recent_advisors.add(call.call_id, call.advisor)
        self.offers.close_offer(call, reason)
        now = time.time()
        if was == "connected":  # the advisor goes to wrap-up
            actions = ctx.distributor.call_ended(call.call_id, now)
        else:
            actions = ctx.distributor.remove_call(call.call_id, now)
        # Never raises: while the store cannot write, the record is queued (and the
        # failure shows in /health); the call still leaves the active list.
        try:
            ctx.store.save_call(call.to_record())
        except Exception:
            log.exception("call record not saved call_id=%s", call.call_id)
        log.info("call ended call_id=%s reason=%s advisor=%s", call.call_id, reason,
                 call.advisor)
        ctx.calls.remove(call)
        ctx.plugins.call("cti_call_ended", call_id=call.call_id, call=call_view(call))
        ctx.publish("call.ended", call, {"reason": reason, "advisor": call.advisor,
                                         "duration_s": round(now - call.started_at, 1)})
        self.offers.apply(actions)

    def customer_gone(self, call: Call, cause: str = "") -> None:
        """The caller hung up: while talking, or before anyone answered.

        A cause from the worker (``rtp_timeout``: the caller's audio stopped and
        the worker hung up) is the call's end reason instead.
        """
        if cause:
            self.end_call(call, cause)
            return
        talking = call.state in ("connected", "transferred")
        self.end_call(call, "caller_hangup" if talking else "caller_abandoned")

    def hangup_all(self) -> None:
        """At shutdown."""
        for call in self.ctx.calls.all():
            self.end_call(call, "shutdown")

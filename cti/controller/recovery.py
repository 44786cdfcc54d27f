"""Recovery breaks: after a distressing call (a wrap-up code marked ``distressing``,
or the advisor ticking the box), or when a supervisor grants one, the advisor is
away with reason ``recovery`` for a while before the next offer, then available
again. Supervisors see it (``agent.recovery``, the wallboard).

The break is an away state of the distributor, so no offer reaches the advisor
during it; asked for during a call, it begins when the call (and wrap-up) ends
(the distributor's pending state). The advisor may end it early by choosing a
state themselves; the timer then does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from cti.controller.context import FlowContext
from cti.controller.offers import Offers
from cti.routing import AdvisorChanged, AdvisorState

log = logging.getLogger("cti.flow")

REASON = "recovery"


@dataclass
class _Break:
    seconds: float
    call_id: str | None
    by: str | None
    why: str  # "distressing_call" or "granted"
    until: float | None = None
    timer: asyncio.TimerHandle | None = None


class RecoveryBreaks:
    def __init__(self, ctx: FlowContext, offers: Offers) -> None:
        self.ctx = ctx
        self.offers = offers
        self._breaks: dict[str, _Break] = {}
        offers.state_observers.append(self._observe)

    def on_break(self, advisor: str) -> bool:
        d = self.ctx.distributor
        return d.advisor_state(advisor) is AdvisorState.AWAY and d.advisor_reason(advisor) == REASON

    def until(self, advisor: str) -> float | None:
        b = self._breaks.get(advisor)
        return b.until if b else None

    def start(self, advisor: str, seconds: float, *, call_id: str | None, by: str | None,
              why: str) -> None:
        """Away for ``seconds`` now, or from the end of the advisor's call."""
        old = self._breaks.pop(advisor, None)
        if old is not None and old.timer is not None:
            old.timer.cancel()
        self._breaks[advisor] = _Break(seconds, call_id, by, why)
        log.info("recovery break of %s for %.0f s (%s, by %s) call_id=%s", advisor, seconds,
                 why, by, call_id)
        self.ctx.spawn(self.ctx.store.audit.record("recovery.start", by, {
            "advisor": advisor, "seconds": seconds, "why": why, "call_id": call_id}),
            call_id=call_id)
        distributor = self.ctx.distributor
        if self.on_break(advisor):
            self._begin(advisor, time.time())  # already on a break: a new one from now
            return
        # The change comes back through _observe (at once, or after the call).
        self.offers.apply(distributor.set_state(advisor, AdvisorState.AWAY, time.time(),
                                                reason=REASON))

    def resume(self, advisor: str, since: float) -> None:
        """After a restart: an advisor restored on a break gets what is left of it
        (the default length; the one granted is not stored)."""
        seconds = self.ctx.settings.wrap_up.recovery_break_s
        self._breaks[advisor] = _Break(seconds, None, None, "restored")
        self._begin(advisor, since)

    def _observe(self, change: AdvisorChanged) -> None:
        b = self._breaks.get(change.advisor)
        if b is None:
            return
        if change.state is AdvisorState.AWAY and change.reason == REASON:
            if b.until is None:
                self._begin(change.advisor, change.at or time.time())
        elif change.state not in (AdvisorState.RESERVED, AdvisorState.ON_CALL,
                                  AdvisorState.WRAP_UP):
            self._finish(change.advisor, "ended_early" if b.until else "cancelled")

    def _begin(self, advisor: str, since: float) -> None:
        b = self._breaks[advisor]
        b.until = since + b.seconds
        if b.timer is not None:
            b.timer.cancel()
        b.timer = asyncio.get_running_loop().call_later(
            max(0.0, b.until - time.time()), self._over, advisor)
        self.ctx.publish_id("agent.recovery", b.call_id, {
            "state": "started", "until": round(b.until, 3), "why": b.why, "by": b.by},
            advisor=advisor)

    def _over(self, advisor: str) -> None:
        b = self._breaks.get(advisor)
        if b is None:
            return
        b.timer = None
        self._finish(advisor, "over")
        if self.on_break(advisor):
            self.offers.apply(self.ctx.distributor.set_state(
                advisor, AdvisorState.AVAILABLE, time.time()))

    def _finish(self, advisor: str, how: str) -> None:
        b = self._breaks.pop(advisor, None)
        if b is None:
            return
        if b.timer is not None:
            b.timer.cancel()
        self.ctx.publish_id("agent.recovery", b.call_id, {
            "state": how, "until": round(b.until or time.time(), 3), "why": b.why,
            "by": b.by}, advisor=advisor)

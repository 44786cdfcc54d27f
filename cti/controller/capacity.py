"""Room on the media workers, and the edge's rotation of workers for new callers.

A media worker holds 4 calls (2 customers with their advisors). Consults need
extra legs; the edge counts callers, not legs (up to 2 per worker, its dispatcher's
maxload), so a worker whose legs a consult (or a call back) takes leaves the edge's
rotation until it has room for every caller the edge may still send it, each with an
advisor. Room for one caller is not enough: the edge would send two, and the second
one's advisor could not be dialled (PJ_ETOOMANY; found by scripts/soak.py).
Capacity for customers is never reserved for consults that may not happen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from cti.controller.context import FlowContext

log = logging.getLogger("cti.flow")

#: Calls one media worker holds (PJSUA_MAX_CALLS of the pjsua2 wheel).
CALLS_PER_WORKER = 4

#: Callers the edge sends one worker at most (its dispatcher's maxload).
CALLERS_PER_WORKER = CALLS_PER_WORKER // 2

#: Take a worker out of (False) or back into (True) the edge's rotation.
EdgeRotation = Callable[[str, bool], None]


class WorkerRooms:
    def __init__(self, ctx: FlowContext) -> None:
        self.ctx = ctx
        #: Set by the gateway (through CallFlow.edge_rotation).
        self.edge_rotation: EdgeRotation | None = None
        self.out_of_rotation: set[str] = set()

    def free_calls(self, worker: str) -> int:
        """Calls the worker can still take: each waiting customer keeps one for its advisor."""
        used = 0
        for call in self.ctx.calls.all():
            for leg in call.legs:
                if leg.worker == worker and leg.state != "disconnected":
                    used += 1
            if call.worker == worker and call.advisor_leg is None and \
                    call.state in ("incoming", "ivr", "queued", "offered"):
                used += 1
        return CALLS_PER_WORKER - used

    def fits_the_edge(self, worker: str) -> bool:
        """Room for each caller the edge may still send the worker, with an advisor."""
        callers = sum(1 for call in self.ctx.calls.all()
                      if call.kind == "inbound" and call.worker == worker
                      and call.customer.state != "disconnected")
        return self.free_calls(worker) >= 2 * max(0, CALLERS_PER_WORKER - callers)

    def guard_room(self, worker: str) -> None:
        """A worker a consult filled up leaves the rotation (see the module doc)."""
        if not self.fits_the_edge(worker) and worker not in self.out_of_rotation:
            self.out_of_rotation.add(worker)
            log.info("worker out of rotation for a consult worker=%s", worker)
            if self.edge_rotation is not None:
                self.edge_rotation(worker, False)

    def recheck_rotation(self) -> None:
        """After legs ended: workers with room again go back into the edge's rotation."""
        for worker in list(self.out_of_rotation):
            link = self.ctx.pool.get(worker)
            if self.fits_the_edge(worker) and link is not None and link.up:
                self.out_of_rotation.discard(worker)
                log.info("worker back in rotation worker=%s", worker)
                if self.edge_rotation is not None:
                    self.edge_rotation(worker, True)

    def consult_worker(self, preferred: str) -> str | None:
        """A worker with room for a consult's two legs, ``preferred`` first; None if none."""
        pool = self.ctx.pool
        for worker in [preferred] + [w for w in list(pool.links) if w != preferred]:
            link = pool.get(worker)
            if link is not None and link.up and self.free_calls(worker) >= 2:
                return worker
        return None

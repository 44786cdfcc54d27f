"""The edge's view of the media workers: one dispatcher set per worker, in order.

Route PICK_WORKER (kamailio.cfg.tmpl) tries the sets 1, 2, … in turn with call-load
dispatching (algorithm 10, maxload = the worker's slots), so the first worker with
a free slot takes the call: a worker's slots fill before the next worker wakes.
A busy worker costs about the same whether it holds one call or two (issue 15:
the cost is per busy worker), so filling beats spreading. A worker that is
inactive (its OPTIONS probe failed) or disabled is skipped by the dispatcher.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_DUID_RE = re.compile(r"^[A-Za-z0-9._-]+$")
_HOST_RE = re.compile(r"^[A-Za-z0-9.:-]+$")

FIRST_WORKER_SET = 1  # worker i (0-based, in the order given) is set FIRST_WORKER_SET + i
MIN_PROBE_INTERVAL_S = 5
PROBES_PER_SECOND = 20  # OPTIONS the edge sends at most, on average, to a large pool


@dataclass(frozen=True)
class WorkerTarget:
    """One media worker as the dispatcher sees it."""

    duid: str
    host: str
    port: int
    maxload: int = 2

    @property
    def uri(self) -> str:
        return f"sip:{self.host}:{self.port}"


def probe_interval(workers: int) -> int:
    """Seconds between OPTIONS probes of each worker: 5 s, longer for large pools
    (at most PROBES_PER_SECOND a second in all: 500 workers are probed every 25 s).
    A dead worker is still skipped at once: a hotline branch that times out marks it
    inactive (route HOTLINE_FAILOVER), and probing brings it back."""
    return max(MIN_PROBE_INTERVAL_S, math.ceil(workers / PROBES_PER_SECOND))


def dispatcher_list_text(workers: list[WorkerTarget]) -> str:
    """Dispatcher list file: `setid uri flags priority attrs`, one worker a line,
    each in its own set (the fill order is the order given)."""
    seen: set[str] = set()
    lines = ["# rendered by cti.edge.dispatch: setid uri flags priority attrs"]
    for i, w in enumerate(workers):
        if not _DUID_RE.fullmatch(w.duid) or w.duid in seen:
            raise ValueError(f"invalid or duplicate worker duid {w.duid!r}")
        if not _HOST_RE.fullmatch(w.host) or not 0 < w.port < 65536 or w.maxload < 1:
            raise ValueError(f"invalid worker {w!r}")
        seen.add(w.duid)
        lines.append(f"{FIRST_WORKER_SET + i} {w.uri} 0 0 duid={w.duid};maxload={w.maxload}")
    return "\n".join(lines) + "\n"


def worker_sets(workers: list[WorkerTarget]) -> int:
    """The last worker set (route PICK_WORKER loops up to it); 0: no workers."""
    return FIRST_WORKER_SET + len(workers) - 1 if workers else 0


def max_while_loops(workers: list[WorkerTarget]) -> int:
    """Kamailio stops a while loop after max_while_loops rounds (default 100):
    PICK_WORKER needs one round per worker."""
    return max(100, len(workers) + 10)

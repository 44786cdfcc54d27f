"""Refuse new calls early when the machine is overloaded (issue 15).

Past the machine's capacity nothing fails at once: every connected caller's
audio, every advisor's ring and every INVITE's answer gets later together
(measured at 60 calls/s on 2 cores: INVITE → 200 OK p99 3.5 s, callers
retransmitting). So the controller samples the machine's CPU and its own event
loop once a second; after ``overload.over_s`` seconds above a limit it raises a
flag in the edge (an htable item with a short expiry, refreshed every second,
so a dead controller cannot leave the edge refusing), and the edge answers new
hotline INVITEs ``503 Lines busy`` with ``Retry-After`` before a worker is
chosen. Calls already in are untouched. The flag drops after ``clear_s`` seconds
below every limit minus a margin (hysteresis: no flapping at the edge of it).

``OverloadState`` is the pure decision (tested without a machine); ``CpuMeter``
reads /proc/stat; ``OverloadGuard`` runs them and talks to the edge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cti.config_overload import OverloadSettings

log = logging.getLogger("cti.overload")

SAMPLE_INTERVAL_S = 1.0


@dataclass(frozen=True)
class Sample:
    cpu_percent: float  # the machine's CPU busy over the last interval, all cores
    loop_lag_ms: float  # how late the controller's event loop last woke


class OverloadState:
    """Whether to refuse new calls, from one sample a second (hysteresis)."""

    def __init__(self, settings: OverloadSettings) -> None:
        self.settings = settings
        self.shedding = False
        self.reason = ""
        self._over = 0  # samples in a row above a limit (while taking calls)
        self._calm = 0  # samples in a row below every limit minus the margin (shedding)

    def _over_reason(self, s: Sample) -> str:
        o = self.settings
        if o.cpu_percent and s.cpu_percent >= o.cpu_percent:
            return f"machine CPU {s.cpu_percent:.0f} % (limit {o.cpu_percent:.0f} %)"
        if o.loop_lag_ms and s.loop_lag_ms >= o.loop_lag_ms:
            return (f"controller event loop {s.loop_lag_ms:.0f} ms late "
                    f"(limit {o.loop_lag_ms:.0f} ms)")
        return ""

    def _calm_now(self, s: Sample) -> bool:
        o = self.settings
        keep = 1 - o.clear_margin_percent / 100
        cpu_ok = not o.cpu_percent or s.cpu_percent < o.cpu_percent - o.clear_margin_percent
        lag_ok = not o.loop_lag_ms or s.loop_lag_ms < o.loop_lag_ms * keep
        return cpu_ok and lag_ok

    def observe(self, s: Sample) -> bool | None:
        """Take one sample: True when refusing starts, False when it stops, else None."""
        reason = self._over_reason(s)
        if not self.shedding:
            self._over = self._over + 1 if reason else 0
            if self._over >= self.settings.over_s:
                self.shedding, self.reason, self._calm = True, reason, 0
                return True
            return None
        if reason:
            self.reason = reason
        self._calm = self._calm + 1 if self._calm_now(s) else 0
        if self._calm >= self.settings.clear_s:
            self.shedding, self.reason, self._over = False, "", 0
            return False
        return None


class CpuMeter:
    """The machine's CPU busy since the last call, in % of all cores (/proc/stat)."""

    def __init__(self, stat: Path = Path("/proc/stat")) -> None:
        self.stat = stat
        self._last: tuple[int, int] | None = None

    def __call__(self) -> float:
        fields = [int(v) for v in self.stat.read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        total = sum(fields[:8])  # user … steal; guest is inside user already
        last, self._last = self._last, (total, idle)
        if last is None or total <= last[0]:
            return 0.0
        return 100.0 * (1 - (idle - last[1]) / (total - last[0]))


# The edge's side: set (or refresh) the flag, drop it, read how many it refused.
SetFlag = Callable[[bool | None], Awaitable[int | None]]  # None: only read the count


class OverloadGuard:
    def __init__(self, settings: OverloadSettings, set_flag: SetFlag,
                 loop_lag_ms: Callable[[], float], cpu: Callable[[], float] | None = None,
                 interval_s: float = SAMPLE_INTERVAL_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.state = OverloadState(settings)
        self._set_flag = set_flag
        self._lag = loop_lag_ms
        self.cpu = cpu or CpuMeter()  # public: a test injects its reading
        self.interval_s = interval_s
        self._clock = clock
        self.since: float | None = None
        self.episodes = 0
        self.last = Sample(0.0, 0.0)
        self.refused = 0  # hotline calls the edge refused for overload, every edge run
        self._edge_count = 0  # the current edge's own count (it restarts from 0)
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        o = self.state.settings
        return bool(o.cpu_percent or o.loop_lag_ms or o.max_new_calls_per_second)

    def start(self) -> None:
        if self.enabled and self._task is None:
            self.cpu()  # the first reading is the baseline
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.tick()
            except Exception:  # one bad sample must not end the guard
                log.exception("overload sample failed")

    async def tick(self) -> None:
        self.last = Sample(self.cpu(), self._lag())
        change = self.state.observe(self.last)
        if change is True:
            self.since, self.episodes = self._clock(), self.episodes + 1
            log.warning("overloaded: %s; new hotline calls get 503 Lines busy until it "
                        "eases", self.state.reason)
        elif change is False:
            log.warning("overload over after %.0f s: %d hotline calls refused; taking "
                        "calls again", self._clock() - (self.since or self._clock()),
                        self.refused)
            self.since = None
        # Refreshed every second while shedding (the flag expires on its own);
        # the count read every second (the call-rate cap refuses without it).
        flag = self.state.shedding if self.state.shedding or change is False else None
        self._count(await self._set_flag(flag))

    def _count(self, edge_count: int | None) -> None:
        if edge_count is None:  # the edge did not answer: it shows in /health
            return
        if edge_count < self._edge_count:  # a new edge counts from 0
            self._edge_count = 0
        self.refused += edge_count - self._edge_count
        self._edge_count = edge_count

    def status(self) -> dict[str, Any]:
        o = self.state.settings
        return {"shedding": self.state.shedding, "reason": self.state.reason or None,
                "since": self.since, "episodes": self.episodes,
                "calls_refused": self.refused,
                "cpu_percent": round(self.last.cpu_percent, 1),
                "limits": {"cpu_percent": o.cpu_percent, "loop_lag_ms": o.loop_lag_ms}}

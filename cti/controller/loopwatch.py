"""How late the event loop runs: a task that sleeps ``interval_s`` and measures by
how much it wakes up late. A loop stalled by a blocking call (a slow fsync, a
plugin that blocks) shows here, in ``/health`` and ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib
import time

#: Lag above this makes /health "degraded".
DEGRADED_LAG_MS = 1000.0


class LoopWatch:
    def __init__(self, interval_s: float = 0.25) -> None:
        self.interval_s = interval_s
        self.lag_ms = 0.0  # the last measure
        self.max_lag_ms = 0.0  # the worst since start
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.interval_s)
            lag = max(0.0, (time.monotonic() - before - self.interval_s) * 1000)
            self.lag_ms = lag
            self.max_lag_ms = max(self.max_lag_ms, lag)

    def status(self) -> dict[str, float]:
        return {"lag_ms": round(self.lag_ms, 1), "max_lag_ms": round(self.max_lag_ms, 1)}

"""The event loop's lag: a loop held by a blocking call shows it."""

from __future__ import annotations

import asyncio
import time

from cti.controller.loopwatch import LoopWatch


async def test_a_blocked_loop_shows_its_lag() -> None:
    watch = LoopWatch(interval_s=0.05)
    watch.start()
    try:
        await asyncio.sleep(0.12)  # a few quiet rounds
        time.sleep(0.5)  # the loop is held (as by a blocking fsync)

        async def late() -> None:  # the next wake-up is at least 0.45 s late
            while watch.max_lag_ms < 300:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(late(), 10)
        assert watch.status()["max_lag_ms"] >= 300
    finally:
        await watch.stop()

"""Keep a child of `cti serve` running: when it exits (killed, crashed), say so and
start it again, with growing waits while it keeps failing (Kamailio, rtpengine)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

log = logging.getLogger("cti.gateway")

# Waits between attempts to start a dead child again: the first at once (a killed
# process leaves nothing behind to wait for), then longer while it keeps failing.
RESTART_BACKOFF_S = (0.0, 0.5, 1.0, 2.0, 5.0)
# A child that ran this long before it died starts over at the shortest wait.
STABLE_S = 30.0


class Supervised(Protocol):
    restarts: int

    @property
    def pid(self) -> int | None: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def wait(self) -> int: ...


async def supervise(child: Supervised, what: str, stopping: Callable[[], bool],
                    restored: Callable[[], Awaitable[None]], consequence: str = "") -> None:
    """Run until `stopping()`; after each restart `restored()` gives it our state again.
    `what` names it in the log ("SIP edge (kamailio)"), `consequence` says what is lost
    while it is down."""
    attempt = 0
    while not stopping():
        started = time.monotonic()
        code = await child.wait()
        if stopping():
            return
        log.error("%s exited pid=%s code=%s%s; restarting it", what, child.pid, code,
                  f": {consequence}" if consequence else "")
        if time.monotonic() - started > STABLE_S:
            attempt = 0
        while not stopping():
            delay = RESTART_BACKOFF_S[min(attempt, len(RESTART_BACKOFF_S) - 1)]
            attempt += 1
            await asyncio.sleep(delay)
            try:
                await child.stop()  # children that outlived the main process
                await child.start()
            except Exception as e:
                log.error("%s restart %d failed: %s", what, attempt, e)
                continue
            break
        child.restarts += 1
        await restored()
        log.warning("%s restarted pid=%s restarts=%d", what, child.pid, child.restarts)

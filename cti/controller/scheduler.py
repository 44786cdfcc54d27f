"""Durable timers of one plugin (its :class:`cti.plugins.api.TimersService`).

A timer is stored (cti/store/timers.py) before ``schedule`` returns and armed with
``loop.call_later``; the delay comes from an injectable clock (unix seconds), so
tests can move time. ``start()`` re-arms the stored timers after a restart (late
ones fire at once). A fired timer is deleted after its handler ran, also when the
handler raised (logged with the plugin's name): a timer fires at most once per
run, never in a loop. Only a crash between the handler and the delete fires it
again at the next start: handlers should be idempotent.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cti.plugins.api import TimerHandler
from cti.store.timers import StoredTimer

if TYPE_CHECKING:
    from cti.store.db import Store

log = logging.getLogger("cti.plugins")


class Scheduler:
    def __init__(self, store: Store, plugin: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.plugin = plugin
        self.clock = clock
        self._handlers: dict[str, TimerHandler] = {}
        self._armed: dict[str, asyncio.TimerHandle] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._started = False

    # ------------------------------------------------------------ TimersService
    def on(self, kind: str, handler: TimerHandler) -> None:
        """The handler of a kind of timer: ``handler(timer_id, payload)``, sync or async."""
        self._handlers[kind] = handler

    async def schedule(self, kind: str, at: float, payload: dict[str, Any],
                       key: str | None = None) -> str:
        timer, replaced = await self.store.timers.put(self.plugin, kind, at, payload, key)
        if replaced is not None:
            self._disarm(replaced)
        if self._started:
            self._arm(timer)
        return timer.id

    async def cancel(self, timer_id_or_key: str) -> bool:
        gone = await self.store.timers.delete(self.plugin, timer_id_or_key)
        if gone is not None:
            self._disarm(gone)
        return gone is not None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> int:
        """Arm every stored timer of the plugin (after its handlers are registered);
        returns how many."""
        self._started = True
        timers = self.store.timers.of(self.plugin)
        for timer in timers:
            self._arm(timer)
        return len(timers)

    async def stop(self) -> None:
        """Disarm (timers stay stored) and wait for handlers that are running."""
        self._started = False
        for handle in self._armed.values():
            handle.cancel()
        self._armed.clear()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    def armed(self) -> list[str]:
        return list(self._armed)

    # ------------------------------------------------------------ firing
    def _arm(self, timer: StoredTimer) -> None:
        self._disarm(timer.id)
        loop = asyncio.get_running_loop()
        delay = max(0.0, timer.at - self.clock())
        self._armed[timer.id] = loop.call_later(delay, self._due, timer)

    def _disarm(self, timer_id: str) -> None:
        handle = self._armed.pop(timer_id, None)
        if handle is not None:
            handle.cancel()

    def _due(self, timer: StoredTimer) -> None:
        self._armed.pop(timer.id, None)
        task = asyncio.get_running_loop().create_task(self._fire(timer))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _fire(self, timer: StoredTimer) -> None:
        handler = self._handlers.get(timer.kind)
        if handler is None:
            log.error("timer without a handler plugin=%s kind=%s id=%s: kept for the next "
                      "start", self.plugin, timer.kind, timer.id)
            return
        try:
            result = handler(timer.id, dict(timer.payload))
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("timer handler failed plugin=%s kind=%s id=%s (not retried)",
                          self.plugin, timer.kind, timer.id)
        try:
            await self.store.timers.delete(self.plugin, timer.id)
        except Exception:
            log.exception("could not delete fired timer plugin=%s id=%s", self.plugin,
                          timer.id)

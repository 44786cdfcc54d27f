"""Durable timers of plugins: stored, armed on an injectable clock, fired once,
re-armed by a new scheduler on the same store (a restart)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from cti.controller.scheduler import Scheduler
from cti.store.db import Store


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def until(cond: Any, timeout: float = 2.0) -> None:
    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = Store(tmp_path / "s.db")
    yield s
    s.close()


async def test_a_timer_fires_at_its_time_and_is_deleted(store: Store) -> None:
    clock = Clock()
    sched = Scheduler(store, "crisis_line", clock)
    fired: list[tuple[str, dict[str, Any]]] = []
    sched.on("remind", lambda tid, payload: fired.append((tid, payload)))
    sched.start()
    tid = await sched.schedule("remind", clock.now + 0.05, {"call": "c1"})
    assert [t.id for t in store.timers.of("crisis_line")] == [tid]  # stored on return
    await asyncio.sleep(0.01)
    assert fired == []
    await until(lambda: fired)
    assert fired == [(tid, {"call": "c1"})]
    await until(lambda: not store.timers.of("crisis_line"))
    assert sched.armed() == []
    await sched.stop()


async def test_late_timers_fire_at_once_and_async_handlers_are_awaited(store: Store) -> None:
    clock = Clock()
    sched = Scheduler(store, "p", clock)
    done = asyncio.Event()

    async def handler(tid: str, payload: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        done.set()

    sched.on("k", handler)
    sched.start()
    await sched.schedule("k", clock.now - 3600, {})
    await asyncio.wait_for(done.wait(), 1)
    await sched.stop()


async def test_key_replaces_and_cancel_by_id_or_key(store: Store) -> None:
    clock = Clock()
    sched = Scheduler(store, "p", clock)
    fired: list[dict[str, Any]] = []
    sched.on("k", lambda tid, payload: fired.append(payload))
    sched.start()
    first = await sched.schedule("k", clock.now + 0.05, {"n": 1}, key="call-1")
    second = await sched.schedule("k", clock.now + 0.05, {"n": 2}, key="call-1")
    assert first != second and [t.id for t in store.timers.of("p")] == [second]
    other = await sched.schedule("k", clock.now + 0.05, {"n": 3})
    gone = await sched.schedule("k", clock.now + 0.05, {"n": 4}, key="x")
    assert await sched.cancel(other) is True
    assert await sched.cancel("x") is True and await sched.cancel(gone) is False
    assert await sched.cancel("nothing") is False
    await until(lambda: fired)
    await asyncio.sleep(0.1)
    assert fired == [{"n": 2}]
    # Another plugin's timers are its own: same key, no clash, not cancellable here.
    theirs = Scheduler(store, "q", clock)
    await theirs.schedule("k", clock.now + 60, {}, key="call-1")
    assert await sched.cancel("call-1") is False
    assert len(store.timers.of("q")) == 1
    await sched.stop()


async def test_a_failing_handler_is_logged_and_not_retried(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    sched = Scheduler(store, "crisis_line", clock)
    calls = 0

    def boom(tid: str, payload: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    sched.on("k", boom)
    sched.start()
    with caplog.at_level(logging.ERROR, logger="cti.plugins"):
        await sched.schedule("k", clock.now, {})
        await until(lambda: not store.timers.of("crisis_line"))
    assert calls == 1
    assert any("plugin=crisis_line" in r.getMessage() and r.exc_info for r in caplog.records)
    await sched.stop()


async def test_after_a_restart_the_stored_timer_fires(tmp_path: Path) -> None:
    clock = Clock()
    store = Store(tmp_path / "s.db")
    before = Scheduler(store, "p", clock)
    before.start()
    tid = await before.schedule("k", clock.now + 30, {"why": "callback"})
    await before.stop()  # the gateway stops; the timer stays stored
    store.close()

    store = Store(tmp_path / "s.db")
    after = Scheduler(store, "p", clock)
    fired: list[str] = []
    after.on("k", lambda t, payload: fired.append(t))
    clock.now += 10
    assert after.start() == 1 and after.armed() == [tid]  # 20 s to go: not yet
    await asyncio.sleep(0.05)
    assert fired == []
    await after.stop()
    clock.now += 60  # later: now it is late, it fires at once
    after.start()
    await until(lambda: fired == [tid])
    await until(lambda: not store.timers.of("p"))
    await after.stop()
    store.close()


async def test_a_kind_without_handler_is_kept(store: Store) -> None:
    clock = Clock()
    sched = Scheduler(store, "p", clock)
    sched.start()
    await sched.schedule("unknown", clock.now, {})
    await asyncio.sleep(0.05)
    assert len(store.timers.of("p")) == 1
    await sched.stop()

"""The crisis line's logic without SIP: a fake services handle over a real SQLite
table, the demo config's settings, calls as views."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cti.config import load_settings
from cti.core.views import CallView, QueueView
from cti.plugins.api import ActionError
from plugins.crisis_line.schemas import CrisisLineSettings, CrisisStart
from plugins.crisis_line.services import ANNOUNCE, FLAG, OPTION, CrisisLine
from plugins.crisis_line.storage import MIGRATIONS

REPO = Path(__file__).resolve().parents[3]
HOTLINE = "+31247247247"


class FakeStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.prefix = "p_crisis_line_"
        self._db = db
        db.row_factory = sqlite3.Row

    def migrate(self) -> None:
        for m in MIGRATIONS:
            self._db.execute(m.sql.format(prefix=self.prefix))

    async def write(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = self._db.execute(sql, params)
        return int(cur.lastrowid or cur.rowcount)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self._db.execute(sql, params)]


class FakeCalls:
    def __init__(self) -> None:
        self.calls: dict[str, CallView] = {}
        self.actions: list[tuple[Any, ...]] = []
        self.played: list[tuple[str, list[str]]] = []

    def get(self, call_id: str) -> CallView | None:
        return self.calls.get(call_id)

    def set_flag(self, call_id: str, name: str, value: Any) -> None:
        self.actions.append(("flag", call_id, name, value))

    def play(self, call_id: str, prompts: Sequence[str]) -> None:
        self.played.append((call_id, list(prompts)))

    def transfer(self, call_id: str, target: str, *, fallback: str = "queue_head",
                 by: str = "plugin") -> None:
        self.actions.append(("transfer", call_id, target, fallback))


class FakeTimers:
    def __init__(self) -> None:
        self.scheduled: dict[str, tuple[float, dict[str, Any]]] = {}
        self.handlers: dict[str, Any] = {}

    def on(self, kind: str, handler: Any) -> None:
        self.handlers[kind] = handler

    async def schedule(self, kind: str, at: float, payload: dict[str, Any],
                       key: str | None = None) -> str:
        self.scheduled[key or kind] = (at, payload)
        return key or kind

    async def cancel(self, key: str) -> bool:
        return self.scheduled.pop(key, None) is not None


class Recorder:
    def __init__(self) -> None:
        self.items: list[tuple[Any, ...]] = []
        self.spoken: set[str] = set()

    async def record(self, action: str, by: str | None, details: dict[str, Any]) -> None:
        self.items.append((action, by, details))

    async def speak(self, key: str, texts: dict[str, str]) -> None:
        self.items.append(("speak", key, dict(texts)))
        self.spoken.add(key)

    def has(self, language: str, key: str) -> bool:
        return key in self.spoken

    def publish(self, type_: str, data: dict[str, Any], **kw: Any) -> int:
        self.items.append((type_, data, kw))
        return len(self.items)


def view(call_id: str, *, flags: dict[str, Any] | None = None, state: str = "queued",
         dialled: str = HOTLINE, queued_at: float = 1000.0) -> CallView:
    return CallView(
        call_id=call_id, kind="inbound", state=state, caller_number="+34911234567",
        caller_country="ES", caller_timezone=None, dialled=dialled, language="en", topic="emergency",
        priority=0, trainings=frozenset(), reserve=frozenset(), flags=flags or {},
        ivr_path=(), advisor=None, worker="w1", held=False, started_at=990.0,
        queued_at=queued_at, answered_at=None, ended_at=None, end_reason=None)


@pytest.fixture
def services(tmp_path: Path) -> SimpleNamespace:
    gw = load_settings(REPO / "config" / "cti.yaml")
    store = FakeStore(sqlite3.connect(str(tmp_path / "db.sqlite3")))
    store.migrate()
    rec = Recorder()
    calls = FakeCalls()
    waiting: list[CallView] = []
    advisors = SimpleNamespace(with_training=lambda t: ["dalia"] if t == "crisis" else [])
    return SimpleNamespace(
        settings=CrisisLineSettings(reserve=["michel"], overflow_waiting=2), gateway=gw,
        store=store, calls=calls, timers=FakeTimers(), audit=rec, prompts=rec, events=rec,
        advisors=advisors, queues=SimpleNamespace(waiting=lambda: QueueView(tuple(waiting))),
        waiting=waiting, rec=rec, log=logging.getLogger("test.crisis"),
        now=lambda: 1000.0, spawn=spawn, metrics=SimpleNamespace(inc=lambda *a, **k: None))


def spawn(coro: Any) -> None:
    asyncio.get_running_loop().create_task(coro)


async def started(services: SimpleNamespace, **kw: Any) -> CrisisLine:
    line = CrisisLine(services)
    await line.resume()
    await line.start(CrisisStart(name="floods-si", **kw), "nadia")
    return line


async def test_start_speaks_prompts_audits_and_announces(services: SimpleNamespace) -> None:
    line = await started(services)
    kinds = [i[0] for i in services.rec.items]
    assert kinds == ["speak", "speak", "crisis.start", "crisis.started"]
    spoken = {i[1]: i[2] for i in services.rec.items if i[0] == "speak"}
    assert "floods-si" in spoken[ANNOUNCE]["en"] and "press 5" in spoken[OPTION]["en"]
    assert line.current is not None and line.current.started_by == "nadia"


async def test_a_second_crisis_is_refused_and_bad_values_are_named(
        services: SimpleNamespace) -> None:
    line = await started(services)
    with pytest.raises(ActionError, match="is in force"):
        await line.start(CrisisStart(name="other"), "nadia")
    await line.end("nadia")
    with pytest.raises(ActionError, match="'nobody' is not a directory entry"):
        await line.start(CrisisStart(name="x", team="nobody"), "nadia")
    with pytest.raises(ActionError, match=r"'\+3100' is not one of the hotlines"):
        await line.start(CrisisStart(name="x", numbers=["+3100"]), "nadia")
    with pytest.raises(ActionError, match="'ghost' is not an advisor"):
        await line.start(CrisisStart(name="x", reserve=["ghost"]), "nadia")


async def test_callers_get_the_announcement_and_the_option_while_it_lasts(
        services: SimpleNamespace) -> None:
    line = CrisisLine(services)
    await line.resume()
    assert line.ivr_extension(view("c1")) is None
    await line.start(CrisisStart(name="floods-si"), "nadia")
    ext = line.ivr_extension(view("c1"))
    assert ext is not None and ext.intro == (ANNOUNCE,)
    (option,) = ext.options
    assert (option.menu, option.digit, option.topic, option.priority) == (
        "topic", "5", "emergency", 50)
    assert option.flags == {FLAG: "floods-si"}
    await line.end("nadia")
    assert line.ivr_extension(view("c2")) is None


async def test_a_crisis_call_needs_the_training_and_may_go_to_the_reserve_pool(
        services: SimpleNamespace) -> None:
    line = await started(services, reserve_training="crisis")
    assert line.routing(view("normal")) is None
    req = line.routing(view("c1", flags={FLAG: "floods-si"}))
    assert req is not None
    assert req.priority == 50 and req.trainings == {"crisis"}
    assert req.reserve == {"michel", "dalia"}


async def test_a_dedicated_number_marks_its_callers(services: SimpleNamespace) -> None:
    await started(services, dedicated_number="+31247247248")
    line = CrisisLine(services)
    await line.resume()  # a restart: the crisis is in force again
    line.incoming(view("c1", dialled="+31247247248", state="incoming"))
    line.incoming(view("c2", state="incoming"))
    assert services.calls.actions == [("flag", "c1", FLAG, "floods-si")]


async def test_overflow_after_the_wait_and_beyond_the_count(services: SimpleNamespace) -> None:
    line = await started(services)
    flagged = {FLAG: "floods-si"}
    first = view("c1", flags=flagged)
    services.waiting.append(first)
    line.queued(first)
    await asyncio.sleep(0)
    at, payload = services.timers.scheduled["c1"]
    assert at == 1000.0 + 60 and payload == {"call_id": "c1"}
    # The timer fires while the caller still waits: to the team, back at the head if
    # the team does not answer.
    services.calls.calls["c1"] = first
    await services.timers.handlers["overflow"]("t1", payload)
    assert services.calls.actions == [("transfer", "c1", "crisis_team", "queue_head")]
    assert services.calls.played == [("c1", ["crisis_line.overflow"])]
    # Beyond overflow_waiting (2) crisis callers waiting, the newest overflows at once.
    for cid in ("c2", "c3"):
        services.waiting.append(view(cid, flags=flagged))
        services.calls.calls[cid] = services.waiting[-1]
        line.queued(services.waiting[-1])
    assert services.calls.actions[-1] == ("transfer", "c3", "crisis_team", "queue_head")
    assert line.current is not None and line.current.overflowed == 2
    # A call answered before the timer is not transferred.
    services.calls.calls["c2"] = replace(services.waiting[1], state="connected")
    await services.timers.handlers["overflow"]("t2", {"call_id": "c2"})
    assert len(services.calls.actions) == 2


async def test_the_crisis_survives_a_restart_with_its_counts(services: SimpleNamespace) -> None:
    line = await started(services)
    line.connected(replace(view("c1", flags={FLAG: "floods-si"}), advisor="dalia"))
    await asyncio.sleep(0.01)
    services.rec.spoken.clear()  # the prompt cache was cleared meanwhile
    again = CrisisLine(services)
    await again.resume()
    assert services.rec.spoken == {ANNOUNCE, OPTION}
    assert again.current is not None and again.current.name == "floods-si"
    assert again.current.answered == 1
    ended = await again.end("nadia")
    assert ended.ended_by == "nadia"
    third = CrisisLine(services)
    await third.resume()
    assert third.current is None


@pytest.mark.parametrize(("change", "message"), [
    ({"team": "crisis_tem"}, r"plugins\.crisis_line\.team: 'crisis_tem' is not a directory key"),
    ({"topic": "floods"}, r"plugins\.crisis_line\.topic: 'floods' is not an IVR topic"),
    ({"reserve": ["ghost"]}, r"plugins\.crisis_line\.reserve: 'ghost' is not an advisor"),
    ({"digit": "9"}, r"plugins\.crisis_line\.digit: '9' is already a topic"),
    ({"announcement": {"fr": "x"}}, r"plugins\.crisis_line\.announcement: 'fr' is not an IVR"),
])
def test_settings_that_do_not_fit_the_config_are_named(change: dict[str, Any],
                                                       message: str) -> None:
    from cti.config import ConfigError
    from cti.plugins import PluginHost

    gw = load_settings(REPO / "config" / "cti.yaml")
    with pytest.raises(ConfigError, match=message):
        PluginHost().load({"crisis_line": change}, "cti.yaml", gateway=gw)
    PluginHost().load({"crisis_line": {}}, "cti.yaml", gateway=gw)  # the defaults fit

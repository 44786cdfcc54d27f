"""The callbacks plugin's logic without SIP: a fake services handle over a real
SQLite table, the demo config, calls as views, a clock the test moves."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import pytest

from cti.config import load_settings
from cti.core.views import CallView
from cti.plugins.api import ActionError
from plugins.callbacks.dialogue import DONE, OFFER, WHEN
from plugins.callbacks.plugin import EVENTS
from plugins.callbacks.schemas import CallbacksSettings
from plugins.callbacks.services import DUE_T, HANGUP_REASON, HANGUP_T, INPUT_T, OFFER_T, Callbacks
from plugins.callbacks.storage import MIGRATIONS

REPO = Path(__file__).resolve().parents[3]
HOTLINE = "+31247247247"
MADRID = ZoneInfo("Europe/Madrid")
#: Wednesday 2 December 2026, 11:00 in Madrid: inside the calling window there.
NOON = datetime(2026, 12, 2, 11, 0, tzinfo=MADRID).timestamp()


class FakeStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.prefix = "p_callbacks_"
        self._db = db
        db.row_factory = sqlite3.Row
        self.log: list[str] = []

    def migrate(self) -> None:
        for m in MIGRATIONS:
            self._db.execute(m.sql.format(prefix=self.prefix))

    async def write(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = self._db.execute(sql, params)
        self.log.append(sql.split()[0])
        if sql.lstrip().startswith("INSERT"):
            return int(cur.lastrowid or 0)
        return int(cur.rowcount)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self._db.execute(sql, params)]


class FakeCalls:
    def __init__(self, journal: list[tuple[Any, ...]]) -> None:
        self.calls: dict[str, CallView] = {}
        self.journal = journal

    def get(self, call_id: str) -> CallView | None:
        return self.calls.get(call_id)

    def play(self, call_id: str, prompts: Sequence[str]) -> None:
        self.journal.append(("play", call_id, list(prompts)))

    def hangup(self, call_id: str, reason: str = "plugin_hangup") -> None:
        self.journal.append(("hangup", call_id, reason))
        self.calls.pop(call_id, None)


class FakeTimers:
    def __init__(self) -> None:
        self.scheduled: dict[str, tuple[str, float, dict[str, Any]]] = {}
        self.handlers: dict[str, Any] = {}

    def on(self, kind: str, handler: Any) -> None:
        self.handlers[kind] = handler

    async def schedule(self, kind: str, at: float, payload: dict[str, Any],
                       key: str | None = None) -> str:
        self.scheduled[key or kind] = (kind, at, payload)
        return key or kind

    async def cancel(self, key: str) -> bool:
        return self.scheduled.pop(key, None) is not None

    async def fire(self, key: str) -> None:
        kind, _, payload = self.scheduled.pop(key)
        await self.handlers[kind](key, payload)


class FakeTasks:
    def __init__(self, journal: list[tuple[Any, ...]]) -> None:
        self.queued: dict[str, dict[str, Any]] = {}
        self.taken: set[str] = set()  # an advisor has it (cannot be cancelled)
        self.made = 0
        self.journal = journal

    def callback(self, number: str, **kw: Any) -> str:
        self.made += 1
        call_id = f"cb{self.made}"
        self.queued[call_id] = {"number": number, **kw}
        self.journal.append(("callback", call_id, number))
        return call_id

    def cancel(self, call_id: str, by: str | None = None) -> bool:
        if call_id in self.taken or call_id not in self.queued:
            return False
        self.queued.pop(call_id)
        return True


class Recorder:
    def __init__(self, journal: list[tuple[Any, ...]]) -> None:
        self.journal = journal
        self.counts: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def publish(self, type_: str, data: dict[str, Any], **kw: Any) -> int:
        jsonschema.validate(data, EVENTS[type_])  # as the gateway would
        self.journal.append((type_, data))
        return len(self.journal)

    async def record(self, action: str, by: str | None, details: dict[str, Any]) -> None:
        self.journal.append(("audit", action, by))

    def inc(self, name: str, help_: str, amount: float = 1, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        self.counts[key] = self.counts.get(key, 0) + amount


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def view(call_id: str, *, number: str = "+34911234567", state: str = "queued",
         queued_at: float = NOON - 200, kind: Any = "inbound",
         **over: Any) -> CallView:
    v = CallView(
        call_id=call_id, kind=kind, state=state, caller_number=number,
        caller_country="ES", caller_timezone="Europe/Madrid", dialled=HOTLINE,
        language="es", topic="visa", priority=5, trainings=frozenset({"legal"}),
        reserve=frozenset(), flags={}, ivr_path=("hours:open", "lang:es", "topic:visa"),
        advisor=None, worker="w1", held=False, started_at=queued_at - 20,
        queued_at=queued_at, answered_at=None, ended_at=None, end_reason=None)
    return replace(v, **over) if over else v


def spawn(coro: Any) -> None:
    asyncio.get_running_loop().create_task(coro)


def make_services(tmp_path: Path, **settings: Any) -> SimpleNamespace:
    journal: list[tuple[Any, ...]] = []
    store = FakeStore(sqlite3.connect(str(tmp_path / "db.sqlite3"), isolation_level=None))
    if not store.query("SELECT name FROM sqlite_master WHERE name = 'p_callbacks_requests'"):
        store.migrate()
    rec = Recorder(journal)
    cfg = {"offer_after_s": 60, "retry_after_s": 300, "max_attempts": 2, **settings}
    return SimpleNamespace(
        settings=CallbacksSettings(**cfg), gateway=load_settings(REPO / "config" / "cti.yaml"),
        store=store, calls=FakeCalls(journal), timers=FakeTimers(), tasks=FakeTasks(journal),
        events=rec, audit=rec, metrics=rec, journal=journal, now=Clock(NOON),
        log=logging.getLogger("test.callbacks"), spawn=spawn)


@pytest.fixture
def services(tmp_path: Path) -> SimpleNamespace:
    return make_services(tmp_path)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def offered(s: SimpleNamespace, cb: Callbacks, call: CallView) -> None:
    s.calls.calls[call.call_id] = call
    cb.queued(call)
    await settle()
    kind, at, payload = s.timers.scheduled[f"offer:{call.call_id}"]
    assert (kind, at, payload) == (OFFER_T, (call.queued_at or 0) + 60,
                                   {"call_id": call.call_id})
    await s.timers.fire(f"offer:{call.call_id}")


async def press(s: SimpleNamespace, cb: Callbacks, call: CallView, keys: str) -> None:
    for key in keys:
        assert cb.digit(call, key) is True, key
        await settle()


def requests(s: SimpleNamespace) -> list[dict[str, Any]]:
    return s.store.query("SELECT * FROM p_callbacks_requests ORDER BY callback_id")


async def test_offer_confirm_asap_stored_before_done_then_hangup_and_queued(
        services: SimpleNamespace) -> None:
    s = services
    cb = Callbacks(s)
    call = view("c1")
    await offered(s, cb, call)
    assert s.journal[-1] == ("play", "c1", [OFFER])
    await press(s, cb, call, "11")  # yes, call me back; the number read back is right
    assert s.journal[-1] == ("play", "c1", [WHEN])
    assert s.timers.scheduled["input:c1"][0] == INPUT_T
    await press(s, cb, call, "1")  # as soon as possible
    kinds = [j[0] for j in s.journal]
    # Stored (and the event said so) before "we will call you back" is played.
    assert kinds.index("callback.requested") < kinds.index("callback") < len(kinds) - 1
    assert s.journal[-1] == ("play", "c1", [DONE])
    [row] = requests(s)
    assert (row["number"], row["status"], row["zone"], row["enqueued_at"]) == (
        "+34911234567", "queued", "Europe/Madrid", NOON - 200)
    assert row["due_at"] == NOON
    queued = s.tasks.queued["cb1"]
    assert queued == {
        "number": "+34911234567", "language": "es", "topic": "visa", "priority": 5,
        "trainings": frozenset({"legal"}), "reserve": frozenset(),
        "enqueued_at": NOON - 200, "flags": {"callback_id": row["callback_id"]},
        "origin_call_id": "c1", "ivr_path": ("hours:open", "lang:es", "topic:visa"),
        "dialled": HOTLINE, "greeting": ("callbacks.greeting",)}
    kind, at, _ = s.timers.scheduled["hangup:c1"]
    assert (kind, at) == (HANGUP_T, NOON + 4)
    await s.timers.fire("hangup:c1")
    assert s.journal[-1] == ("hangup", "c1", HANGUP_REASON)
    assert s.metrics.counts[("requests", (("when", "asap"),))] == 1


async def test_the_offer_only_to_callers_still_waiting_and_not_to_calls_back(
        services: SimpleNamespace) -> None:
    s = services
    cb = Callbacks(s)
    cb.queued(view("x", kind="callback"))
    await settle()
    assert not s.timers.scheduled
    call = view("c1")
    cb.queued(call)
    await settle()
    s.calls.calls["c1"] = replace(call, state="connected")
    await s.timers.fire("offer:c1")
    assert not [j for j in s.journal if j[0] == "play"]
    assert cb.digit(call, "1") is None  # no offer: the key is not the plugin's


async def test_offered_at_an_escalation_step_when_configured(tmp_path: Path) -> None:
    s = make_services(tmp_path, offer_on_escalation=True, repeat_offer_s=30)
    cb = Callbacks(s)
    call = view("c1")
    s.calls.calls["c1"] = call
    cb.escalated(call)
    await settle()
    assert s.journal == [("play", "c1", [OFFER])]
    assert s.timers.scheduled["offer:c1"][1] == NOON + 30  # and again every 30 s
    (tmp_path / "off").mkdir()
    off = make_services(tmp_path / "off")
    Callbacks(off).escalated(call)
    await settle()
    assert off.journal == []


async def test_another_number_keyed_in_and_a_later_slot(services: SimpleNamespace) -> None:
    s = services
    cb = Callbacks(s)
    call = view("c1")
    await offered(s, cb, call)
    await press(s, cb, call, "1612345678#")  # another (Spanish, national) number
    readback = s.journal[-1][2]
    assert readback[0] == "callbacks.number_is" and readback[-1] == "callbacks.confirm"
    await press(s, cb, call, "1")  # confirmed
    await press(s, cb, call, "21")  # later: in about an hour
    [row] = requests(s)
    assert (row["number"], row["status"]) == ("+34612345678", "scheduled")
    assert row["due_at"] == datetime(2026, 12, 2, 12, 0, tzinfo=MADRID).timestamp()
    kind, at, payload = s.timers.scheduled[f"due:{row['callback_id']}"]
    assert (kind, at) == (DUE_T, row["due_at"])
    assert not s.tasks.queued
    s.now.t = at
    await s.timers.fire(f"due:{row['callback_id']}")
    assert s.tasks.queued["cb1"]["enqueued_at"] == NOON - 200
    assert requests(s)[0]["status"] == "queued"


async def test_no_input_asks_again_then_gives_up_and_the_caller_keeps_waiting(
        services: SimpleNamespace) -> None:
    s = services
    cb = Callbacks(s)
    call = view("c1")
    await offered(s, cb, call)
    await press(s, cb, call, "1")
    for _ in range(2):
        await s.timers.fire("input:c1")
        await settle()
        assert s.journal[-1][2][0] == "callbacks.number_is"
    await s.timers.fire("input:c1")
    await settle()
    assert s.journal[-1] == ("play", "c1", ["callbacks.cancelled"])
    assert "c1" not in cb.dialogues and not requests(s)
    assert not [j for j in s.journal if j[0] == "hangup"]


async def test_an_invalid_key_is_said_so(services: SimpleNamespace) -> None:
    s = services
    cb = Callbacks(s)
    call = view("c1")
    await offered(s, cb, call)
    await press(s, cb, call, "11")
    await press(s, cb, call, "9")
    assert s.journal[-1] == ("play", "c1", ["callbacks.invalid", WHEN])


async def test_one_pending_call_back_per_number(services: SimpleNamespace) -> None:
    s = services
    cb = Callbacks(s)
    first = await cb.request(view("c1", queued_at=NOON - 500), "+34911234567", "asap")
    assert s.tasks.queued.keys() == {"cb1"}
    s.now.t = NOON + 100
    second = await cb.request(view("c2", queued_at=NOON + 50), "+34911234567", "asap")
    assert second.callback_id == first.callback_id
    [row] = requests(s)
    # The queued call back was withdrawn and queued again, the earlier place kept.
    assert s.tasks.queued.keys() == {"cb2"}
    assert (row["origin_call_id"], row["enqueued_at"], row["call_id"]) == (
        "c2", NOON - 500, "cb2")
    assert [j[1]["updated"] for j in s.journal if j[0] == "callback.requested"] == [
        False, True]


async def test_a_callee_at_three_in_the_night_waits_for_the_window(
        services: SimpleNamespace) -> None:
    s = services
    cb = Callbacks(s)
    tokyo = ZoneInfo("Asia/Tokyo")
    s.now.t = datetime(2026, 12, 2, 3, 0, tzinfo=tokyo).timestamp()
    call = view("c1", number="+81312345678", caller_country="JP",
                caller_timezone="Asia/Tokyo", queued_at=s.now.t - 300)
    req = await cb.request(call, "+81312345678", "asap")
    opens = datetime(2026, 12, 2, 8, 0, tzinfo=tokyo).timestamp()
    assert (req.status, req.due_at, req.zone) == ("scheduled", opens, "Asia/Tokyo")
    assert not s.tasks.queued
    assert s.timers.scheduled[f"due:{req.callback_id}"][:2] == (DUE_T, opens)
    s.now.t = opens
    await s.timers.fire(f"due:{req.callback_id}")
    assert s.tasks.queued["cb1"]["number"] == "+81312345678"


async def test_retries_then_unreached(services: SimpleNamespace) -> None:
    s = services  # max_attempts 2, retry_after_s 300
    cb = Callbacks(s)
    req = await cb.request(view("c1"), "+34911234567", "asap")
    cb.ended(view("cb1", kind="callback", state="ended", end_reason="unreached",
                  advisor="sofia"))
    await settle()
    [row] = requests(s)
    assert (row["status"], row["attempts"], row["advisor"]) == ("scheduled", 1, "sofia")
    assert row["due_at"] == NOON + 300
    attempted = [j[1] for j in s.journal if j[0] == "callback.attempted"]
    assert attempted == [{"callback_id": req.callback_id, "attempt": 1, "advisor": "sofia",
                          "end_reason": "unreached", "retry_at": NOON + 300}]
    s.now.t = NOON + 300
    await s.timers.fire(f"due:{req.callback_id}")
    assert "cb2" in s.tasks.queued
    cb.ended(view("cb2", kind="callback", state="ended", end_reason="unreached",
                  advisor="dalia"))
    await settle()
    [row] = requests(s)
    assert (row["status"], row["attempts"]) == ("unreached", 2)
    assert [j[1] for j in s.journal if j[0] == "callback.unreached"] == [
        {"callback_id": req.callback_id, "number": "+34911234567", "attempts": 2}]
    assert [r.callback_id for r in cb.mine("sofia")] == [req.callback_id]
    assert cb.mine("emre") == []


async def test_reached_is_connected(services: SimpleNamespace) -> None:
    s = services
    cb = Callbacks(s)
    req = await cb.request(view("c1"), "+34911234567", "asap")
    cb.event({"type": "call.reached", "call_id": "cb1", "advisor": "sofia", "data": {}})
    await settle()
    cb.ended(view("cb1", kind="callback", state="ended", end_reason="caller_hangup",
                  advisor="sofia"))
    await settle()
    [row] = requests(s)
    assert (row["status"], row["attempts"], row["advisor"]) == ("connected", 1, "sofia")
    assert [j[1] for j in s.journal if j[0] == "callback.connected"] == [
        {"callback_id": req.callback_id, "attempt": 1, "advisor": "sofia"}]


async def test_pending_call_backs_come_back_in_order_after_a_restart(tmp_path: Path) -> None:
    s = make_services(tmp_path)
    cb = Callbacks(s)
    late = await cb.request(view("c1", number="+34911000001", queued_at=NOON - 100),
                            "+34911000001", "asap")
    early = await cb.request(view("c2", number="+34911000002", queued_at=NOON - 900),
                             "+34911000002", "asap")
    later = await cb.request(view("c3", number="+34911000003", queued_at=NOON - 50),
                             "+34911000003", "tomorrow")
    # The gateway stops: the queued ones end "shutdown" and stay pending.
    for call_id in ("cb1", "cb2"):
        cb.ended(view(call_id, kind="callback", state="ended", end_reason="shutdown"))
    await settle()

    again = make_services(tmp_path)  # the same store, a new run
    again.now.t = NOON + 60
    resumed = Callbacks(again)
    await resumed.resume()
    assert [q["origin_call_id"] for q in again.tasks.queued.values()] == ["c2", "c1"]
    assert [q["enqueued_at"] for q in again.tasks.queued.values()] == [NOON - 900, NOON - 100]
    assert again.timers.scheduled[f"due:{later.callback_id}"][1] == later.due_at
    rows = {r["callback_id"]: r for r in requests(again)}
    assert rows[early.callback_id]["status"] == rows[late.callback_id]["status"] == "queued"
    assert rows[later.callback_id]["status"] == "scheduled"


async def test_supervisors_cancel_and_reorder(services: SimpleNamespace) -> None:
    s = services
    cb = Callbacks(s)
    a = await cb.request(view("c1", number="+34911000001", queued_at=NOON - 900),
                         "+34911000001", "asap")
    b = await cb.request(view("c2", number="+34911000002", queued_at=NOON - 500),
                         "+34911000002", "asap")
    c = await cb.request(view("c3", number="+34911000003", queued_at=NOON - 100),
                         "+34911000003", "tomorrow")
    assert [r.callback_id for r in cb.requests(pending_only=True)] == [
        a.callback_id, b.callback_id, c.callback_id]
    moved = await cb.move(c.callback_id, a.callback_id, "nadia")  # c first
    assert moved.enqueued_at < a.enqueued_at
    a = await cb.move(a.callback_id, None, "nadia")  # a last: queued again at its new place
    assert [r.callback_id for r in cb.requests(pending_only=True)] == [
        c.callback_id, b.callback_id, a.callback_id]
    assert s.tasks.queued[a.call_id or ""]["enqueued_at"] == NOON - 500 + 1
    assert b.call_id in s.tasks.queued
    s.tasks.taken.add(b.call_id or "")
    with pytest.raises(ActionError, match="advisor is making"):
        await cb.cancel(b.callback_id, "nadia")
    await cb.cancel(c.callback_id, "nadia")
    assert f"due:{c.callback_id}" not in s.timers.scheduled
    with pytest.raises(ActionError, match="is cancelled"):
        await cb.cancel(c.callback_id, "nadia")
    with pytest.raises(KeyError):
        await cb.cancel(999, "nadia")
    assert ("audit", "callback.cancel", "nadia") in s.journal


def test_the_routes_all_have_rules() -> None:
    from plugins.callbacks.http import RULES, make_router

    router = make_router(Callbacks.__new__(Callbacks))
    declared = {(m, r.path) for r in router.routes for m in r.methods}  # type: ignore[attr-defined]
    assert declared == set(RULES)


@pytest.mark.parametrize(("change", "message"), [
    ({"topics": ["visas"]}, r"plugins\.callbacks\.topics: 'visas' is not an IVR topic"),
    ({"default_zone": "Mars/Base"}, r"plugins\.callbacks\.default_zone: 'Mars/Base' is not"),
    ({"window_start": "21:00"},
     r"plugins\.callbacks\.window_end: the calling window 21:00-21:00 is empty"),
    ({"window_end": "25:00"}, r"plugins\.callbacks\.window_end"),
    ({"offer_after": 3}, r"plugins\.callbacks\.offer_after: unknown key"),
    ({"max_attempts": 0}, r"plugins\.callbacks\.max_attempts"),
])
def test_settings_that_do_not_fit_are_named(change: dict[str, Any], message: str) -> None:
    from cti.config import ConfigError
    from cti.plugins import PluginHost

    gw = load_settings(REPO / "config" / "cti.yaml")
    with pytest.raises(ConfigError, match=message):
        PluginHost().load({"callbacks": change}, "cti.yaml", gateway=gw)
    PluginHost().load({"callbacks": {}}, "cti.yaml", gateway=gw)  # the defaults fit


async def test_the_routes_list_cancel_move_and_mine(services: SimpleNamespace) -> None:
    import httpx
    from fastapi import FastAPI, Request

    from plugins.callbacks.http import make_router

    s = services
    cb = Callbacks(s)
    a = await cb.request(view("c1", number="+34911000001", queued_at=NOON - 900),
                         "+34911000001", "asap")
    b = await cb.request(view("c2", number="+34911000002", queued_at=NOON - 500),
                         "+34911000002", "tomorrow")
    cb.ended(view("cb1", kind="callback", state="ended", end_reason="unreached",
                  advisor="sofia"))
    await settle()
    app = FastAPI()
    who = {"user": "nadia"}

    @app.middleware("http")
    async def logged_in(request: Request, call_next: Any) -> Any:  # the guard's part
        request.state.principal = SimpleNamespace(user=who["user"])
        return await call_next(request)

    app.include_router(make_router(cb), prefix="/api/v1/plugins/callbacks")
    base = "/api/v1/plugins/callbacks"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://t") as http:
        listed = (await http.get(f"{base}/requests?pending=true")).json()
        assert [r["callback_id"] for r in listed] == [a.callback_id, b.callback_id]
        r = await http.post(f"{base}/requests/{b.callback_id}/move",
                            json={"before": a.callback_id})
        assert r.status_code == 200, r.text
        listed = (await http.get(f"{base}/requests")).json()
        assert [r["callback_id"] for r in listed] == [b.callback_id, a.callback_id]
        r = await http.post(f"{base}/requests/{b.callback_id}/move", json={"before": 99})
        assert r.status_code == 409 and "not pending" in r.json()["detail"]
        r = await http.post(f"{base}/requests/{b.callback_id}/move", json={"after": 1})
        assert r.status_code == 422
        r = await http.post(f"{base}/requests/{b.callback_id}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert (await http.post(f"{base}/requests/99/cancel")).status_code == 404
        who["user"] = "sofia"
        mine = (await http.get(f"{base}/mine")).json()
        assert [(m["callback_id"], m["attempts"]) for m in mine] == [(a.callback_id, 1)]
        who["user"] = "emre"
        assert (await http.get(f"{base}/mine")).json() == []

"""The campaigns plugin's logic without SIP: the gateway's real SQLite store (the
plugin's own tables through its fenced storage), the demo config, a fake of the
controller's tasks (calls queued for advisors), a clock the test moves."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
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
from cti.store.db import Store
from cti.store.plugin_storage import PluginStorage
from plugins.campaigns.csvfile import CsvError, export_csv, parse_contacts
from plugins.campaigns.plugin import EVENTS
from plugins.campaigns.schemas import CampaignIn, CampaignsSettings
from plugins.campaigns.services import Campaigns
from plugins.campaigns.storage import MIGRATIONS

REPO = Path(__file__).resolve().parents[3]
LONDON, TOKYO = ZoneInfo("Europe/London"), ZoneInfo("Asia/Tokyo")
#: Wednesday 2 December 2026, 11:00 in London (20:00 in Tokyo).
T0 = datetime(2026, 12, 2, 11, 0, tzinfo=LONDON).timestamp()
CSV = ("number,name,language,note\n"
       "+442071230001,Ann Smith,en,stranded in Lima\n"
       "0044 20 7123 0002,Bob Jones,,\n"
       "+81312345678,Chiyo Sato,en,hotel near Shinjuku\n")


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass
class FakeAdvisor:
    name: str
    state: str


class FakeFloor:
    """The controller's side: calls queued for advisors (services.tasks), their views
    (services.calls) and the advisors (services.advisors)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.views: dict[str, CallView] = {}
        self.queued: dict[str, dict[str, Any]] = {}
        self.advisors = [FakeAdvisor("sofia", "available")]
        self.plugin: Campaigns | None = None
        self.made = 0

    # services.tasks
    def callback(self, number: str, **kw: Any) -> str:
        self.made += 1
        call_id = f"c{self.made}"
        self.queued[call_id] = {"number": number, **kw}
        self.views[call_id] = CallView(
            call_id=call_id, kind=kw["kind"], state="queued", caller_number=number,
            caller_country=None, caller_timezone=None, dialled="", language=kw["language"],
            topic=kw["topic"], priority=kw["priority"], trainings=frozenset(),
            reserve=frozenset(), flags=dict(kw["flags"]), ivr_path=(), advisor=None,
            worker="", held=False, started_at=self.clock(), queued_at=self.clock(),
            answered_at=None, ended_at=None, end_reason=None)
        return call_id

    def cancel(self, call_id: str, by: str | None = None) -> bool:
        view = self.views.get(call_id)
        if view is None or view.state != "queued":
            return False
        self.end(call_id, "cancelled")
        return True

    # services.calls / services.advisors
    def get(self, call_id: str) -> CallView | None:
        return self.views.get(call_id)

    def list(self) -> list[FakeAdvisor]:
        return self.advisors

    # what the controller does to a call
    def connect(self, call_id: str, advisor: str = "sofia") -> None:
        self.views[call_id] = replace(self.views[call_id], state="connected", advisor=advisor)
        assert self.plugin is not None
        self.plugin.event({"type": "call.connected", "call_id": call_id, "advisor": advisor})

    def reach(self, call_id: str) -> None:
        self.views[call_id] = replace(self.views[call_id], reached_at=self.clock())
        assert self.plugin is not None
        self.plugin.event({"type": "call.reached", "call_id": call_id, "advisor": "sofia"})

    def end(self, call_id: str, reason: str, code: int | None = None) -> None:
        view = replace(self.views.pop(call_id), state="ended", end_reason=reason,
                       customer_end_code=code, ended_at=self.clock())
        assert self.plugin is not None
        self.plugin.ended(view)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.audits: list[tuple[str, str | None]] = []

    def publish(self, type_: str, data: dict[str, Any], **kw: Any) -> int:
        jsonschema.validate(data, EVENTS[type_])  # as the gateway would
        self.events.append((type_, data))
        return len(self.events)

    async def record(self, action: str, by: str | None, details: dict[str, Any]) -> None:
        self.audits.append((action, by))

    def inc(self, name: str, help_: str, amount: float = 1, **labels: str) -> None:
        pass


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "cti.sqlite3")
    yield s
    s.close()


#: The plugin's spawned tasks (store writes run in the writer's thread).
PENDING: set[asyncio.Task[Any]] = set()


def make(store: Store, **settings: Any) -> tuple[Campaigns, FakeFloor, SimpleNamespace]:
    PENDING.clear()  # a former test's (its loop is closed)
    clock = Clock(T0)
    floor = FakeFloor(clock)
    rec = Recorder()
    cfg = {"window_start": "09:00", "window_end": "20:00", "retry_after_s": 600,
           "max_attempts": 2, "max_share": 1.0, **settings}
    s = SimpleNamespace(
        settings=CampaignsSettings(**cfg), gateway=load_settings(REPO / "config" / "cti.yaml"),
        store=PluginStorage(store, "campaigns", MIGRATIONS), tasks=floor, calls=floor,
        advisors=floor, events=rec, audit=rec, metrics=rec, now=clock,
        log=logging.getLogger("test.campaigns"),
        spawn=lambda coro: PENDING.add(asyncio.get_running_loop().create_task(coro)))
    cp = Campaigns(s)
    floor.plugin = cp
    return cp, floor, s


async def settle() -> None:
    """Every task the plugin spawned is done (and those they spawned)."""
    while PENDING:
        tasks = list(PENDING)
        PENDING.difference_update(tasks)
        await asyncio.gather(*tasks)


def statuses(cp: Campaigns, campaign_id: int) -> list[str]:
    return [k.status for k in cp.contacts(campaign_id)]


# ------------------------------------------------------------------ the CSV
def test_an_upload_is_read_into_international_numbers() -> None:
    rows = parse_contacts(CSV, languages=["en", "nl"], default_language="nl", max_rows=10)
    assert [(r.line, r.number, r.language) for r in rows] == [
        (2, "+442071230001", "en"), (3, "+442071230002", "nl"), (4, "+81312345678", "en")]
    assert rows[0].note == "stranded in Lima"


def test_every_bad_line_is_named_at_once() -> None:
    text = ("number,name,language\n+442071230001,A,en\n12345,B,en\n+442071230001,C,en\n"
            "+442071230003,D,xx\n,E,en\n")
    with pytest.raises(CsvError) as e:
        parse_contacts(text, languages=["en"], default_language="en", max_rows=10)
    assert e.value.problems == [
        "line 3: '12345' is not an international phone number (+44… or 0044…)",
        "line 4: +442071230001 is already on line 2",
        "line 5: language 'xx' is not an IVR language (expected one of en)",
        "line 6: the number is empty"]
    with pytest.raises(CsvError, match="unknown column 'phone'"):
        parse_contacts("phone,name\n+442071230001,A\n", languages=["en"],
                       default_language="en", max_rows=10)
    with pytest.raises(CsvError, match="more than 1 numbers"):
        parse_contacts(CSV, languages=["en", "nl"], default_language="en", max_rows=1)


def test_the_export_does_not_hand_a_spreadsheet_a_formula() -> None:
    text = export_csv([{"line": 2, "number": "+442071230001", "name": "=HYPERLINK(1)",
                        "note": "-2+3", "status": "reached"}])
    header, row = text.splitlines()
    assert header.startswith("line,number,name,language,note,status")
    assert row.startswith("2,+442071230001,'=HYPERLINK(1),,'-2+3,reached")


# ------------------------------------------------------------------ the dialer
async def test_a_campaign_of_three_numbers(store: Store) -> None:
    """One reached (wrap-up stored), one that does not answer (retried, then
    no_answer), one outside its window (waits until it opens in Tokyo)."""
    cp, floor, s = make(store)
    c = await cp.create(CampaignIn(name="Repatriation Peru", topic="travel_advice",
                                   csv=CSV), "nadia")
    assert c.status == "running" and ("campaign.create", "nadia") in s.audit.audits
    tokyo = cp.contacts(c.campaign_id)[2]
    # 20:00 in Tokyo: its window has closed; it waits for 09:00 there tomorrow.
    assert tokyo.zone == "Asia/Tokyo" and tokyo.due_at == datetime(
        2026, 12, 3, 9, 0, tzinfo=TOKYO).timestamp()

    await cp.tick()  # one advisor: one call at a time
    assert list(floor.queued) == ["c1"] and floor.queued["c1"]["number"] == "+442071230001"
    assert floor.queued["c1"]["kind"] == "outbound"
    assert floor.queued["c1"]["priority"] == -1000
    await cp.tick()
    assert list(floor.queued) == ["c1"]  # the share is taken
    floor.connect("c1")
    floor.reach("c1")
    await settle()
    assert statuses(cp, c.campaign_id)[0] == "calling"
    floor.end("c1", "advisor_hangup")
    await settle()
    cp.event({"type": "call.wrap_up", "call_id": "c1",
              "data": {"code": "info_given", "note": "flight on Friday", "by": "sofia"}})
    await settle()
    ann = cp.contacts(c.campaign_id)[0]
    assert (ann.status, ann.attempts, ann.advisor, ann.wrap_up_code, ann.wrap_up_note) == (
        "reached", 1, "sofia", "info_given", "flight on Friday")

    await cp.tick()  # Bob: busy, retried after retry_after_s; then no answer at all
    assert floor.queued["c2"]["number"] == "+442071230002"
    floor.connect("c2")
    floor.end("c2", "unreached", 486)
    await settle()
    bob = cp.contacts(c.campaign_id)[1]
    assert (bob.status, bob.attempts, bob.last_reason, bob.due_at) == (
        "scheduled", 1, "busy", T0 + 600)
    attempt = [d for t, d in s.events.events if t == "campaign.attempt"][-1]
    assert (attempt["line"], attempt["status"], attempt["retry_at"]) == (3, "scheduled",
                                                                         T0 + 600)
    await cp.tick()
    assert len(floor.queued) == 2  # not yet
    s.now.t = T0 + 600
    await cp.tick()
    floor.connect("c3")
    floor.end("c3", "unreached", 480)
    await settle()
    assert statuses(cp, c.campaign_id) == ["reached", "no_answer", "scheduled"]
    counts = cp.counts(c.campaign_id)
    assert (counts["reached"], counts["no_answer"], counts["scheduled"]) == (1, 1, 1)

    # Tokyo opens at 09:00 local (00:00 in London).
    s.now.t = tokyo.due_at - 1
    await cp.tick()
    assert len(floor.queued) == 3
    s.now.t = tokyo.due_at
    await cp.tick()
    assert floor.queued["c4"]["number"] == "+81312345678"
    floor.connect("c4")
    floor.end("c4", "unreached", 404)  # the carrier: no such number
    await settle()
    assert statuses(cp, c.campaign_id) == ["reached", "no_answer", "wrong_number"]
    assert cp.campaign(c.campaign_id).status == "done"
    assert ("campaign.status", {"campaign_id": c.campaign_id, "name": "Repatriation Peru",
                                "status": "done"}) in s.events.events

    lines = cp.export(c.campaign_id).splitlines()
    assert [line.split(",")[5] for line in lines[1:]] == ["reached", "no_answer",
                                                          "wrong_number"]
    assert "flight on Friday" in lines[1] and "no answer" in lines[2]


async def test_a_wrong_number_from_the_wrap_up(store: Store) -> None:
    cp, floor, _ = make(store)
    c = await cp.create(CampaignIn(name="x", topic="visa", csv=CSV.split("\n0044")[0]),
                        "nadia")
    await cp.tick()
    floor.connect("c1")
    floor.reach("c1")
    floor.end("c1", "caller_hangup")
    await settle()
    cp.event({"type": "call.wrap_up", "call_id": "c1",
              "data": {"code": "wrong_number", "note": "", "by": "sofia"}})
    await settle()
    assert statuses(cp, c.campaign_id) == ["wrong_number"]


async def test_the_share_of_advisors_it_may_take(store: Store) -> None:
    cp, floor, _ = make(store, max_share=0.5)
    floor.advisors = [FakeAdvisor(f"a{i}", st) for i, st in enumerate(
        ["available", "on_call", "wrap_up", "away", "logged_out"])]
    text = "number\n" + "\n".join(f"+44207123{i:04d}" for i in range(10))
    await cp.create(CampaignIn(name="x", topic="visa", csv=text), "nadia")
    await cp.create(CampaignIn(name="y", topic="visa", csv=text), "nadia")
    assert cp.room() == 1  # half of the three working advisors, rounded down
    for _ in range(3):
        await cp.tick()
    assert len(floor.queued) == 1
    floor.advisors = [FakeAdvisor("a", "away")]
    assert cp.room() == -1
    floor.advisors = [FakeAdvisor(f"a{i}", "available") for i in range(8)]
    await cp.tick()  # four allowed; one waiting for an advisor per campaign
    assert len(floor.queued) == 2
    floor.connect("c1")
    floor.connect("c2")
    await cp.tick()
    assert len(floor.queued) == 4


async def test_pause_resume_and_stop(store: Store) -> None:
    cp, floor, s = make(store)
    c = await cp.create(CampaignIn(name="x", topic="visa", csv=CSV), "nadia")
    await cp.tick()
    assert statuses(cp, c.campaign_id)[0] == "queued"
    await cp.set_state(c.campaign_id, "pause", "nadia")  # the waiting call is withdrawn
    assert statuses(cp, c.campaign_id)[0] == "scheduled" and not floor.views
    await settle()
    assert cp.contacts(c.campaign_id)[0].attempts == 0  # it was not an attempt
    await cp.tick()
    assert floor.made == 1
    with pytest.raises(ActionError, match="is paused: cannot pause"):
        await cp.set_state(c.campaign_id, "pause", "nadia")
    await cp.set_state(c.campaign_id, "resume", "nadia")
    await cp.tick()
    floor.connect("c2")  # an advisor has it: stop lets it finish
    await cp.set_state(c.campaign_id, "stop", "nadia")
    assert statuses(cp, c.campaign_id) == ["calling", "cancelled", "cancelled"]
    floor.reach("c2")
    floor.end("c2", "caller_hangup")
    await settle()
    assert statuses(cp, c.campaign_id) == ["reached", "cancelled", "cancelled"]
    assert [a for a, _ in s.audit.audits] == ["campaign.create", "campaign.pause",
                                              "campaign.resume", "campaign.stop"]


async def test_after_a_restart_calls_in_progress_are_due_again(store: Store) -> None:
    cp, floor, _ = make(store)
    c = await cp.create(CampaignIn(name="x", topic="visa", csv=CSV), "nadia")
    await cp.tick()
    floor.connect("c1")
    floor.reach("c1")  # reached before the stop: not called twice
    floor.advisors.append(FakeAdvisor("emre", "available"))
    await settle()
    await cp.tick()
    assert statuses(cp, c.campaign_id)[:2] == ["calling", "queued"]
    again, floor2, _ = make(store)
    await again.start()
    await again.stop()
    assert statuses(again, c.campaign_id)[:2] == ["reached", "scheduled"]
    await again.tick()
    assert [q["number"] for q in floor2.queued.values()] == ["+442071230002"]


async def test_an_upload_that_does_not_fit(store: Store) -> None:
    cp, _, _ = make(store)
    with pytest.raises(ActionError, match="'visas' is not an IVR topic"):
        await cp.create(CampaignIn(name="x", topic="visas", csv=CSV), "nadia")
    with pytest.raises(ActionError, match="calling window 10:00-10:00 is empty"):
        await cp.create(CampaignIn(name="x", topic="visa", csv=CSV, window_start="10:00",
                                   window_end="10:00"), "nadia")
    with pytest.raises(CsvError, match="line 2"):
        await cp.create(CampaignIn(name="x", topic="visa", csv="number\n123\n"), "nadia")
    assert cp.campaigns() == []


def test_the_routes_all_have_rules() -> None:
    from plugins.campaigns.http import RULES, make_router

    router = make_router(Campaigns.__new__(Campaigns))
    declared = {(m, r.path) for r in router.routes for m in r.methods}  # type: ignore[attr-defined]
    assert declared == set(RULES)


@pytest.mark.parametrize(("change", "message"), [
    ({"wrong_number_codes": ["nope"]},
     r"plugins\.campaigns\.wrong_number_codes: 'nope' is not a wrap-up code"),
    ({"default_zone": "Mars/Base"}, r"plugins\.campaigns\.default_zone: 'Mars/Base' is not"),
    ({"max_share": 0}, r"plugins\.campaigns\.max_share"),
    ({"window_end": "09:00"}, r"plugins\.campaigns\.window_end: the calling window"),
])
def test_settings_that_do_not_fit_are_named(change: dict[str, Any], message: str) -> None:
    from cti.config import ConfigError
    from cti.plugins import PluginHost

    gw = load_settings(REPO / "config" / "cti.yaml")
    with pytest.raises(ConfigError, match=message):
        PluginHost().load({"campaigns": change}, "cti.yaml", gateway=gw)
    PluginHost().load({"campaigns": {}}, "cti.yaml", gateway=gw)  # the defaults fit

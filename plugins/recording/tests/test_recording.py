"""The recording plugin's logic without SIP: the real SQLite store (its fenced
tables), real files in a temp directory, a clock the test moves, fakes of the
controller's calls and recorder."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cti.config import load_settings
from cti.core.views import CallView
from cti.plugins.api import ActionError
from cti.store.db import Store
from cti.store.plugin_storage import PluginStorage
from plugins.recording.schemas import RecordingSettings
from plugins.recording.services import DAY_S, Recordings
from plugins.recording.storage import MIGRATIONS, Recording

REPO = Path(__file__).resolve().parents[3]
T0 = 1_796_000_000.0


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Fakes:
    """services.calls, .recorder, .timers, .audit, .events, .metrics."""

    def __init__(self) -> None:
        self.plays: list[tuple[str, list[str], bool]] = []
        self.fail_play = False
        self.audits: list[tuple[str, str | None, dict[str, Any]]] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.scheduled: dict[str, float] = {}
        self.flags: dict[str, Any] = {}

    def play(self, call_id: str, prompts: list[str], *, before_bridge: bool = False) -> None:
        if self.fail_play:
            raise ActionError("play: no prompt en/recording.consent.wav")
        self.plays.append((call_id, list(prompts), before_bridge))

    def set_flag(self, call_id: str, name: str, value: Any) -> None:
        self.flags[name] = value

    def on(self, kind: str, handler: Any) -> None:
        pass

    async def schedule(self, kind: str, at: float, payload: dict[str, Any],
                       key: str | None = None) -> str:
        self.scheduled[key or kind] = at
        return key or kind

    async def record(self, action: str, by: str | None, details: dict[str, Any]) -> None:
        self.audits.append((action, by, details))

    def publish(self, type_: str, data: dict[str, Any], **kw: Any) -> int:
        self.events.append((type_, data))
        return len(self.events)

    def inc(self, *a: Any, **k: Any) -> None:
        pass


def view(call_id: str = "c1", **over: Any) -> CallView:
    v = CallView(
        call_id=call_id, kind="inbound", state="queued", caller_number="+442079460555",
        caller_country="GB", caller_timezone="Europe/London", dialled="+31247247247",
        language="en", topic="visa", priority=0, trainings=frozenset(), reserve=frozenset(),
        flags={}, ivr_path=(), advisor=None, worker="w1", held=False, started_at=T0,
        queued_at=T0, answered_at=None, ended_at=None, end_reason=None)
    return replace(v, **over) if over else v


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "cti.sqlite3")
    yield s
    s.close()


def make(store: Store, tmp: Path, **settings: Any) -> tuple[Recordings, Fakes, Clock]:
    fakes, clock = Fakes(), Clock(T0)
    s = SimpleNamespace(
        settings=RecordingSettings(**settings), gateway=load_settings(REPO / "config/cti.yaml"),
        store=PluginStorage(store, "recording", MIGRATIONS), calls=fakes, timers=fakes,
        audit=fakes, events=fakes, metrics=fakes, now=clock,
        log=logging.getLogger("test.recording"),
        spawn=lambda coro: asyncio.get_running_loop().create_task(coro))
    return Recordings(s, tmp / "recordings"), fakes, clock


def test_what_is_recorded(store: Store, tmp_path: Path) -> None:
    rec, _, _ = make(store, tmp_path, never_topics=["emergency"], hotlines=["+31247247247"])
    assert rec.recorded(view())
    assert not rec.recorded(view(topic="emergency"))  # never recorded
    assert not rec.recorded(view(dialled="+31247247248"))  # another hotline
    assert not rec.recorded(view(kind="callback"))


def test_the_consent_holds_the_bridge_and_no_announcement_means_no_recording(
        store: Store, tmp_path: Path) -> None:
    rec, fakes, _ = make(store, tmp_path)
    rec.queued(view())
    assert fakes.plays == [("c1", ["recording.consent"], True)]
    assert rec.consenting == {"c1": "9"}
    fakes.fail_play = True
    rec.queued(view("c2"))
    assert "c2" not in rec.consenting  # never recorded unannounced


async def test_the_purge_removes_what_expired_and_keeps_what_is_held(
        store: Store, tmp_path: Path) -> None:
    rec, fakes, clock = make(store, tmp_path,
                             retention_days={"default": 30, "emergency": 90})
    await rec.start()
    files = {}
    for call_id, topic, held in (("old", "visa", False), ("kept", "visa", True),
                                 ("crisis", "emergency", False)):
        path = tmp_path / "recordings" / f"{call_id}.wav"
        path.write_bytes(b"RIFF")
        files[call_id] = path
        await rec.repo.add(Recording(
            0, call_id, "done", "announced", T0, T0, topic=topic, path=path.name,
            held=held, expires_at=T0 + rec.retention_s(topic)))
    assert rec.retention_s("emergency") == 90 * DAY_S and rec.retention_s(None) == 30 * DAY_S
    clock.t = T0 + 30 * DAY_S - 1
    assert await rec.purge() == 0
    clock.t = T0 + 31 * DAY_S
    assert await rec.purge() == 1
    assert not files["old"].exists() and files["kept"].exists() and files["crisis"].exists()
    assert rec.repo.by_call("old") is None and rec.repo.by_call("kept") is not None
    [(action, by, details)] = fakes.audits
    assert (action, by, details["call_id"]) == ("recording.purge", None, "old")
    clock.t = T0 + 91 * DAY_S
    assert await rec.purge() == 1 and not files["crisis"].exists()
    assert files["kept"].exists()


async def test_a_recording_unfinished_at_a_restart_is_failed(store: Store,
                                                             tmp_path: Path) -> None:
    rec, _, _ = make(store, tmp_path)
    await rec.repo.add(Recording(0, "c1", "recording", "announced", T0, T0, path="c1.wav"))
    await rec.start()
    row = rec.repo.by_call("c1")
    assert row is not None and row.status == "failed" and "stopped" in (row.error or "")
    assert (tmp_path / "recordings").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(("change", "message"), [
    ({"never_topics": ["nope"]}, r"plugins\.recording\.never_topics: 'nope' is not an IVR"),
    ({"retention_days": {"visa": 10}}, r"plugins\.recording\.retention_days: a 'default'"),
    ({"hotlines": ["+3100"]}, r"plugins\.recording\.hotlines: '\+3100' is not one of"),
    ({"decline_digit": "x"}, r"plugins\.recording\.decline_digit"),
])
def test_settings_that_do_not_fit_are_named(change: dict[str, Any], message: str) -> None:
    from cti.config import ConfigError
    from cti.plugins import PluginHost

    gw = load_settings(REPO / "config" / "cti.yaml")
    with pytest.raises(ConfigError, match=message):
        PluginHost().load({"recording": change}, "cti.yaml", gateway=gw)
    PluginHost().load({"recording": {}}, "cti.yaml", gateway=gw)  # the defaults fit

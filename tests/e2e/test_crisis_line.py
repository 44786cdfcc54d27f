"""The crisis-line plugin end to end (issue acceptance 1): a supervisor starts a crisis
through the API; a caller hears the announcement before the menu, takes the crisis
option and is served before normal callers who waited longer; a reserve-pool
advisor without the training takes a crisis call when no trained one is free; a
crisis caller nobody can take overflows to the crisis team (tones both ways), back
to the head of the queue if the team does not answer; after the crisis, no
announcement."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.audio import (
    dominant_frequency,
    read_wav,
    tone_present,
    wait_file_final,
    write_tone,
)
from tests.e2e.gateway_harness import (
    REPO,
    Advisor,
    bus_event,
    hear_each_other,
    hotline_uri,
    running_gateway,
    until,
)
from tests.peers.phone import Phone

pytestmark = pytest.mark.e2e

ANNOUNCE_HZ = 1200.0
MENU_HZ = 600.0  # every other prompt (short_prompts)
CRISIS = "floods-si"


def crisis_settings(**over: Any) -> dict[str, Any]:
    return {"crisis_line": {"reserve": ["michel"], "team": "crisis_team",
                            "overflow_after_s": 600, "overflow_waiting": 10, **over}}


def gateway(tmp: Path, prompts: Path, team: Phone | None = None, **crisis: Any):  # noqa: ANN201
    directory = [{"key": "crisis_team", "name": "Crisis team",
                  "uri": team.uri("crisis") if team else "sip:crisis@127.0.0.1:9"}]
    return running_gateway(
        tmp, plugins=crisis_settings(**crisis), directory=directory,
        prompts={"texts": str(REPO / "config" / "prompts.yaml"),
                 "cache_dir": str(REPO / "var" / "prompts"), "override_dir": str(prompts)})


@pytest.fixture
def crisis_prompts(short_prompts: Path) -> Path:
    """Short prompts, and a recorded announcement (a tone of its own) in every language."""
    for lang in ("nl", "en", "es", "tr"):
        write_tone(short_prompts / lang / "crisis_line.announce.wav", ANNOUNCE_HZ, 1.2)
    return short_prompts


async def supervisor(gw: Any) -> httpx.AsyncClient:  # noqa: ANN401
    s = gw.settings
    http = httpx.AsyncClient(base_url=f"http://{s.http.host}:{s.http.port}")
    r = await http.post("/api/v1/login", json={"username": "nadia", "password": "demo-nadia"})
    http.headers["Authorization"] = f"Bearer {r.json()['token']}"
    return http


async def start_crisis(http: httpx.AsyncClient) -> dict[str, Any]:
    r = await http.post("/api/v1/plugins/crisis_line/crises", json={"name": CRISIS})
    assert r.status_code == 201, r.text
    return r.json()


async def dial(caller: Phone, gw: Any, record: Path | None = None) -> str:  # noqa: ANN401
    """Dial the hotline; record what the caller hears from the answer on."""
    leg = uuid.uuid4().hex
    await caller.command("dial", leg=leg, uri=hotline_uri(gw))
    await caller.wait_for("leg.state", leg=leg, state="confirmed", timeout=10)
    if record is not None:
        await caller.command("record_start", leg=leg, file=str(record))
    await caller.wait_for("leg.media", leg=leg, active=True, timeout=10)
    return leg


async def choose(caller: Phone, leg: str, gw: Any, call_id: str, topic: str) -> None:  # noqa: ANN401
    """English in the language menu, then ``topic`` in the topic menu (each after its
    prompt started: digits during the announcement would not count)."""
    await until(lambda: _node_prompted(gw, call_id, "lang"))
    await caller.command("send_dtmf", leg=leg, digits="2", method="rfc2833")
    await until(lambda: _node_prompted(gw, call_id, "topic"))
    await caller.command("send_dtmf", leg=leg, digits=topic, method="rfc2833")


def _node_prompted(gw: Any, call_id: str, node: str) -> bool:  # noqa: ANN401
    return any(e["type"] == "ivr.prompt" and e["call_id"] == call_id
               and e["data"].get("node") == node for e in gw.bus.since(0))


def prompts_of(gw: Any, call_id: str) -> list[list[str]]:  # noqa: ANN401
    return [e["data"]["prompts"] for e in gw.bus.since(0)
            if e["type"] == "ivr.prompt" and e["call_id"] == call_id]


async def event_of(gw: Any, match: Callable[[dict[str, Any]], bool],  # noqa: ANN401
                   timeout: float = 20) -> dict[str, Any]:
    """The first bus event that matches, past or coming."""
    past = [e for e in gw.bus.since(0) if match(e)]
    return past[0] if past else await gw.bus.wait_for(match, timeout)


async def incoming_call_id(gw: Any, number: str) -> str:  # noqa: ANN401
    ev = await event_of(gw, lambda e: e["type"] == "call.incoming"
                        and e["data"]["caller"]["number"] == number)
    return str(ev["call_id"])


def first_second_of(path: Path, freq: float) -> float | None:
    """When ``freq`` first dominates a 100 ms window of the recording."""
    samples, rate = read_wav(path)
    size = rate // 10
    for i in range(0, len(samples) - size, size):
        win = samples[i:i + size]
        if np.sqrt(np.mean(win ** 2)) > 300 and abs(dominant_frequency(win, rate) - freq) < 30:
            return i / rate
    return None


async def queued(gw: Any, call_id: str) -> dict[str, Any]:  # noqa: ANN401
    return await event_of(gw, lambda e: e["type"] == "call.queued" and e["call_id"] == call_id)


async def test_crisis_callers_hear_the_announcement_and_go_first_then_to_the_reserve(
    tmp_path: Path, crisis_prompts: Path,
) -> None:
    async with gateway(tmp_path, crisis_prompts) as gw, \
            Advisor(gw, "dalia") as dalia, Advisor(gw, "michel") as michel, \
            Phone(name="+442071230001") as normal, Phone(name="+442071230002") as crisis, \
            Phone(name="+442071230003") as second, Phone(name="+442071230004") as after:
        http = await supervisor(gw)
        try:
            started = await start_crisis(http)
            assert started["active"] and started["started_by"] == "nadia"
            assert (await bus_event(gw, "crisis.started"))["data"]["name"] == CRISIS

            # A normal caller (travel advice) waits first; nobody is available.
            leg_n = await dial(normal, gw)
            normal_id = await incoming_call_id(gw, "+442071230001")
            await choose(normal, leg_n, gw, normal_id, "3")
            assert (await queued(gw, normal_id))["data"]["priority"] == 0

            # The crisis caller hears the announcement, then the menus with the option.
            heard = tmp_path / "crisis-caller.wav"
            leg_c = await dial(crisis, gw, record=heard)
            crisis_id = await incoming_call_id(gw, "+442071230002")
            await choose(crisis, leg_c, gw, crisis_id, "5")
            q = await queued(gw, crisis_id)
            assert (q["data"]["topic"], q["data"]["priority"]) == ("emergency", 50)
            await crisis.command("record_stop", leg=leg_c)
            await wait_file_final(heard)
            said = prompts_of(gw, crisis_id)
            assert said[0] == ["en/crisis_line.announce"]  # in the guessed language
            topic_menu = next(p for p in said if "en/topic_menu" in p)
            assert topic_menu[-1] == "en/crisis_line.option"
            announce_at = first_second_of(heard, ANNOUNCE_HZ)
            menu_at = first_second_of(heard, MENU_HZ)
            assert announce_at is not None and menu_at is not None, (announce_at, menu_at)
            assert announce_at < menu_at
            assert tone_present(heard, ANNOUNCE_HZ, min_seconds=0.6)

            # Dalia (crisis training) becomes available: the crisis call first.
            await dalia.set_state("available")
            offered = await dalia.stream.wait_for("call.offered", timeout=15)
            assert offered["call_id"] == crisis_id
            pop = offered["data"]
            assert pop["plugins"]["crisis_line"]["crisis"] == CRISIS
            assert pop["flags"]["crisis"] == CRISIS
            incoming = await dalia.phone.wait_for("leg.incoming", timeout=10)
            await dalia.phone.command("answer", leg=incoming["leg"], code=200)
            await dalia.stream.wait_for("call.connected", call_id=crisis_id)

            # Another crisis caller; no trained advisor is free: michel, of the
            # reserve pool (no crisis training, no emergency topic), takes it before
            # the normal caller who waited longer.
            leg_2 = await dial(second, gw)
            second_id = await incoming_call_id(gw, "+442071230003")
            await choose(second, leg_2, gw, second_id, "5")
            await queued(gw, second_id)
            await michel.set_state("available")
            offered = await michel.stream.wait_for("call.offered", timeout=15)
            assert offered["call_id"] == second_id
            trace = gw.store.offers(second_id)[-1]["trace"]
            assert trace["from_reserve"] is True
            incoming = await michel.phone.wait_for("leg.incoming", timeout=10)
            await michel.phone.command("answer", leg=incoming["leg"], code=200)
            await michel.stream.wait_for("call.connected", call_id=second_id)
            assert gw.flow.calls.get(normal_id).state == "queued"

            current = (await http.get("/api/v1/plugins/crisis_line/crises/current")).json()
            assert (current["answered"], current["overflowed"]) == (2, 0)

            # The crisis ends: a new caller hears no announcement and no option.
            r = await http.post("/api/v1/plugins/crisis_line/crises/current/end")
            assert r.status_code == 200 and r.json()["ended_by"] == "nadia"
            ended = await bus_event(gw, "crisis.ended")
            assert ended["data"]["answered"] == 2
            leg_a = await dial(after, gw)
            after_id = await incoming_call_id(gw, "+442071230004")
            await choose(after, leg_a, gw, after_id, "3")
            await queued(gw, after_id)
            flat = [p for prompts in prompts_of(gw, after_id) for p in prompts]
            assert not [p for p in flat if "crisis_line" in p], flat
            audit = (await http.get("/api/v1/audit")).json()
            actions = [a["action"] for a in audit]
            assert "plugin.crisis_line.crisis.start" in actions
            assert "plugin.crisis_line.crisis.end" in actions
        finally:
            await http.aclose()


async def test_a_crisis_caller_nobody_takes_overflows_to_the_crisis_team(
    tmp_path: Path, crisis_prompts: Path,
) -> None:
    caller_tone, team_tone = 440.0, 1000.0
    write_tone(tmp_path / "caller.wav", caller_tone, 30)
    write_tone(tmp_path / "team.wav", team_tone, 30)
    async with Phone(name="crisis") as team, \
            gateway(tmp_path, crisis_prompts, team, overflow_after_s=2) as gw, \
            Phone(name="+386112345678") as caller, Phone(name="+386112345679") as later:
        http = await supervisor(gw)
        try:
            await start_crisis(http)
            leg = await dial(caller, gw)
            call_id = await incoming_call_id(gw, "+386112345678")
            await choose(caller, leg, gw, call_id, "5")
            await queued(gw, call_id)
            # Nobody is available: after overflow_after_s, to the crisis team.
            incoming = await team.wait_for("leg.incoming", timeout=15)
            assert incoming["headers"]["x-cti-call-id"] == call_id
            over = await bus_event(gw, "crisis.overflowed")
            assert over["call_id"] == call_id and over["data"]["reason"] == "waited"
            await team.command("answer", leg=incoming["leg"], code=200)
            done = await bus_event(gw, "call.transferred")
            assert done["call_id"] == call_id and done["data"]["by"] == "crisis_line"
            await team.wait_for("leg.media", leg=incoming["leg"], active=True)
            heard_by_caller, heard_by_team = await hear_each_other(
                tmp_path, caller, leg, team, incoming["leg"], "overflow")
            assert tone_present(heard_by_caller, team_tone, min_seconds=1.0)
            assert tone_present(heard_by_team, caller_tone, min_seconds=1.0)

            # The team does not answer the next one: back at the head of the queue.
            leg2 = await dial(later, gw)
            later_id = await incoming_call_id(gw, "+386112345679")
            await choose(later, leg2, gw, later_id, "5")
            await queued(gw, later_id)
            ringing = await team.wait_for("leg.incoming", timeout=15)
            assert ringing["headers"]["x-cti-call-id"] == later_id
            await team.command("hangup", leg=ringing["leg"], code=486)
            failed = await event_of(gw, lambda e: e["type"] == "call.transfer_failed"
                                    and e["call_id"] == later_id)
            assert failed["data"]["code"] == 486
            await until(lambda: gw.flow.calls.get(later_id).state == "queued")
            snap = gw.flow.distributor.snapshot()
            row = next(c for c in snap["calls"] if c["call_id"] == later_id)
            assert row["at_head"] is True
            current = (await http.get("/api/v1/plugins/crisis_line/crises/current")).json()
            assert (current["overflowed"], current["waiting"]) == (2, 1)
            metrics = (await http.get("/metrics")).text
            assert 'cti_plugin_crisis_line_overflows_total{reason="waited"} 2' in metrics
        finally:
            await http.aclose()


async def test_a_crisis_in_force_survives_a_restart(tmp_path: Path, crisis_prompts: Path) -> None:
    """Acceptance 2: stopped and started again on the same store, the crisis is still
    on (a new caller hears the announcement), a live skill edit is kept, and the
    audit has both starts."""
    skills = {"languages": {"en": 4, "tr": 5}, "topics": {"visa": 3},
              "trainings": {"crisis": "2031-01-01"}}
    async with gateway(tmp_path, crisis_prompts) as gw:
        http = await supervisor(gw)
        try:
            await start_crisis(http)
            r = await http.put("/api/v1/advisors/emre/skills", json=skills)
            assert r.status_code == 200, r.text
        finally:
            await http.aclose()

    async with gateway(tmp_path, crisis_prompts) as gw, Phone(name="+905321234567") as caller:
        http = await supervisor(gw)
        try:
            current = (await http.get("/api/v1/plugins/crisis_line/crises/current")).json()
            assert current is not None and current["name"] == CRISIS and current["active"]
            assert gw.flow.distributor.advisor_profile("emre").valid_trainings(0) == {"crisis"}
            await dial(caller, gw)
            call_id = await incoming_call_id(gw, "+905321234567")
            first = await event_of(gw, lambda e: e["type"] == "ivr.prompt"
                                   and e["call_id"] == call_id)
            assert first["data"]["prompts"] == ["tr/crisis_line.announce"]
            lines = (await http.get("/api/v1/audit")).json()
            actions = [a["action"] for a in reversed(lines)]  # oldest first
            assert actions.count("gateway.start") == 2
            assert actions.index("plugin.crisis_line.crisis.start") < actions.index(
                "gateway.stop") < len(actions) - 1 - actions[::-1].index("gateway.start")
            assert "skills.set" in actions
        finally:
            await http.aclose()

"""Flows from config per dialled number, with real calls: a flag and the caller's
country steer the flow, a menu choice transfers the caller to the crisis team
(audio checked both ways), and a failed transfer falls back to a priority queue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.audio import read_wav, tone_present, wait_file_final, wait_recorded, write_tone
from tests.e2e.gateway_harness import bus_event, hear_each_other, ivr_gateway
from tests.peers.phone import Phone

pytestmark = pytest.mark.e2e

CRISIS_LINE = "+31247247249"


def crisis_flow() -> dict[str, Any]:
    return {
        "start": "crisis_on",
        "nodes": {
            "crisis_on": {"type": "branch", "by": "flag:crisis",
                          "cases": {True: "notice", False: "by_country"}},
            "notice": {"type": "play", "prompts": ["crisis_notice"], "next": "by_country"},
            "by_country": {"type": "branch", "by": "country", "cases": {"TR": "turkish"},
                           "default": "menu"},
            "turkish": {"type": "set", "language": "tr", "flags": {"route": "tr"},
                        "next": "menu"},
            "menu": {"type": "menu", "prompts": ["crisis_menu"], "default": "1",
                     "options": {"1": "crisis_queue", "2": "crisis_team"}},
            "crisis_team": {"type": "transfer", "to": "crisis_team",
                            "prompts": ["transferring"], "fallback": "crisis_queue"},
            "crisis_queue": {"type": "queue", "topic": "emergency", "priority": 40},
        },
    }


def _gateway(tmp_path: Path, prompts: Path, crisis_team: Phone, crisis: bool):  # noqa: ANN202
    from tests.e2e.gateway_harness import HOTLINE

    return ivr_gateway(
        tmp_path, prompts, flows={CRISIS_LINE: crisis_flow()}, flags={"crisis": crisis},
        other={"sip__hotlines": [HOTLINE, CRISIS_LINE],
               "directory": [{"key": "crisis_team", "name": "Crisis team",
                              "uri": crisis_team.uri("crisis")}]})


async def _dial_crisis_line(caller: Phone, gw: Any) -> str:  # noqa: ANN401
    leg = "crisis-1"
    s = gw.settings
    await caller.command("dial", leg=leg, uri=f"sip:{CRISIS_LINE}@{s.sip.ip}:{s.sip.port}")
    await caller.wait_for("leg.state", leg=leg, state="confirmed", timeout=10)
    return leg


def _prompts(gw: Any, call_id: str) -> list[list[str]]:  # noqa: ANN401
    return [e["data"]["prompts"] for e in gw.bus.since(0)
            if e["type"] == "ivr.prompt" and e["call_id"] == call_id]


async def test_a_turkish_caller_in_a_crisis_is_transferred_to_the_crisis_team(
    tmp_path: Path, short_prompts: Path,
) -> None:
    caller_tone, team_tone = 440.0, 1000.0
    write_tone(tmp_path / "caller.wav", caller_tone, 30)
    write_tone(tmp_path / "team.wav", team_tone, 30)
    async with Phone(name="crisis") as team, \
            _gateway(tmp_path, short_prompts, team, crisis=True) as gw, \
            Phone(name="+905321234567") as caller:
        leg = await _dial_crisis_line(caller, gw)
        menu = await bus_event(gw, "ivr.prompt", node="menu")
        call_id = menu["call_id"]
        # The flag played the crisis notice; the country set Turkish, without a menu.
        assert _prompts(gw, call_id) == [["tr/crisis_notice"], ["tr/crisis_menu"]]
        await caller.command("send_dtmf", leg=leg, digits="2", method="rfc2833")

        incoming = await team.wait_for("leg.incoming", timeout=10)
        assert incoming["headers"]["x-cti-call-id"] == call_id
        team_leg = incoming["leg"]
        await team.command("answer", leg=team_leg, code=200)
        done = await bus_event(gw, "call.transferred")
        assert done["call_id"] == call_id and done["data"]["target"] == "crisis_team"
        await team.wait_for("leg.media", leg=team_leg, active=True)

        heard_by_caller, heard_by_team = await hear_each_other(
            tmp_path, caller, leg, team, team_leg, "transferred")
        assert tone_present(heard_by_caller, team_tone, min_seconds=1.0)
        assert tone_present(heard_by_team, caller_tone, min_seconds=1.0)

        await caller.command("hangup", leg=leg)
        await team.wait_for("leg.state", leg=team_leg, state="disconnected")
        ended = await bus_event(gw, "call.ended")
        assert ended["data"]["reason"] == "caller_hangup"

        record = gw.store.get_call(call_id)
        assert record.ivr_path == ["crisis_on:true", "by_country:TR", "menu:crisis_team",
                                   "crisis_team:crisis_team"]
        assert record.dialled == CRISIS_LINE


async def test_a_failed_transfer_falls_back_to_the_priority_queue(
    tmp_path: Path, short_prompts: Path,
) -> None:
    async with Phone(name="crisis") as team, \
            _gateway(tmp_path, short_prompts, team, crisis=False) as gw, \
            Phone(name="+34911234567") as caller:
        leg = await _dial_crisis_line(caller, gw)
        menu = await bus_event(gw, "ivr.prompt", node="menu")
        # No crisis, not Turkish: straight to the menu, in the guessed language.
        assert _prompts(gw, menu["call_id"]) == [["es/crisis_menu"]]
        await caller.command("send_dtmf", leg=leg, digits="2", method="rfc2833")
        incoming = await team.wait_for("leg.incoming", timeout=10)
        # While the crisis team's phone rings the caller hears the transfer prompt,
        # then music, not silence.
        heard = tmp_path / "while-ringing.wav"
        await caller.command("record_start", leg=leg, file=str(heard))
        await wait_recorded(heard, 2.0)
        await caller.command("record_stop", leg=leg)
        await wait_file_final(heard)
        samples, rate = read_wav(heard)
        last_second = samples[-rate:]
        assert float(np.sqrt(np.mean(last_second ** 2))) > 100, "silence while ringing"
        await team.command("hangup", leg=incoming["leg"], code=486)  # busy

        failed = await bus_event(gw, "call.transfer_failed")
        assert failed["data"]["code"] == 486
        queued = await bus_event(gw, "call.queued")
        assert (queued["data"]["topic"], queued["data"]["priority"]) == ("emergency", 40)
        done = await bus_event(gw, "ivr.done")
        assert done["data"]["ivr_path"] == ["crisis_on:false", "by_country:ES->default",
                                            "menu:crisis_team", "crisis_team:crisis_team",
                                            "crisis_team:failed"]
        assert caller.received("leg.state", leg=leg, state="disconnected") == []


async def test_a_supervisor_switches_the_crisis_flag_live(
    tmp_path: Path, short_prompts: Path,
) -> None:
    async with Phone(name="crisis") as team, \
            _gateway(tmp_path, short_prompts, team, crisis=False) as gw, \
            Phone(name="+442071234567") as caller:
        base = f"http://{gw.settings.http.host}:{gw.settings.http.port}"
        async with httpx.AsyncClient(base_url=base) as http:
            async def token(user: str) -> str:
                r = await http.post("/api/v1/login",
                                    json={"username": user, "password": f"demo-{user}"})
                return r.json()["token"]

            sofia = {"Authorization": f"Bearer {await token('sofia')}"}
            nadia = {"Authorization": f"Bearer {await token('nadia')}"}
            r = await http.put("/api/v1/ivr/flags/crisis", json={"value": True}, headers=sofia)
            assert r.status_code == 403  # advisors cannot switch the crisis flag
            r = await http.put("/api/v1/ivr/flags/crisis", json={"value": "yes please"},
                               headers=nadia)
            assert r.status_code == 422
            r = await http.put("/api/v1/ivr/flags/crisis", json={"value": True}, headers=nadia)
            assert r.json() == {"crisis": True}
        flag = await bus_event(gw, "ivr.flag")
        assert flag["data"] == {"name": "crisis", "value": True, "by": "nadia"}
        await _dial_crisis_line(caller, gw)
        first = await bus_event(gw, "ivr.prompt")
        assert first["data"]["prompts"] == ["en/crisis_notice"]

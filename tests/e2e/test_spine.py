"""The spine, end to end: caller → edge → worker → IVR → distributor → advisor."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.audio import audio_rms, tone_present, wait_file_final, wait_recorded, write_tone
from tests.e2e.gateway_harness import Advisor, call_hotline, running_gateway
from tests.peers.phone import Phone

pytestmark = pytest.mark.e2e

SPANISH_CALLER = "+34911234567"


async def test_spanish_visa_caller_reaches_sofia_with_audio_both_ways(tmp_path: Path) -> None:
    caller_tone, advisor_tone = 440.0, 1000.0
    write_tone(tmp_path / "caller.wav", caller_tone, 30)
    write_tone(tmp_path / "advisor.wav", advisor_tone, 30)
    async with running_gateway(tmp_path) as gw, \
            Advisor(gw, "sofia") as sofia, Advisor(gw, "michel") as michel, \
            Phone(name=SPANISH_CALLER) as caller:
        await michel.set_state("available")
        await sofia.set_state("available")
        leg = await call_hotline(caller, gw, "32")

        # Sofia's client gets the screen pop before her phone sees the INVITE.
        offered = await sofia.stream.wait_for("call.offered", timeout=20)
        pop = offered["data"]
        call_id = offered["call_id"]
        who = pop["caller"]
        assert (who["number"], who["country"], who["timezone"]) == (
            SPANISH_CALLER, "ES", "Europe/Madrid")
        assert who["local_time"].endswith(("+01:00", "+02:00"))  # the caller's clock
        assert (pop["language"], pop["topic"]) == ("es", "visa")
        assert pop["ivr_path"] == ["hours:open", "lang:es", "topic:visa"]  # how the caller got here
        assert pop["waited_s"] >= 0
        incoming = await sofia.phone.wait_for("leg.incoming", timeout=10)
        assert offered["ts"] <= incoming["ts"]
        assert incoming["headers"]["x-cti-call-id"] == call_id
        assert not [e for e in michel.stream.events if e["type"] == "call.offered"]

        adv_leg = incoming["leg"]
        await sofia.phone.command("answer", leg=adv_leg, code=200)
        await sofia.stream.wait_for("call.connected", call_id=call_id)
        await sofia.phone.wait_for("leg.media", leg=adv_leg, active=True)

        # Audio both ways: each side plays its tone and records what it hears.
        await caller.command("play", leg=leg, file=str(tmp_path / "caller.wav"),
                             loop=True, play_id="t")
        await sofia.phone.command("play", leg=adv_leg, file=str(tmp_path / "advisor.wav"),
                                  loop=True, play_id="t")
        heard_by_caller, heard_by_sofia = tmp_path / "caller-rx.wav", tmp_path / "sofia-rx.wav"
        await caller.command("record_start", leg=leg, file=str(heard_by_caller))
        await sofia.phone.command("record_start", leg=adv_leg, file=str(heard_by_sofia))
        await wait_recorded(heard_by_caller, 2.5)
        await wait_recorded(heard_by_sofia, 2.5)
        await caller.command("record_stop", leg=leg)
        await sofia.phone.command("record_stop", leg=adv_leg)

        # The caller hangs up; both legs end.
        await caller.command("hangup", leg=leg)
        await sofia.phone.wait_for("leg.state", leg=adv_leg, state="disconnected")
        ended = await sofia.stream.wait_for("call.ended", call_id=call_id)
        assert ended["data"]["reason"] == "caller_hangup"
        await wait_file_final(heard_by_caller)
        await wait_file_final(heard_by_sofia)

        assert tone_present(heard_by_caller, advisor_tone, min_seconds=1.5)
        assert tone_present(heard_by_sofia, caller_tone, min_seconds=1.5)
        assert not tone_present(heard_by_sofia, advisor_tone, min_seconds=0.2)

        row = sqlite3.connect(gw.store.path).execute(
            "SELECT advisor, language, topic, end_reason, caller_country FROM calls "
            "WHERE call_id = ?", (call_id,)).fetchone()
        assert row == ("sofia", "es", "visa", "caller_hangup", "ES")
        detail = (await sofia.http.get(f"/api/v1/calls/{call_id}",
                                       headers={"Authorization": f"Bearer {sofia.token}"})).json()
        assert detail["record"]["advisor"] == "sofia"
        assert [(o["advisor"], o["outcome"]) for o in detail["offers"]] == [("sofia", "accepted")]
        other = await michel.http.get(f"/api/v1/calls/{call_id}",
                                      headers={"Authorization": f"Bearer {michel.token}"})
        assert other.status_code == 404  # an advisor sees only their own calls


async def test_advisor_hangup_ends_the_caller_leg(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw, Advisor(gw, "emre") as emre, \
            Phone(name="+905321234567") as caller:
        await emre.set_state("available")
        leg = await call_hotline(caller, gw, "41")
        incoming = await emre.phone.wait_for("leg.incoming", timeout=20)
        await emre.phone.command("answer", leg=incoming["leg"], code=200)
        connected = await emre.stream.wait_for("call.connected")
        await emre.phone.command("hangup", leg=incoming["leg"])
        await caller.wait_for("leg.state", leg=leg, state="disconnected", timeout=10)
        ended = await emre.stream.wait_for("call.ended", call_id=connected["call_id"])
        assert ended["data"]["reason"] == "advisor_hangup"
        agent = await emre.stream.wait_for("agent.state", state="available")
        assert agent["advisor"] == "emre"


async def test_caller_waits_with_music_until_a_matching_advisor_is_available(
    tmp_path: Path,
) -> None:
    async with running_gateway(tmp_path) as gw, Advisor(gw, "emre") as emre, \
            Advisor(gw, "sofia") as sofia, Phone(name="+905321234567") as caller:
        await sofia.set_state("available")  # Spanish/English, no Turkish: not eligible
        leg = await call_hotline(caller, gw, "42")  # Türkçe, visa
        heard = tmp_path / "waiting.wav"
        await caller.command("record_start", leg=leg, file=str(heard))
        await wait_recorded(heard, 2.0)
        assert gw.flow.distributor.waiting_calls(), "the call should be waiting"
        assert not [e for e in sofia.stream.events if e["type"] == "call.offered"]

        await emre.set_state("available")
        offered = await emre.stream.wait_for("call.offered", timeout=10)
        assert offered["data"]["language"] == "tr"
        incoming = await emre.phone.wait_for("leg.incoming", timeout=10)
        await emre.phone.command("answer", leg=incoming["leg"], code=200)
        await emre.stream.wait_for("call.connected", call_id=offered["call_id"])
        await caller.command("record_stop", leg=leg)
        await caller.command("hangup", leg=leg)
        await emre.stream.wait_for("call.ended", call_id=offered["call_id"])
        await wait_file_final(heard)
        assert audio_rms(heard) > 100, "the waiting caller heard silence, not music"

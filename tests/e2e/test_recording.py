"""Recording end to end (issue 11, acceptance 1-3): a real call through the edge and
a pjsua2 worker, with the recording plugin enabled.

1. The caller hears the consent announcement before the advisor; both voices are
   in one stereo file (caller 400 Hz left, advisor 1 kHz right); its duration
   matches the talk; the index row and ``recording.done`` match the file.
2. The advisor pauses for two seconds: silence in both channels, listed in the index.
3. A caller who presses 9 during the consent: no file; the index says declined,
   and so does the advisor's screen pop.
4. In ``cti softphone`` the advisor pauses and resumes with ``r``; the call line says so.
"""

from __future__ import annotations

import asyncio
import hashlib
import stat
from pathlib import Path
from typing import Any

import pytest

from cti.softphone.app import SoftphoneApp
from tests.audio import (
    RMS_FLOOR,
    split_channels,
    stretch_rms,
    tone_first_at,
    tone_seconds,
    write_tone,
)
from tests.e2e.gateway_harness import (
    REPO,
    Advisor,
    bus_event,
    call_hotline,
    running_gateway,
)
from tests.e2e.test_softphone import softphone_for, text
from tests.peers.phone import Phone

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

CALLER_HZ, ADVISOR_HZ, CONSENT_HZ = 400, 1000, 600  # short_prompts: 600 Hz, 0.3 s
CALLER = "+442079460555"
EDGE_S = 0.3  # audio edges around a pause: jitter buffer and bridge latency


def settings(tmp: Path, short_prompts: Path) -> dict[str, Any]:
    return {"plugins": {"recording": {"directory": str(tmp / "recordings"),
                                      "retention_days": {"default": 30}}},
            "prompts": {"texts": str(REPO / "config" / "prompts.yaml"),
                        "cache_dir": str(REPO / "var" / "prompts"),
                        "override_dir": str(short_prompts)}}


async def test_a_recorded_call_with_consent_and_a_pause(tmp_path: Path,
                                                        short_prompts: Path) -> None:
    low = write_tone(tmp_path / "400.wav", CALLER_HZ, 1.0)
    high = write_tone(tmp_path / "1k.wav", ADVISOR_HZ, 1.0)
    heard = tmp_path / "caller-heard.wav"
    async with running_gateway(tmp_path, **settings(tmp_path, short_prompts)) as gw, \
            Advisor(gw, "sofia") as sofia, Phone(name=CALLER) as caller:
        await sofia.set_state("available")
        leg = await call_hotline(caller, gw)
        await caller.command("record_start", leg=leg, file=str(heard))  # what they hear
        for d in "22":  # English, visa
            await caller.command("send_dtmf", leg=leg, digits=d, method="rfc2833")
        ring = await sofia.phone.wait_for("leg.incoming", timeout=20)
        call_id = ring["headers"]["x-cti-call-id"]
        await sofia.phone.command("answer", leg=ring["leg"], code=200)
        consent = await bus_event(gw, "ivr.prompt", kind="announcement")
        assert consent["call_id"] == call_id
        assert consent["data"]["prompts"] == ["en/recording.consent"]
        bridged = await bus_event(gw, "call.bridged")  # after the consent has played
        assert bridged["call_id"] == call_id and bridged["data"]["greeted"] is True
        started = await bus_event(gw, "call.recording", state="started")
        await caller.command("play", leg=leg, file=str(low), loop=True)
        await sofia.phone.command("play", leg=ring["leg"], file=str(high), loop=True)
        loop = asyncio.get_running_loop()
        talk_from = loop.time()
        auth = {"Authorization": f"Bearer {sofia.token}"}
        base = f"/api/v1/calls/{call_id}"
        assert (await sofia.http.get(base, headers=auth)).json()["active"]["recording"] \
            == "recording"
        # Sleeps below: the seconds of talk (and of pause) are what is being produced.
        await asyncio.sleep(1.5)
        r = await sofia.http.post(f"{base}/recording", headers=auth, json={"paused": True})
        assert r.status_code == 200 and r.json() == {"state": "paused"}
        login = await sofia.http.post("/api/v1/login", json={"username": "michel",
                                                             "password": "demo-michel"})
        michel = {"Authorization": f"Bearer {login.json()['token']}"}
        r = await sofia.http.post(f"{base}/recording", headers=michel, json={"paused": False})
        assert r.status_code == 404  # not his call: as if it did not exist
        await bus_event(gw, "recording.state", state="paused")
        await asyncio.sleep(2.0)
        r = await sofia.http.post(f"{base}/recording", headers=auth, json={"paused": False})
        assert r.json() == {"state": "recording"}
        await asyncio.sleep(1.5)
        await caller.command("record_stop", leg=leg)
        await caller.command("hangup", leg=leg)
        talk_s = loop.time() - talk_from
        done = await bus_event(gw, "recording.done", timeout=20)
        recorder_done = await bus_event(gw, "call.recording", state="done")
        assert recorder_done["data"]["rec_id"] == started["data"]["rec_id"]
        store = gw.plugin_services["recording"].store
        [row] = store.query(f"SELECT * FROM {store.prefix}recordings")

    path = Path(done["data"]["path"])
    data = path.read_bytes()
    assert done["call_id"] == call_id and done["data"]["recording_id"] == row["recording_id"]
    assert done["data"]["sha256"] == row["sha256"] == hashlib.sha256(data).hexdigest()
    assert done["data"]["size"] == row["size"] == len(data)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (row["status"], row["consent"], row["topic"], row["caller_number"]) == (
        "done", "announced", "visa", CALLER)
    assert row["advisors"] == '["sofia"]'
    assert abs(done["data"]["duration_s"] - talk_s) < 1.0, (done["data"], talk_s)
    assert tmp_path / "recordings" in path.parents

    # 1. the consent before the advisor's voice, in what the caller heard
    consent_at, advisor_at = tone_first_at(heard, CONSENT_HZ), tone_first_at(heard, ADVISOR_HZ)
    assert consent_at is not None and advisor_at is not None and consent_at < advisor_at
    left, right = split_channels(path, tmp_path)
    assert tone_seconds(left, CALLER_HZ) >= 2.0 and tone_seconds(left, ADVISOR_HZ) < 0.2
    assert tone_seconds(right, ADVISOR_HZ) >= 2.0 and tone_seconds(right, CALLER_HZ) < 0.2
    # 2. the pause: silence in both channels, listed in the index
    [[p_start, p_end]] = done["data"]["paused"]
    assert row["paused"] == f"[[{p_start}, {p_end}]]"
    assert 1.7 <= p_end - p_start <= 2.6, done["data"]["paused"]
    for channel in (left, right):
        assert stretch_rms(channel, p_start + EDGE_S, p_end - EDGE_S) < RMS_FLOOR / 10
        assert stretch_rms(channel, max(0.0, p_start - 1.0), p_start - EDGE_S) > RMS_FLOOR


async def test_a_caller_who_declines_is_not_recorded(tmp_path: Path,
                                                     short_prompts: Path) -> None:
    async with running_gateway(tmp_path, **settings(tmp_path, short_prompts)) as gw, \
            Advisor(gw, "sofia") as sofia, Phone(name=CALLER) as caller:
        leg = await call_hotline(caller, gw, "22")
        queued = await bus_event(gw, "call.queued")
        call_id = queued["call_id"]
        await bus_event(gw, "ivr.prompt", kind="announcement")  # the consent
        await caller.command("send_dtmf", leg=leg, digits="9", method="rfc2833")
        declined = await bus_event(gw, "ivr.prompt", kind="announcement", timeout=10,
                                   prompts=["en/recording.declined"])
        assert declined["call_id"] == call_id
        await sofia.set_state("available")
        ring = await sofia.phone.wait_for("leg.incoming", timeout=20)
        offered = await bus_event(gw, "call.offered")  # the advisor sees it is not recorded
        assert offered["data"]["flags"]["recording"] == "declined"
        await sofia.phone.command("answer", leg=ring["leg"], code=200)
        await bus_event(gw, "call.bridged")
        r = await sofia.http.post(f"/api/v1/calls/{offered['call_id']}/recording",
                                  headers={"Authorization": f"Bearer {sofia.token}"},
                                  json={"paused": True})
        assert r.status_code == 409 and r.json()["detail"] == "the call is not being recorded"
        await caller.command("hangup", leg=leg)
        await bus_event(gw, "call.ended")
        assert not [e for e in gw.bus.since(0) if e["type"] == "call.recording"]
        store = gw.plugin_services["recording"].store
        [row] = store.query(f"SELECT * FROM {store.prefix}recordings")
    assert (row["call_id"], row["status"], row["consent"], row["path"]) == (
        call_id, "declined", "declined", None)
    assert not list((tmp_path / "recordings").rglob("*.wav"))


async def test_the_advisor_pauses_with_r_in_the_softphone(tmp_path: Path,
                                                          short_prompts: Path) -> None:
    async with running_gateway(tmp_path, **settings(tmp_path, short_prompts)) as gw:
        client = softphone_for(gw, "sofia", tmp_path)
        app = SoftphoneApp(client)
        try:
            async with app.run_test(size=(120, 40)) as pilot, Phone(name=CALLER) as caller:
                await client.wait_until(lambda s: s.registered and s.ws_connected, 30)
                await pilot.press("s")
                await pilot.click("#available")
                await client.wait_until(lambda s: s.advisor_state == "available")
                leg = await call_hotline(caller, gw, "22")
                await client.wait_until(
                    lambda s: s.call is not None and s.call.status == "ringing", 30)
                await pilot.press("a")
                started = await bus_event(gw, "call.recording", state="started")
                await client.wait_until(
                    lambda s: s.call is not None and s.call.recording == "recording")
                await pilot.pause()
                assert "|  recording  |" in text(app, "#call")

                await pilot.press("r")
                paused = await bus_event(gw, "call.recording", state="paused")
                assert paused["data"]["by"] == "sofia"
                await client.wait_until(
                    lambda s: s.call is not None and s.call.recording == "paused")
                await pilot.pause()
                assert "RECORDING PAUSED" in text(app, "#call")
                await pilot.press("r")
                await bus_event(gw, "call.recording", state="resumed")
                await client.wait_until(
                    lambda s: s.call is not None and s.call.recording == "recording")

                await caller.command("hangup", leg=leg)
                done = await bus_event(gw, "call.recording", state="done", timeout=20)
                assert done["data"]["rec_id"] == started["data"]["rec_id"]
                assert len(done["data"]["paused"]) == 1
        finally:
            await client.aclose()


TEAM_HZ = 700


async def test_the_recording_follows_a_consult_transfer(tmp_path: Path,
                                                        short_prompts: Path) -> None:
    """The consulted party joins the advisor's side and stays on it once the advisor
    has handed the caller over; the file ends with the caller's hang-up."""
    low = write_tone(tmp_path / "400.wav", CALLER_HZ, 1.0)
    high = write_tone(tmp_path / "1k.wav", ADVISOR_HZ, 1.0)
    mid = write_tone(tmp_path / "700.wav", TEAM_HZ, 1.0)
    async with Phone(name="crisis") as team, running_gateway(
            tmp_path, directory=[{"key": "crisis_team", "name": "Crisis team",
                                  "number": "+31703480000", "uri": team.uri("crisis")}],
            **settings(tmp_path, short_prompts)) as gw, \
            Advisor(gw, "sofia") as sofia, Phone(name=CALLER) as caller:
        await sofia.set_state("available")
        leg = await call_hotline(caller, gw, "22")
        ring = await sofia.phone.wait_for("leg.incoming", timeout=20)
        call_id = ring["headers"]["x-cti-call-id"]
        await sofia.phone.command("answer", leg=ring["leg"], code=200)
        await bus_event(gw, "call.recording", state="started")
        await caller.command("play", leg=leg, file=str(low), loop=True)
        await sofia.phone.command("play", leg=ring["leg"], file=str(high), loop=True)
        await asyncio.sleep(1.0)  # a second of talk before the consult
        gw.flow.transfer_call(call_id, "sofia", "consult", "external", "crisis_team")
        consult = await sofia.phone.wait_for("leg.incoming", timeout=15)
        await sofia.phone.command("answer", leg=consult["leg"], code=200)
        team_call = await team.wait_for("leg.incoming", timeout=15)
        await team.command("answer", leg=team_call["leg"], code=200)
        await team.wait_for("leg.media", leg=team_call["leg"], active=True)
        await team.command("play", leg=team_call["leg"], file=str(mid), loop=True)
        await bus_event(gw, "call.consult", state="talking")
        gw.flow.consult_complete(call_id, "sofia")
        await bus_event(gw, "call.transferred")
        await sofia.phone.wait_for("leg.state", leg=ring["leg"], state="disconnected")
        await asyncio.sleep(2.0)  # the caller and the team talk: what is recorded
        await caller.command("hangup", leg=leg)
        done = await bus_event(gw, "recording.done", timeout=20)
    path = Path(done["data"]["path"])
    left, right = split_channels(path, tmp_path)
    assert tone_seconds(right, TEAM_HZ) >= 1.5, tone_seconds(right, TEAM_HZ)
    assert tone_seconds(right, ADVISOR_HZ) >= 0.5
    assert tone_seconds(left, CALLER_HZ) >= 2.5 and tone_seconds(left, TEAM_HZ) < 0.2

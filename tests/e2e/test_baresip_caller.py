"""The spine with a real third-party SIP client as the caller: baresip.

A Spanish caller (baresip, sip:+34911234567@127.0.0.1) dials the hotline and
presses 3 (Español) then 2 (visa) as RFC 2833 events; sofia (cti's scripted
phone) gets the screen pop, answers, and both sides hear each other's tone.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from tests.audio import (
    RMS_FLOOR,
    TOLERANCE,
    WINDOW_S,
    dominant_frequency,
    tone_present,
    wait_file_final,
    wait_recorded,
    write_tone,
)
from tests.e2e.gateway_harness import Advisor, hotline_uri, running_gateway
from tests.peers.baresip import Baresip, read_wav_lenient

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

SPANISH_CALLER = "+34911234567"
CALLER_TONE, SOFIA_TONE = 440.0, 1000.0


def _tone_seconds(path: Path, freq_hz: float) -> float:
    """Seconds of `freq_hz` in a WAV that baresip may still be writing."""
    rate, pcm = read_wav_lenient(path)
    samples = np.frombuffer(pcm, "<i2").astype(np.float64)
    size = int(rate * WINDOW_S)
    hits = 0
    for start in range(0, len(samples) - size + 1, size):
        win = samples[start:start + size]
        if np.sqrt(np.mean(win**2)) >= RMS_FLOOR and \
                abs(dominant_frequency(win, rate) - freq_hz) <= TOLERANCE * freq_hz:
            hits += 1
    return hits * WINDOW_S


async def _caller_hears(caller: Baresip, freq_hz: float, seconds: float,
                        timeout: float = 10) -> Path:
    """Wait until baresip's received audio (…-dec.wav) holds `seconds` of `freq_hz`."""
    deadline = time.monotonic() + timeout
    heard = 0.0
    while time.monotonic() < deadline:
        path = caller.received_wav()
        if path is not None and path.stat().st_size > 44:
            heard = _tone_seconds(path, freq_hz)
            if heard >= seconds:
                return path
        await asyncio.sleep(0.1)
    raise AssertionError(f"the caller heard {heard:.1f}s of {freq_hz} Hz, wanted {seconds}s "
                         f"(file {caller.received_wav()})")


async def test_baresip_caller_reaches_sofia_with_audio_both_ways(tmp_path: Path) -> None:
    caller_wav = write_tone(tmp_path / "caller.wav", CALLER_TONE, 60)  # 8 kHz mono
    sofia_wav = write_tone(tmp_path / "sofia.wav", SOFIA_TONE, 60)
    async with running_gateway(tmp_path) as gw, Advisor(gw, "sofia") as sofia, \
            Baresip(tmp_path, caller_wav, name=SPANISH_CALLER) as caller:
        assert sofia.stream is not None
        assert caller.account.startswith(f"<sip:{SPANISH_CALLER}@127.0.0.1>")
        await sofia.set_state("available")

        await caller.dial(hotline_uri(gw))
        await caller.wait_event("CALL_ESTABLISHED", timeout=10)
        for digit in "32":  # Español, visa; barge-in: the welcome may still be playing
            await caller.send_digits(digit)

        # The screen pop, before the phone rings.
        offered = await sofia.stream.wait_for("call.offered", timeout=20)
        call_id = offered["call_id"]
        pop = offered["data"]
        assert (pop["language"], pop["topic"]) == ("es", "visa")
        who = pop["caller"]
        assert (who["number"], who["country"], who["timezone"]) == (
            SPANISH_CALLER, "ES", "Europe/Madrid")
        assert who["local_time"].endswith(("+01:00", "+02:00"))  # the caller's clock
        incoming = await sofia.phone.wait_for("leg.incoming", timeout=10)
        assert incoming["headers"]["x-cti-call-id"] == call_id
        leg = incoming["leg"]
        await sofia.phone.command("answer", leg=leg, code=200)
        await sofia.stream.wait_for("call.connected", call_id=call_id)
        await sofia.phone.wait_for("leg.media", leg=leg, active=True)

        # Audio both ways: sofia plays her tone and records what she hears.
        await sofia.phone.command("play", leg=leg, file=str(sofia_wav), loop=True, play_id="t")
        heard_by_sofia = tmp_path / "sofia-rx.wav"
        await sofia.phone.command("record_start", leg=leg, file=str(heard_by_sofia))
        await wait_recorded(heard_by_sofia, 2.5)
        await sofia.phone.command("record_stop", leg=leg)
        heard_by_caller = await _caller_hears(caller, SOFIA_TONE, 1.5)

        # The caller hangs up: the call ends everywhere.
        await caller.hangup()
        await caller.wait_event("CALL_CLOSED", timeout=10)
        ended = await sofia.stream.wait_for("call.ended", call_id=call_id)
        assert ended["data"]["reason"] == "caller_hangup"
        await sofia.phone.wait_for("leg.state", leg=leg, state="disconnected")

        await wait_file_final(heard_by_sofia)
        assert tone_present(heard_by_sofia, CALLER_TONE, min_seconds=1.5)
        assert not tone_present(heard_by_sofia, SOFIA_TONE, min_seconds=0.2), "echo"
        assert _tone_seconds(heard_by_caller, CALLER_TONE) < 0.2, "the caller hears itself"

        rec = gw.store.get_call(call_id)
        assert rec is not None
        assert (rec.advisor, rec.language, rec.topic, rec.end_reason) == (
            "sofia", "es", "visa", "caller_hangup")

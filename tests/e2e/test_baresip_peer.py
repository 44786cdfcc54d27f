"""The baresip test driver against a plain SIP endpoint (another baresip), no gateway."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.audio import write_tone
from tests.peers.baresip import Baresip, read_wav_lenient

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(60),
]


def peak_frequency(path: Path) -> float:
    rate, pcm = read_wav_lenient(path)
    x = np.frombuffer(pcm, "<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[spectrum.argmax()])


def assert_gone(pids: list[int]) -> None:
    """No process left in the process groups the drivers started."""
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)


async def test_call_digits_and_audio_both_ways(tmp_path: Path) -> None:
    a440, a660 = write_tone(tmp_path / "a440.wav", 440, 30), write_tone(tmp_path / "a660.wav", 660, 30)
    async with (
        Baresip(tmp_path, a660, "callee", answermode="auto") as callee,
        Baresip(tmp_path, a440, "caller") as caller,
    ):
        await caller.dial(callee.uri)
        up = await caller.wait_event("CALL_ESTABLISHED")
        assert up["peeruri"] == callee.uri
        assert (await callee.wait_event("CALL_ESTABLISHED"))["direction"] == "incoming"

        await caller.send_digits("19#*")
        got = [(await callee.wait_event("CALL_DTMF_START"))["param"] for _ in range(4)]
        assert got == ["1", "9", "#", "*"]

        heard_by_callee = await callee.wait_received_audio(1.5)
        heard_by_caller = await caller.wait_received_audio(1.5)
        await caller.hangup()
        await caller.wait_event("CALL_CLOSED")
        await callee.wait_event("CALL_CLOSED")
        pids = [caller.pid, callee.pid]

    assert peak_frequency(heard_by_callee) == pytest.approx(440, rel=0.03)
    assert peak_frequency(heard_by_caller) == pytest.approx(660, rel=0.03)
    assert callee.received_wav() == heard_by_callee
    assert_gone(pids)


async def test_manual_accept_and_callee_hangup(tmp_path: Path) -> None:
    src = write_tone(tmp_path / "a660.wav", 660, 30)
    async with (
        Baresip(tmp_path, src, "advisor") as callee,
        Baresip(tmp_path, src, "caller") as caller,
    ):
        assert callee.received_wav() is None
        await caller.dial(callee.uri)
        incoming = await callee.wait_event("CALL_INCOMING")
        assert incoming["peeruri"] == "sip:caller@127.0.0.1"
        await caller.wait_event("CALL_RINGING")
        await callee.accept()
        await caller.wait_event("CALL_ESTABLISHED")
        await callee.hangup()
        closed = await caller.wait_event("CALL_CLOSED")
        assert closed["id"] == incoming["id"]
    assert_gone([caller.pid, callee.pid])


async def test_process_group_killed_when_test_body_fails(tmp_path: Path) -> None:
    src = write_tone(tmp_path / "a.wav", 660, seconds=5)
    with pytest.raises(RuntimeError, match="boom"):
        async with Baresip(tmp_path, src, "caller") as caller:
            pid = caller.pid
            raise RuntimeError("boom")
    assert_gone([pid])
    with pytest.raises(TimeoutError, match="no CALL_CLOSED"):
        async with Baresip(tmp_path, src, "caller") as caller:
            await caller.wait_event("CALL_CLOSED", timeout=0.2)

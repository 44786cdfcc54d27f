"""A media engine records both voices of a bridged call into one stereo WAV.

Three real cti.media.phone processes on loopback, as in test_media_engine:
alice (the caller) -> bob <- carol (the advisor); bob bridges his two legs, as a
worker bridges a customer to an advisor, and records the call: left = what
alice sends (400 Hz), right = what carol sends (1 kHz).
"""

from __future__ import annotations

import asyncio
import hashlib
import stat
from pathlib import Path

import pytest

from tests.audio import RMS_FLOOR, split_channels, stretch_rms, tone_seconds, write_tone
from tests.e2e.test_media_engine import connect
from tests.peers.phone import Phone

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

CALLER_HZ, ADVISOR_HZ = 400, 1000
EDGE_S = 0.2  # audio edges: jitter buffer and bridge latency around a pause


async def test_stereo_recording_with_pause_and_hangup(tmp_path: Path) -> None:
    low = write_tone(tmp_path / "400.wav", CALLER_HZ, 1.0)
    high = write_tone(tmp_path / "1k.wav", ADVISOR_HZ, 1.0)
    path = tmp_path / "call.wav"
    async with Phone(name="alice") as a, Phone(name="bob") as b, Phone(name="carol") as c:
        b1 = (await connect(a, b, "a1"))["leg"]
        await connect(b, c, "b2")
        c1 = c.received("leg.incoming")[0]["leg"]
        await b.command("bridge", a=b1, b="b2")
        await a.command("play", leg="a1", file=str(low), loop=True)
        await c.command("play", leg=c1, file=str(high), loop=True)

        await b.command("record_start", rec_id="r1", left_leg=b1, right_leg="b2", path=str(path))
        # Sleeps below: the seconds of audio (and of pause) are what is being produced.
        await asyncio.sleep(1.5)
        await b.command("record_pause", rec_id="r1")
        await asyncio.sleep(2.0)
        await b.command("record_resume", rec_id="r1")
        await asyncio.sleep(1.5)
        await b.command("record_stop", rec_id="r1")
        done = await b.wait_for("record.done", rec_id="r1", timeout=10)
        again = await b.command("record_stop", rec_id="r1", check=False)
        assert again["ok"] is False and again["error"] == "unknown recording"

        # a leg that hangs up while recorded: the file is finished, the engine lives
        path2 = tmp_path / "cut.wav"
        await b.command("record_start", rec_id="r2", left_leg=b1, right_leg="b2", path=str(path2))
        await asyncio.sleep(0.5)  # some audio to record
        await a.command("hangup", leg="a1")
        await b.wait_for("leg.state", leg=b1, state="disconnected")
        done2 = await b.wait_for("record.done", rec_id="r2", timeout=10)
        assert (await b.command("hangup", leg="b2"))["ok"]
        await c.wait_for("leg.state", leg=c1, state="disconnected")
        assert b.alive
    assert not b.received("record.failed")

    data = path.read_bytes()
    assert done["path"] == str(path) and done["size"] == len(data)
    assert done["sha256"] == hashlib.sha256(data).hexdigest()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(tmp_path.glob("call.wav.*")), "mono parts left behind"
    assert 4.5 <= done["duration_s"] <= 6.0, done

    [[p_start, p_end]] = done["paused"]
    assert 1.8 <= p_end - p_start <= 2.5, done["paused"]
    left, right = split_channels(path, tmp_path)
    print("left", tone_seconds(left, CALLER_HZ), tone_seconds(left, ADVISOR_HZ),
          "right", tone_seconds(right, ADVISOR_HZ), tone_seconds(right, CALLER_HZ), done)
    assert tone_seconds(left, CALLER_HZ) >= 2.0, tone_seconds(left, CALLER_HZ)
    assert tone_seconds(right, ADVISOR_HZ) >= 2.0, tone_seconds(right, ADVISOR_HZ)
    assert tone_seconds(left, ADVISOR_HZ) < 0.2
    assert tone_seconds(right, CALLER_HZ) < 0.2
    for channel in (left, right):  # the paused stretch is silence in both channels
        assert stretch_rms(channel, p_start + EDGE_S, p_end - EDGE_S) < RMS_FLOOR / 10
        assert stretch_rms(channel, 0.3, p_start - EDGE_S) > RMS_FLOOR  # audio around it
        assert stretch_rms(channel, p_end + EDGE_S, p_end + 1.2) > RMS_FLOOR

    data2 = path2.read_bytes()
    assert done2["size"] == len(data2) and done2["sha256"] == hashlib.sha256(data2).hexdigest()
    assert done2["paused"] == [] and stat.S_IMODE(path2.stat().st_mode) == 0o600


async def test_engine_shutdown_while_recording_finishes_the_file(tmp_path: Path) -> None:
    tone = write_tone(tmp_path / "400.wav", CALLER_HZ, 1.0)
    path = tmp_path / "shut.wav"
    async with Phone(name="alice") as a, Phone(name="carol") as c:
        b = Phone(name="bob")
        await b.start()
        try:
            b1 = (await connect(a, b, "a1"))["leg"]
            await connect(b, c, "b2")
            await a.command("play", leg="a1", file=str(tone), loop=True)
            bad = await b.command("record_start", rec_id="x", left_leg=b1, right_leg=b1,
                                  path=str(path), check=False)
            assert bad["ok"] is False
            nowhere = await b.command("record_start", rec_id="y", left_leg=b1, right_leg="b2",
                                      path=str(tmp_path / "no" / "such.wav"), check=False)
            assert nowhere["ok"] is False and "cannot write" in nowhere["error"], nowhere
            missing = await b.command("record_pause", rec_id="nope", check=False)
            assert missing["error"] == "unknown recording"
            await b.command("record_start", rec_id="r1", left_leg=b1, right_leg="b2", path=str(path))
            await asyncio.sleep(1.0)  # a second of audio to record
        finally:
            await b.stop()  # shutdown: hangs up both legs, which ends the recording
        assert b.ready and b._proc is not None and b._proc.returncode == 0
    done = b.received("record.done", rec_id="r1")
    assert done, b.events[-10:]
    assert done[0]["size"] == path.stat().st_size and stat.S_IMODE(path.stat().st_mode) == 0o600
    left, _ = split_channels(path, tmp_path)
    assert tone_seconds(left, CALLER_HZ) >= 0.7

"""A paced engine (the media worker's loop, cti/media/pacing.py) keeps DTMF and prompts right.

Real cti.media.phone processes on loopback: bob runs as a worker does (his main
thread clocks the bridge, 2 frames every 40 ms, no clock thread), alice as before.
Audio both ways: tests/e2e/test_media_engine.py::test_audio_both_ways[paced].
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.audio import write_tone
from tests.e2e.test_media_engine import connect
from tests.peers.phone import Phone

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


def _threads(phone: Phone) -> list[str]:
    assert phone._proc is not None
    tasks = Path(f"/proc/{phone._proc.pid}/task")
    return [(t / "comm").read_text().strip() for t in tasks.iterdir()]


async def test_paced_engine_dtmf_both_ways_and_no_clock_thread() -> None:
    async with Phone(name="alice") as a, Phone(name="bob", paced=True) as b:
        assert "bridge paced by the main thread" in b.stderr_path.read_text()
        inc = await connect(a, b, "a1")
        leg_b = inc["leg"]
        assert "clock" not in _threads(b)  # the bridge has no thread of its own
        await a.command("send_dtmf", leg="a1", digits="12")
        await b.wait_for("leg.dtmf", leg=leg_b, digit="2")
        # bob's digits go out in the frames his main thread clocks
        await b.command("send_dtmf", leg=leg_b, digits="#5")
        await a.wait_for("leg.dtmf", leg="a1", digit="5")
        await a.command("hangup", leg="a1")
        await b.wait_for("leg.state", leg=leg_b, state="disconnected")
    assert [e["digit"] for e in b.received("leg.dtmf", leg=leg_b)] == ["1", "2"]
    assert [e["digit"] for e in a.received("leg.dtmf", leg="a1")] == ["#", "5"]


async def test_paced_engine_plays_a_prompt_to_its_end_and_takes_a_second_call(
        tmp_path: Path) -> None:
    prompt = write_tone(tmp_path / "prompt.wav", 440, 0.4)
    async with Phone(name="alice") as a, Phone(name="bob", paced=True) as b:
        for n in (1, 2):  # a second call on the same engine: the bridge clocked again
            inc = await connect(a, b, f"a{n}")
            await b.command("play", leg=inc["leg"], file=str(prompt), play_id=f"p{n}")
            done = await b.wait_for("play.done", leg=inc["leg"])
            assert done["play_id"] == f"p{n}"
            await a.command("hangup", leg=f"a{n}")
            await b.wait_for("leg.state", leg=inc["leg"], state="disconnected")

"""The spine with a real third-party SIP client as the caller: baresip."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.audio import tone_present, wait_file_final, wait_recorded, write_tone
from tests.e2e.gateway_harness import Advisor, hotline_uri, running_gateway
from tests.peers.baresip import Baresip

pytestmark = pytest.mark.e2e


async def test_baresip_caller_reaches_sofia_with_audio_both_ways(tmp_path: Path) -> None:
    caller_wav = write_tone(tmp_path / "caller.wav", 440, 60)
    sofia_wav = write_tone(tmp_path / "sofia.wav", 1000, 60)
    async with running_gateway(tmp_path) as gw, Advisor(gw, "sofia") as sofia, \
            Baresip(tmp_path, caller_wav, name="+34911234567") as caller:
        await sofia.set_state("available")
        await caller.dial(hotline_uri(gw))
        await caller.wait_event("CALL_ESTABLISHED", timeout=10)
        for digit in "32":  # Español, visa (barge-in: the welcome may still play)
            await caller.send_digits(digit)

        offered = await sofia.stream.wait_for("call.offered", timeout=20)
        pop = offered["data"]
        assert (pop["language"], pop["topic"]) == ("es", "visa")
        assert pop["caller"] == {"number": "+34911234567", "country": "ES"}
        incoming = await sofia.phone.wait_for("leg.incoming", timeout=10)
        leg = incoming["leg"]
        await sofia.phone.command("answer", leg=leg, code=200)
        await sofia.stream.wait_for("call.connected", call_id=offered["call_id"])
        await sofia.phone.wait_for("leg.media", leg=leg, active=True)

        await sofia.phone.command("play", leg=leg, file=str(sofia_wav), loop=True, play_id="t")
        heard_by_sofia = tmp_path / "sofia-rx.wav"
        await sofia.phone.command("record_start", leg=leg, file=str(heard_by_sofia))
        await wait_recorded(heard_by_sofia, 2.5)
        await sofia.phone.command("record_stop", leg=leg)

        await caller.hangup()
        await caller.wait_event("CALL_CLOSED", timeout=10)
        ended = await sofia.stream.wait_for("call.ended", call_id=offered["call_id"])
        assert ended["data"]["reason"] == "caller_hangup"
        await sofia.phone.wait_for("leg.state", leg=leg, state="disconnected")

        await wait_file_final(heard_by_sofia)
        assert tone_present(heard_by_sofia, 440, min_seconds=1.5)
        heard_by_caller = caller.received_wav()
        assert heard_by_caller is not None
        assert tone_present(heard_by_caller, 1000, min_seconds=1.5)
        rec = gw.store.get_call(offered["call_id"])
        assert rec is not None and rec.advisor == "sofia" and rec.end_reason == "caller_hangup"

"""A real call's audio quality: the media workers' RTP figures of both legs reach
the call's record, the records API and /metrics, with no loss on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.audio import write_tone
from tests.e2e.gateway_harness import Advisor, call_hotline, hear_each_other, running_gateway, until
from tests.peers.phone import Phone

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


def leg_figures(gw: Any, call_id: str) -> dict[str, dict[str, Any]]:
    rec = gw.store.get_call(call_id)
    return {leg["role"]: leg["quality"] for leg in rec.legs if leg.get("quality")} if rec else {}


async def test_a_talk_has_both_legs_figures_with_no_loss(tmp_path: Path) -> None:
    write_tone(tmp_path / "caller.wav", 440.0, 30)
    write_tone(tmp_path / "team.wav", 1000.0, 30)
    async with running_gateway(tmp_path) as gw, Advisor(gw, "sofia") as sofia, \
            Phone(name="+34911234567") as caller:
        assert sofia.stream is not None
        await sofia.set_state("available")
        leg = await call_hotline(caller, gw, "32")
        offered = await sofia.stream.wait_for("call.offered", timeout=20)
        call_id = offered["call_id"]
        incoming = await sofia.phone.wait_for("leg.incoming", timeout=10)
        adv_leg = incoming["leg"]
        await sofia.phone.command("answer", leg=adv_leg, code=200)
        await sofia.phone.wait_for("leg.media", leg=adv_leg, active=True)
        await hear_each_other(tmp_path, caller, leg, sofia.phone, adv_leg, "talk")

        await caller.command("hangup", leg=leg)
        mine = await caller.wait_for("leg.state", leg=leg, state="disconnected")
        await sofia.stream.wait_for("call.ended", call_id=call_id)
        # The advisor's leg ends after the call (the controller hangs it up): its
        # figures are added to the record when its worker reports them.
        await until(lambda: len(leg_figures(gw, call_id)) == 2)

        figures = leg_figures(gw, call_id)
        for role in ("customer", "advisor"):
            q = figures[role]
            # 2 s of each side's tone at least, at 50 packets a second
            assert q["rx_packets"] >= 100 and q["tx_packets"] >= 100, (role, q)
            assert (q["rx_lost"], q["loss_pct"]) == (0, 0.0), (role, q)
            assert q["jitter_ms"] >= 0 and q["streams"] >= 1, (role, q)
        # the caller's own phone (the same engine) measured the worker's stream
        assert mine["quality"]["rx_packets"] >= 100 and mine["quality"]["rx_lost"] == 0
        assert not [e for e in gw.bus.since(0) if e["type"] == "call.quality"]

        headers = {"Authorization": f"Bearer {sofia.token}"}
        [row] = (await sofia.http.get("/api/v1/agents/me/history", headers=headers)).json()
        assert row["call_id"] == call_id and row["worst_loss_pct"] == 0.0
        assert row["worst_jitter_ms"] == max(q["jitter_ms"] for q in figures.values())
        metrics = (await sofia.http.get("/metrics")).text
        assert 'cti_rtp_loss_percent_count{role="customer"} 1' in metrics
        assert 'cti_rtp_loss_percent_bucket{role="advisor",le="0.1"} 1' in metrics
        assert 'cti_rtp_jitter_milliseconds_count{role="advisor"} 1' in metrics
        assert "cti_rtp_lossy_legs_total{" not in metrics

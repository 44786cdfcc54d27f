"""The legs' audio quality on the controller's side, without SIP: kept with the
call's legs (also for a leg that ends after its call), counted for /metrics, and a
warning event for a lossy line (cti/controller/quality.py)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from cti.controller.quality import Histogram, parse
from cti.store.reports import RecordQuery, Reports
from tests.unit.controller_fakes import Harness


def figures(received: int, lost: int, jitter_ms: float = 1.5, tx_loss_pct: float = 0.0
            ) -> dict[str, Any]:
    """A worker's quality field (docs/ipc.md), as cti/media/quality.py sends it."""
    return {"rx_packets": received, "rx_lost": lost,
            "rx_loss_pct": round(100 * lost / (received + lost), 2), "rx_jitter_ms": jitter_ms,
            "rx_jitter_max_ms": jitter_ms * 2, "rx_discard": 0, "rx_reorder": 0,
            "tx_packets": received, "tx_lost": 0, "tx_loss_pct": tx_loss_pct,
            "tx_jitter_ms": 0.0, "rtt_ms": 0.2, "jb_lost": lost, "streams": 1}


def ended(h: Harness, leg: str, quality: Any) -> None:
    h.send("w1", event="leg.state", leg=leg, state="disconnected", code=200,
           sip_call_id=f"sip-{leg}", quality=quality)


def metric(lines: list[str], prefix: str) -> float:
    return float(next(x for x in lines if x.startswith(prefix)).rsplit(" ", 1)[1])


async def test_a_talk_keeps_both_legs_figures_and_warns_of_the_lossy_one(
        h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    call_id, advisor_leg = await h.connected("sofia")
    caplog.set_level(logging.WARNING, "cti.flow")
    ended(h, "c1", figures(500, 0, jitter_ms=0.8))  # the caller hangs up: the call ends
    await h.settle()
    assert h.flow.calls.get(call_id) is None
    assert not h.of_type("call.quality")
    # The advisor's leg ends a moment later (the controller's hangup): its figures
    # still reach the record, saved again.
    ended(h, advisor_leg, figures(400, 100, jitter_ms=12.0))
    await h.settle()
    legs = {leg["role"]: leg for leg in h.record(call_id).legs}
    assert legs["customer"]["quality"]["loss_pct"] == 0.0
    assert legs["advisor"]["quality"]["loss_pct"] == 20.0
    assert legs["advisor"]["quality"]["jitter_ms"] == 12.0
    assert legs["advisor"]["state"] == "disconnected"

    [warning] = h.of_type("call.quality")
    assert warning["call_id"] == call_id and warning["advisor"] == "sofia"
    assert warning["data"] == {"leg": advisor_leg, "role": "advisor", "worker": "w1",
                               "loss_pct": 20.0, "jitter_ms": 12.0, "rx_packets": 400,
                               "rx_lost": 100, "threshold_pct": 5.0}
    assert any("poor audio" in r.getMessage() and call_id in r.getMessage()
               for r in caplog.records)

    lines = h.flow.quality.prometheus_lines()
    assert metric(lines, 'cti_rtp_loss_percent_bucket{role="advisor",le="10"}') == 0
    assert metric(lines, 'cti_rtp_loss_percent_bucket{role="advisor",le="20"}') == 1
    assert metric(lines, 'cti_rtp_loss_percent_bucket{role="customer",le="0.1"}') == 1
    assert metric(lines, 'cti_rtp_loss_percent_count{role="customer"}') == 1
    assert metric(lines, 'cti_rtp_jitter_milliseconds_sum{role="advisor"}') == 12.0
    assert metric(lines, 'cti_rtp_lossy_legs_total{role="advisor"}') == 1
    assert metric(lines, 'cti_rtp_packets_lost_total{role="advisor"}') == 100
    assert metric(lines, 'cti_rtp_packets_received_total{role="customer"}') == 500

    [row] = Reports(h.store.path).records(RecordQuery())
    assert (row["worst_loss_pct"], row["worst_jitter_ms"]) == (20.0, 12.0)


async def test_a_leg_without_audio_or_with_bad_figures_has_none(
        h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    call_id = await h.queued()
    caplog.set_level(logging.WARNING, "cti.flow")
    ended(h, "c1", {"rx_packets": "lots"})
    await h.settle()
    [leg] = h.record(call_id).legs
    assert leg["quality"] is None
    [bad] = [r.getMessage() for r in caplog.records if "leg quality ignored" in r.getMessage()]
    assert call_id in bad and "rx_packets" in bad
    [row] = Reports(h.store.path).records(RecordQuery())
    assert row["worst_loss_pct"] is None and row["worst_jitter_ms"] is None
    assert 'cti_rtp_loss_percent_count' not in "\n".join(h.flow.quality.prometheus_lines())


async def test_a_late_event_of_a_leg_nobody_waits_for_is_dropped(h: Harness) -> None:
    ended(h, "nobody", figures(10, 5))
    await h.settle()
    assert not h.of_type("call.quality")


def test_a_legs_loss_is_its_worse_direction() -> None:
    q = parse(figures(100, 0, tx_loss_pct=7.5), "call", "leg")
    assert q is not None and q["loss_pct"] == 7.5 and q["jitter_ms"] == 1.5
    assert parse(None, "call", "leg") is None
    assert parse({**figures(100, 0), "rx_lost": -1}, "call", "leg") is None
    assert parse({**figures(100, 0), "rx_jitter_ms": True}, "call", "leg") is None
    assert parse([1, 2], "call", "leg") is None


def test_histogram_lines_are_cumulative() -> None:
    hist = Histogram((1.0, 5.0))
    for value in (0.5, 3.0, 9.0):
        hist.observe(value)
    assert hist.lines("x", 'role="r"') == [
        'x_bucket{role="r",le="1"} 1', 'x_bucket{role="r",le="5"} 2',
        'x_bucket{role="r",le="+Inf"} 3', 'x_sum{role="r"} 12.5', 'x_count{role="r"} 3']

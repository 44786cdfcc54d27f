"""A caller on a line that loses 20 % of its RTP packets: a SIPp caller whose pcap
has every fifth packet missing (sequence numbers skipped). The worker counts the
loss, the controller logs a warning, publishes call.quality and counts the leg in
/metrics; the call's record keeps the figures."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest

from scripts.load.quality import from_store, lossy_pcap
from scripts.load.sipp import Sipp, caller_xml
from tests.e2e.gateway_harness import HOTLINE, bus_event, running_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

SECONDS = 4.0


async def test_a_lossy_caller_line_is_reported(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "cti.flow")
    pcap = lossy_pcap(tmp_path / "lossy.pcap", SECONDS, drop_every=5)
    async with running_gateway(tmp_path) as gw:
        s = gw.settings
        caller = Sipp("lossy", tmp_path, ["-m", "1", "-l", "1"])
        caller.start(caller_xml(HOTLINE, pcap, int(SECONDS * 1000) + 500),
                     f"{s.sip.ip}:{s.sip.port}")
        try:
            warning = await bus_event(gw, "call.quality", timeout=30)
            assert await asyncio.to_thread(caller.wait, 20) == 0
        finally:
            caller.stop()
        data = warning["data"]
        assert data["role"] == "customer" and data["threshold_pct"] == 5.0
        # 4 s at 50 packets a second, a fifth of them missing (the IVR answered
        # at once: SIPp starts the pcap on the ACK)
        assert 18.0 <= data["loss_pct"] <= 22.0, data
        assert data["rx_packets"] >= 150 and data["rx_lost"] >= 38, data
        [ended] = [e for e in gw.bus.since(0) if e["type"] == "call.ended"]
        assert ended["call_id"] == warning["call_id"]
        assert ended["data"]["reason"] == "caller_abandoned"
        assert any("poor audio" in r.getMessage() and warning["call_id"] in r.getMessage()
                   for r in caplog.records)

        rec = gw.store.get_call(warning["call_id"])
        assert rec is not None
        [customer] = [leg for leg in rec.legs if leg["role"] == "customer"]
        assert customer["quality"]["loss_pct"] == data["loss_pct"]
        async with httpx.AsyncClient(base_url=f"http://{s.http.host}:{s.http.port}") as http:
            metrics = (await http.get("/metrics")).text
        assert 'cti_rtp_lossy_legs_total{role="customer"} 1' in metrics
        assert 'cti_rtp_loss_percent_bucket{role="customer",le="10"} 0' in metrics
        assert 'cti_rtp_loss_percent_bucket{role="customer",le="50"} 1' in metrics
    sample = from_store(gw.store.path)  # what the load generator's report reads
    assert sample.legs == 1 and sample.lossy == 1

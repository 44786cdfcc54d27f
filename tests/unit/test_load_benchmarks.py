"""The benchmarks' pure parts (scripts/load: fanout, wsclients): frames, close codes,
latencies, adding the client processes' results up."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from scripts.load.fanout import FanoutPlan, FanoutResult, metric, stalled_outcome, summarise
from scripts.load.wsclients import ClientsResult, close_code, frames, latency_ms


def frame(op: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | op, n])
    elif n < 65536:
        head = bytes([0x80 | op, 126]) + struct.pack("!H", n)
    else:
        head = bytes([0x80 | op, 127]) + struct.pack("!Q", n)
    return head + payload


def test_frames_of_every_length_and_a_cut_off_last_one() -> None:
    data = frame(1, b"a") + frame(1, b"b" * 300) + frame(1, b"c" * 70000)
    assert [(op, len(p)) for op, p in frames(data)] == [(1, 1), (1, 300), (1, 70000)]
    assert len(frames(data + frame(1, b"d" * 10)[:5])) == 3


def test_close_code_and_reason() -> None:
    assert close_code(struct.pack("!H", 4408) + b"too slow") == (4408, "too slow")
    assert close_code(b"") == (1005, "")


def test_latency_of_events_only() -> None:
    assert latency_ms({"seq": 3, "ts": 10.0}, 10.025) == pytest.approx(25.0)
    assert latency_ms({"type": "heartbeat", "ts": 10.0}, 11.0) is None


def test_stalled_outcome_counts_events_then_the_close() -> None:
    data = (frame(1, b'{"type":"hello","last_seq":4}') + frame(1, b'{"seq":5}')
            + frame(1, b'{"seq":6}') + frame(8, struct.pack("!H", 4408) + b"x"))
    assert stalled_outcome(data) == (2, (4408, "x"))
    assert stalled_outcome(frame(1, b'{"seq":5}')) == (1, None)


def test_summarise_counts_what_each_client_missed() -> None:
    a = ClientsResult(connected=2, latencies_ms=[1.0, 2.0], seqs=[{1, 2, 3}, {1, 2}])
    b = ClientsResult(connected=1, failed_connects=1, latencies_ms=[3.0], seqs=[{2, 3, 4}])
    res = FanoutResult(FanoutPlan())
    summarise(res, [a, b])
    assert (res.connected, res.failed_connects, res.events) == (3, 1, 4)
    assert res.deliveries == 8 and res.missing == 1 + 2 + 1
    assert sorted(res.latencies_ms) == [1.0, 2.0, 3.0]


def test_metric_sample() -> None:
    page = "# HELP x\ncti_websocket_slow_closes_total 2\ncti_events_total 9\n"
    assert metric(page, "cti_websocket_slow_closes_total") == 2
    assert metric(page, "cti_nothing") is None


def test_max_rate_binary_search_converges_on_the_last_rate_that_passed() -> None:
    from scripts.load.maxrate import Search

    s, capacity, tried = Search(10, 120, precision=2), 47.0, []
    while (rate := s.next_rate()) is not None:
        tried.append(rate)
        s.record(rate, rate <= capacity)
        assert len(tried) < 20
    assert tried[:3] == [10, 120, 65]
    assert s.passed is not None and s.failed is not None
    assert capacity - 2 <= s.passed <= capacity < s.failed <= s.passed + 2


def test_max_rate_search_ends_at_the_ceiling_or_below_the_floor() -> None:
    from scripts.load.maxrate import Search

    up = Search(10, 20)
    while (rate := up.next_rate()) is not None:
        up.record(rate, True)
    assert up.passed == 20 and up.failed is None
    down = Search(10, 20)
    while (rate := down.next_rate()) is not None:
        down.record(rate, False)
    assert down.passed is None and down.failed is not None and down.failed <= 2


def test_pop_lead_pairs_each_advisors_offers_and_invites_in_order() -> None:
    from scripts.load.poplead import invite_times, leads

    log = ("invite 2026-12-02\t16:20:00.120000\t1796228400.120000 "
           "To: <sip:load1@127.0.0.1:5060>\n"
           "invite 2026-12-02\t16:20:01.000000\t1796228401.000000 To: <sip:load2@127.0.0.1>\n"
           "invite 2026-12-02\t16:20:05.000000\t1796228405.000000 To: <sip:load1@127.0.0.1>\n"
           "something else\n")
    inv = invite_times(log)
    assert inv == {"load1": [1796228400.12, 1796228405.0], "load2": [1796228401.0]}
    res = leads({"load1": [1796228405.01, 1796228400.1], "load2": []}, inv)
    assert (res.offers, res.invites, res.unmatched) == (2, 3, 1)
    assert sorted(round(x) for x in res.leads_ms) == [-10, 20]
    assert res.pop_first_pct == 50.0


def test_the_workers_sip_ports_are_outside_the_ephemeral_range() -> None:
    # A client socket opened while the gateway starts must not take a worker's port.
    from scripts.load.gwconfig import SIP_HIGH, _free_tcp_udp_block

    base = _free_tcp_udp_block(60)
    assert base + 60 <= SIP_HIGH < 32768


async def test_waiting_for_health_ends_when_the_gateway_exits(tmp_path: Path) -> None:
    import subprocess

    import httpx

    from scripts.load.api import wait_healthy
    from tests.peers.ports import free_port

    log = tmp_path / "gateway.log"
    log.write_text("starting\nmedia worker w7 exited during start: Address already in use\n")
    gone = subprocess.Popen(["true"])
    gone.wait()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{free_port()}") as http:
        with pytest.raises(RuntimeError, match="exited with 0") as err:
            await wait_healthy(http, 600, gone, log)
    assert "w7 exited during start" in str(err.value)

"""Under overload new calls are refused early and cleanly (issue 15): real edge,
real workers, real callers; only the machine's CPU reading is the test's (an
injected sampler, like an injected clock: a test cannot make a machine busy on
cue without making itself late)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.e2e.gateway_harness import bus_event, call_hotline, hotline_uri, running_gateway, until
from tests.peers.phone import Phone
from tests.peers.rawsip import SipUA

pytestmark = pytest.mark.e2e


async def _invite(gw, user: str):  # noqa: ANN001, ANN202
    edge = (gw.settings.sip.ip, gw.settings.sip.port)

    def call() -> object:
        with SipUA(edge, local=("127.0.0.1", 0), user=user) as ua:
            dialog = ua.send_invite(hotline_uri(gw), from_user="+447700900123")
            return ua.wait_invite(dialog, timeout=10)
    return await asyncio.to_thread(call)


async def test_overloaded_new_calls_get_503_lines_busy_and_the_calls_in_go_on(
        tmp_path: Path) -> None:
    async with running_gateway(tmp_path, workers=2, overload__cpu_percent=95,
                               overload__over_s=2, overload__clear_s=2,
                               overload__retry_after_s=45) as gw, \
            Phone(name="+905321234567") as caller, \
            httpx.AsyncClient(base_url=f"http://{gw.settings.http.host}:"
                                       f"{gw.settings.http.port}") as http:
        cpu = [20.0]
        gw.overload.cpu = lambda: cpu[0]
        gw.overload.interval_s = 0.1
        leg = await call_hotline(caller, gw)  # in the IVR before the overload

        cpu[0] = 99.0
        await until(lambda: gw.overload.state.shedding)
        health = (await http.get("/api/v1/health")).json()
        assert health["status"] == "degraded"
        assert "overloaded" in health["reason"] and "CPU 99 %" in health["reason"]

        refused = await _invite(gw, "late1")
        assert (refused.status, refused.reason) == (503, "Lines busy")
        assert refused.get("Retry-After") == "45"
        # Refused at the edge: no worker saw it, the controller has no call for it.
        assert len(gw.flow.calls) == 1
        await until(lambda: gw.overload.refused == 1)
        metrics = (await http.get("/metrics")).text
        assert "cti_overload_refusing 1" in metrics
        assert "cti_overload_refused_calls_total 1" in metrics

        # The caller already in is served as before: the menu takes their digits.
        for d in "42":
            await caller.command("send_dtmf", leg=leg, digits=d, method="rfc2833")
        queued = await bus_event(gw, "call.queued")
        assert queued["data"]["topic"] == "visa"
        assert not caller.received("leg.state", leg=leg, state="disconnected")

        # Eased (below the limit minus the margin for clear_s): calls are taken again.
        cpu[0] = 80.0
        await until(lambda: not gw.overload.state.shedding)
        health = (await http.get("/api/v1/health")).json()
        assert not any("overloaded" in r for r in health["reasons"])
        assert health["overload"]["episodes"] == 1
        taken = await _invite(gw, "late2")
        assert taken.status == 200
        await caller.command("hangup", leg=leg)


async def test_the_edge_stops_refusing_by_itself_when_nobody_refreshes_the_flag(
        tmp_path: Path) -> None:
    """A controller that stops (hung, killed) cannot leave the hotline refusing."""
    async with running_gateway(tmp_path, workers=1, overload__cpu_percent=0,
                               overload__loop_lag_ms=0) as gw:
        assert gw.rpc is not None and not gw.overload.enabled
        assert await gw.rpc.set_overload(True) == 0
        refused = await _invite(gw, "early")
        assert (refused.status, refused.reason) == (503, "Lines busy")
        assert await gw.rpc.set_overload(True) == 1  # refreshed; one refused so far

        async def answered() -> bool:
            return (await _invite(gw, "again")).status == 200
        deadline = asyncio.get_running_loop().time() + 15
        while not await answered():  # the flag's expiry (5 s) in the edge
            assert asyncio.get_running_loop().time() < deadline, "the flag never expired"
            await asyncio.sleep(0.5)


async def test_past_the_call_rate_cap_new_calls_get_503_lines_busy(tmp_path: Path) -> None:
    """overload.max_new_calls_per_second: a carrier's CAPS limit at the edge."""
    async with running_gateway(tmp_path, workers=2,
                               overload__max_new_calls_per_second=1) as gw:
        edge = (gw.settings.sip.ip, gw.settings.sip.port)

        def burst() -> list[tuple[int, str]]:
            uas = [SipUA(edge, local=("127.0.0.1", 0), user=f"b{i}") for i in range(3)]
            try:  # three INVITEs at once: in one second, or at most across two
                dialogs = [ua.send_invite(hotline_uri(gw), from_user=f"+4477009001{i}")
                           for i, ua in enumerate(uas)]
                replies = [ua.wait_invite(d, timeout=10) for ua, d in zip(uas, dialogs,
                                                                          strict=True)]
                for ua, d, r in zip(uas, dialogs, replies, strict=True):
                    if r.status == 200:
                        ua.bye(d)
                return [(r.status, r.reason) for r in replies]
            finally:
                for ua in uas:
                    ua.close()

        replies = await asyncio.to_thread(burst)
        assert (503, "Lines busy") in replies
        assert 1 <= sum(status == 200 for status, _ in replies) <= 2
        await until(lambda: gw.overload.refused >= 1)
        assert gw.overload.refused == replies.count((503, "Lines busy"))

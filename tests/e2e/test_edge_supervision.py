"""Issue 12: cti serve supervises Kamailio like the workers, with a real edge,
real workers and a real advisor phone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.e2e.gateway_harness import (
    Advisor,
    EventStream,
    gateway_settings,
    hotline_uri,
    running_gateway,
    until,
)
from tests.e2e.test_edge import group_members
from tests.e2e.test_serve_process import _check_running, _serve, _until_gone
from tests.peers.phone import Phone

pytestmark = pytest.mark.e2e


async def _health(gw, code: int = 200) -> dict:  # noqa: ANN001
    s = gw.settings
    async with httpx.AsyncClient(base_url=f"http://{s.http.host}:{s.http.port}") as http:
        r = await http.get("/api/v1/health")
        assert r.status_code == code, r.text
        return r.json()


def _kill_group(pid: int) -> None:
    os.killpg(pid, signal.SIGKILL)  # Kamailio and every child of it


def _kill_main(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)  # its children go on serving unless swept


async def _call_reaches(gw, caller: Phone, advisor: Advisor) -> None:  # noqa: ANN001
    """A caller dials, picks Spanish / visa, the advisor answers; both hang up."""
    await advisor.set_state("available")
    leg = uuid.uuid4().hex
    await caller.command("dial", leg=leg, uri=hotline_uri(gw))
    await caller.wait_for("leg.state", leg=leg, state="confirmed", timeout=10)
    await caller.command("send_dtmf", leg=leg, digits="3", method="rfc2833")
    await caller.command("send_dtmf", leg=leg, digits="2", method="rfc2833")
    incoming = await advisor.phone.wait_for("leg.incoming", timeout=20)
    await advisor.phone.command("answer", leg=incoming["leg"], code=200)
    await advisor.stream.wait_for("call.connected")
    await caller.command("hangup", leg=leg)
    await caller.wait_for("leg.state", leg=leg, state="disconnected")


@pytest.mark.parametrize("kill", [_kill_group, _kill_main], ids=["group", "main-only"])
async def test_killed_edge_is_restarted_and_the_registered_advisor_rings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kill,  # noqa: ANN001
) -> None:
    caplog.set_level(logging.WARNING, logger="cti.gateway")
    async with running_gateway(tmp_path) as gw, Advisor(gw, "sofia") as sofia, \
            Phone(name="+34911234567") as caller:
        health = await _health(gw)
        assert health["status"] == "ok"
        assert {k: health["edge"][k] for k in ("up", "answering", "restarts", "pid")} == {
            "up": True, "answering": True, "restarts": 0, "pid": gw.edge.pid}
        old_pid = gw.edge.pid
        assert old_pid is not None

        kill(old_pid)
        await until(lambda: gw.edge.restarts == 1 and gw.edge.alive, timeout=5)
        health = await _health(gw)
        assert health["edge"]["up"] and health["edge"]["restarts"] == 1
        assert health["edge"]["pid"] not in (None, old_pid)
        assert health["status"] == "ok"
        assert any("SIP edge (kamailio) exited" in r.getMessage() for r in caplog.records)
        assert group_members(old_pid) == []  # nothing of the old edge is left serving

        # Sofia's phone registered with the old edge only; the new one rings it.
        assert gw.rpc is not None and await gw.rpc.registered("sofia")
        await _call_reaches(gw, caller, sofia)


async def test_health_is_down_while_the_edge_is_down(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw:
        # Stop the supervisor first, so the edge stays down for the look at /health.
        assert gw._edge_task is not None
        gw._edge_task.cancel()
        await gw.edge.stop()
        health = await _health(gw, code=503)  # no call can be answered
        assert health["status"] == "down"
        assert "edge" in health["reason"]
        assert health["edge"]["up"] is False
        async with httpx.AsyncClient(
                base_url=f"http://{gw.settings.http.host}:{gw.settings.http.port}") as http:
            metrics = (await http.get("/metrics")).text
        assert "cti_down 1" in metrics and "cti_edge_up 0" in metrics


async def test_hung_edge_is_seen_killed_and_restarted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """A Kamailio that is alive but answers nothing (here: every process of it
    stopped) shows in /health as not answering, then is replaced."""
    caplog.set_level(logging.ERROR, logger="cti.gateway")
    async with running_gateway(tmp_path) as gw, Advisor(gw, "sofia") as sofia, \
            Phone(name="+34911234567") as caller:
        old_pid = gw.edge.pid
        assert old_pid is not None
        await until(lambda: gw.edge_liveness.last_answer is not None, timeout=10)
        os.killpg(old_pid, signal.SIGSTOP)
        try:
            await until(lambda: not gw.edge_liveness.answering, timeout=10)
            health = await _health(gw, code=503)
            assert health["status"] == "down" and "does not answer SIP" in health["reason"]
            await until(lambda: gw.edge.restarts == 1 and gw.edge.alive, timeout=20)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(old_pid, signal.SIGCONT)
        assert any("answered no SIP OPTIONS" in r.getMessage() for r in caplog.records)
        assert gw.edge.pid != old_pid and group_members(old_pid) == []
        restarted = time.time()
        await until(lambda: (gw.edge_liveness.last_answer or 0) > restarted, timeout=10)
        assert (await _health(gw))["status"] == "ok"
        # The new edge takes a call to the advisor who registered with the old one.
        await _call_reaches(gw, caller, sofia)


async def _available(settings, name: str) -> tuple[httpx.AsyncClient, EventStream]:  # noqa: ANN001
    """Log in as an advisor, open the event stream, be available."""
    s = settings
    http = httpx.AsyncClient(base_url=f"http://{s.http.host}:{s.http.port}")
    r = await http.post("/api/v1/login", json={"username": name, "password": f"demo-{name}"})
    r.raise_for_status()
    token = r.json()["token"]
    stream = EventStream(f"ws://{s.http.host}:{s.http.port}/api/v1/ws?token={token}")
    await stream.connect()
    r = await http.post("/api/v1/agents/me/state", json={"state": "available"},
                        headers={"Authorization": f"Bearer {token}"})
    r.raise_for_status()
    return http, stream


async def _ring_and_answer(caller: Phone, phone: Phone, uri: str, seen: int) -> str:
    leg = uuid.uuid4().hex
    await caller.command("dial", leg=leg, uri=uri)
    await caller.wait_for("leg.state", leg=leg, state="confirmed", timeout=10)
    for d in "32":
        await caller.command("send_dtmf", leg=leg, digits=d, method="rfc2833")

    async def rung() -> dict:
        while len(phone.received("leg.incoming")) <= seen:
            await asyncio.sleep(0.05)
        return phone.received("leg.incoming")[-1]

    incoming = await asyncio.wait_for(rung(), 20)
    await phone.command("answer", leg=incoming["leg"], code=200)
    await phone.wait_for("leg.state", leg=incoming["leg"], state="confirmed", timeout=10)
    return leg


async def test_phone_rings_after_a_killed_serve_without_registering_again(
    tmp_path: Path,
) -> None:
    """Acceptance 4, second half: the registrations live in the edge's sqlite file in
    the runtime dir; the next `cti serve` loads them, the phone is not asked again."""
    settings = gateway_settings(tmp_path)
    s = settings
    async with _serve(tmp_path, settings) as first, Phone(name="sofia") as phone, \
            Phone(name="+34911234567") as caller:
        await _check_running(first)
        await phone.command("register", user="sofia", password="demo-sofia",
                            registrar=f"sip:{s.sip.ip}:{s.sip.port}", transport="udp")
        assert (await phone.wait_for("reg.state", timeout=10))["code"] == 200
        http, stream = await _available(settings, "sofia")
        await _ring_and_answer(caller, phone, f"sip:+31247247247@{s.sip.ip}:{s.sip.port}", 0)
        await stream.close()
        await http.aclose()
        db = first.runtime / "edge" / "location.sqlite"
        assert db.stat().st_mode & 0o777 == 0o600

        first.proc.kill()  # during the call
        await first.proc.wait()
        await _until_gone(set(first.pids.values()), timeout=10)
        registrations = len(phone.received("reg.state"))

        async with _serve(tmp_path, settings) as second, Phone(name="+34911234568") as caller2:
            await _check_running(second)
            http, stream = await _available(settings, "sofia")
            try:
                await _ring_and_answer(
                    caller2, phone, f"sip:+31247247247@{s.sip.ip}:{s.sip.port}", 1)
                assert len(phone.received("reg.state")) == registrations
            finally:
                await stream.close()
                await http.aclose()

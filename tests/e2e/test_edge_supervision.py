"""Issue 12: cti serve supervises Kamailio like the workers, with a real edge,
real workers and a real advisor phone."""

from __future__ import annotations

import logging
import os
import signal
import uuid
from pathlib import Path

import httpx
import pytest

from tests.e2e.gateway_harness import Advisor, hotline_uri, running_gateway, until
from tests.peers.phone import Phone

pytestmark = pytest.mark.e2e


async def _health(gw) -> dict:  # noqa: ANN001
    s = gw.settings
    async with httpx.AsyncClient(base_url=f"http://{s.http.host}:{s.http.port}") as http:
        r = await http.get("/api/v1/health")
        r.raise_for_status()
        return r.json()


async def test_killed_edge_group_is_restarted_and_the_registered_advisor_rings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="cti.gateway")
    async with running_gateway(tmp_path) as gw, Advisor(gw, "sofia") as sofia, \
            Phone(name="+34911234567") as caller:
        health = await _health(gw)
        assert health["status"] == "ok"
        assert health["edge"] == {"up": True, "restarts": 0, "pid": gw.edge.pid}
        old_pid = gw.edge.pid
        assert old_pid is not None

        os.killpg(old_pid, signal.SIGKILL)  # Kamailio and every child of it
        await until(lambda: gw.edge.restarts == 1 and gw.edge.alive, timeout=5)
        health = await _health(gw)
        assert health["edge"]["up"] and health["edge"]["restarts"] == 1
        assert health["edge"]["pid"] not in (None, old_pid)
        assert health["status"] == "ok"
        assert any("SIP edge (kamailio) exited" in r.getMessage() for r in caplog.records)
        with pytest.raises(ProcessLookupError):
            os.killpg(old_pid, 0)  # nothing of the old edge is left serving

        # Sofia's phone registered with the old edge only; the new one rings it.
        assert await gw.rpc.registered("sofia") if gw.rpc else False
        await sofia.set_state("available")
        leg = uuid.uuid4().hex
        await caller.command("dial", leg=leg, uri=hotline_uri(gw))
        await caller.wait_for("leg.state", leg=leg, state="confirmed", timeout=10)
        await caller.command("send_dtmf", leg=leg, digits="3", method="rfc2833")
        await caller.command("send_dtmf", leg=leg, digits="2", method="rfc2833")
        incoming = await sofia.phone.wait_for("leg.incoming", timeout=20)
        await sofia.phone.command("answer", leg=incoming["leg"], code=200)
        await sofia.stream.wait_for("call.connected")
        await caller.command("hangup", leg=leg)
        await caller.wait_for("leg.state", leg=leg, state="disconnected")


async def test_health_is_degraded_while_the_edge_is_down(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw:
        # Stop the supervisor first, so the edge stays down for the look at /health.
        assert gw._edge_task is not None
        gw._edge_task.cancel()
        await gw.edge.stop()
        health = await _health(gw)
        assert health["status"] == "degraded"
        assert "edge" in health["reason"]
        assert health["edge"]["up"] is False

"""Issue 13: wrap-up lasts until the advisor saves it, at most the topic's
routing.wrap_up_s; a call not wrapped up in time can be wrapped up later.
A real call through the edge and a worker to sofia's phone."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.gateway_harness import Advisor, bus_event, call_hotline, running_gateway
from tests.peers.phone import Phone

pytestmark = pytest.mark.e2e

SPANISH_CALLER = "+34911234567"
MOST_WRAP_UP_S = 8  # past the 5 s after which the old wrap-up ended, form open or not


async def test_wrap_up_lasts_until_saved_or_the_most_then_can_be_done_later(
        tmp_path: Path) -> None:
    async with running_gateway(tmp_path, routing__wrap_up_s={"default": MOST_WRAP_UP_S}) \
            as gw, Advisor(gw, "sofia") as sofia, Phone(name=SPANISH_CALLER) as caller:
        base = f"http://{gw.settings.http.host}:{gw.settings.http.port}"
        as_sofia = {"Authorization": f"Bearer {sofia.token}"}
        async with httpx.AsyncClient(base_url=base, headers=as_sofia) as http:
            await sofia.set_state("available")
            leg = await call_hotline(caller, gw, "32")
            incoming = await sofia.phone.wait_for("leg.incoming", timeout=20)
            await sofia.phone.command("answer", leg=incoming["leg"], code=200)
            connected = await sofia.stream.wait_for("call.connected")
            call_id = connected["call_id"]
            await caller.command("hangup", leg=leg)
            wrap = await sofia.stream.wait_for("agent.state", state="wrap_up")

            # The form stays open (nothing saved): wrap-up holds until its most.
            expired = await bus_event(gw, "call.not_wrapped_up", timeout=MOST_WRAP_UP_S + 10,
                                      advisor="sofia")
            assert expired["call_id"] == call_id
            available = await sofia.stream.wait_for("agent.state", state="available",
                                                    where=lambda e: e["seq"] > wrap["seq"])
            states = [e for e in sofia.stream.events if e["type"] == "agent.state"
                      and wrap["seq"] <= e["seq"] < available["seq"]]
            assert [e["data"]["state"] for e in states] == ["wrap_up"]  # nothing between
            assert expired["ts"] - wrap["ts"] >= MOST_WRAP_UP_S - 0.5

            # Listed as not wrapped up in her calls of today ...
            history = (await http.get("/api/v1/agents/me/history")).json()
            row = next(h for h in history if h["call_id"] == call_id)
            assert row["wrap_up_code"] is None and row["wrapped_up"] is False

            # ... and she wraps it up later; she stays available.
            r = await http.post(f"/api/v1/calls/{call_id}/wrap-up",
                                json={"code": "info_given", "note": "done after the call"})
            assert r.status_code == 200, r.text
            await sofia.stream.wait_for("call.wrap_up", call_id=call_id, code="info_given")
            history = (await http.get("/api/v1/agents/me/history")).json()
            row = next(h for h in history if h["call_id"] == call_id)
            assert (row["wrap_up_code"], row["wrapped_up"]) == ("info_given", True)
            assert gw.flow.distributor.advisor_state("sofia").value == "available"

            # Another advisor cannot wrap up her call.
            r = await http.post("/api/v1/login", json={"username": "michel",
                                                       "password": "demo-michel"})
            michel = {"Authorization": f"Bearer {r.json()['token']}"}
            r = await http.post(f"/api/v1/calls/{call_id}/wrap-up", headers=michel,
                                json={"code": "info_given", "note": ""})
            assert r.status_code == 404, r.text

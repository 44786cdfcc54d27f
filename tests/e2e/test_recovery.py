"""Issue 13: a recovery break after a distressing call (a real call through the
edge and a worker): no offer reaches the advisor during it; a supervisor can grant
one; both are announced and audited."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.gateway_harness import Advisor, bus_event, call_hotline, running_gateway
from tests.peers.phone import Phone

pytestmark = pytest.mark.e2e

BREAK_S = 6


async def _answer(advisor: Advisor, after: int = 0) -> str:
    """The advisor's phone rings (after event seq ``after``) and they answer."""
    offered = await advisor.stream.wait_for("call.offered", timeout=20,
                                            where=lambda e: e["seq"] > after)
    incoming = await advisor.phone.wait_for("leg.incoming", timeout=20)  # each once
    assert incoming["headers"]["x-cti-call-id"] == offered["call_id"]
    await advisor.phone.command("answer", leg=incoming["leg"], code=200)
    await advisor.stream.wait_for("call.connected", call_id=offered["call_id"])
    return str(offered["call_id"])


async def test_distressing_wrap_up_gives_a_break_without_offers(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, wrap_up__recovery_break_s=BREAK_S) as gw, \
            Advisor(gw, "sofia") as sofia, Phone(name="+34911234567") as first, \
            Phone(name="+34911234568") as second:
        base = f"http://{gw.settings.http.host}:{gw.settings.http.port}"
        async with httpx.AsyncClient(base_url=base) as http:
            await sofia.set_state("available")
            leg = await call_hotline(first, gw, "32")
            call_id = await _answer(sofia)
            await first.command("hangup", leg=leg)
            await sofia.stream.wait_for("call.ended", call_id=call_id)
            r = await http.post(f"/api/v1/calls/{call_id}/wrap-up",
                                headers={"Authorization": f"Bearer {sofia.token}"},
                                json={"code": "info_given", "note": "", "distressing": True})
            assert r.status_code == 200, r.text
            started = await bus_event(gw, "agent.recovery", state="started")
            assert started["advisor"] == "sofia" and started["data"]["why"] == "distressing_call"
            assert started["call_id"] == call_id
            assert gw.flow.distributor.advisor_reason("sofia") == "recovery"

            # A caller for sofia's skills waits during the break: never offered to her.
            leg2 = await call_hotline(second, gw, "32")
            over = await bus_event(gw, "agent.recovery", timeout=BREAK_S + 10, state="over")
            offers = [e for e in gw.bus.since(started["seq"])
                      if e["type"] == "call.offered" and e["seq"] < over["seq"]]
            assert offers == []
            assert over["data"]["until"] - started["ts"] >= BREAK_S - 0.5
            # After it, she is available and the waiting caller is offered to her.
            second_id = await _answer(sofia, after=over["seq"])
            assert second_id != call_id
            await second.command("hangup", leg=leg2)

            # The supervisor's audit has the break.
            r = await http.post("/api/v1/login", json={"username": "nadia",
                                                       "password": "demo-nadia"})
            nadia = {"Authorization": f"Bearer {r.json()['token']}"}
            audit = (await http.get("/api/v1/audit", headers=nadia,
                                    params={"action": "recovery.start"})).json()
            assert [(a["who"], a["details"]["why"]) for a in audit] == [
                ("sofia", "distressing_call")]


async def test_a_supervisor_grants_a_break(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw, Advisor(gw, "sofia") as sofia:
        base = f"http://{gw.settings.http.host}:{gw.settings.http.port}"
        async with httpx.AsyncClient(base_url=base) as http:
            r = await http.post("/api/v1/login", json={"username": "nadia",
                                                       "password": "demo-nadia"})
            nadia = {"Authorization": f"Bearer {r.json()['token']}"}
            r = await http.post("/api/v1/advisors/sofia/recovery", headers=nadia,
                                json={"minutes": 10})
            assert r.status_code == 409  # logged out: nothing to grant
            await sofia.set_state("available")
            r = await http.post("/api/v1/advisors/sofia/recovery",
                                headers={"Authorization": f"Bearer {sofia.token}"},
                                json={"minutes": 10})
            assert r.status_code == 403  # supervisors grant breaks
            r = await http.post("/api/v1/advisors/sofia/recovery", headers=nadia,
                                json={"minutes": 10})
            assert r.status_code == 200, r.text
            assert (r.json()["state"], gw.flow.distributor.advisor_reason("sofia")) == (
                "away", "recovery")
            started = await sofia.stream.wait_for("agent.recovery", state="started")
            assert (started["data"]["why"], started["data"]["by"]) == ("granted", "nadia")
            assert started["data"]["until"] - started["ts"] == pytest.approx(600, abs=2)
            # She may end it herself: it is her choice.
            await sofia.set_state("available")
            ended = await sofia.stream.wait_for("agent.recovery", state="ended_early")
            assert ended["advisor"] == "sofia"

"""State follows the phone: an advisor whose phone unregisters is away (phone_offline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.gateway_harness import Advisor, call_hotline, running_gateway
from tests.peers.phone import Phone

pytestmark = pytest.mark.e2e


async def test_sofia_unregisters_is_away_and_skipped_then_back(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw, Advisor(gw, "sofia") as sofia, \
            Advisor(gw, "michel") as michel, Phone(name="+34911234567") as caller:
        await sofia.set_state("available")
        await michel.set_state("available")
        await sofia.phone.command("set_registration", active=False)
        await sofia.phone.wait_for("reg.state", expires=0, timeout=5)
        away = await sofia.stream.wait_for("agent.state", timeout=2, state="away")
        assert away["data"]["reason"] == "phone_offline"
        assert gw.flow.distributor.advisor_reason("sofia") == "phone_offline"

        # Setting herself available while the phone is gone changes nothing.
        await sofia.set_state("available")
        assert gw.flow.distributor.advisor_state("sofia").value == "away"

        # Español, passport: sofia is the better match (5+3), michel (3+4) gets it.
        await call_hotline(caller, gw, "31")
        offered = await michel.stream.wait_for("call.offered", timeout=15)
        incoming = await michel.phone.wait_for("leg.incoming", timeout=10)
        await michel.phone.command("answer", leg=incoming["leg"], code=200)
        await michel.stream.wait_for("call.connected", call_id=offered["call_id"])
        assert not [e for e in sofia.stream.events if e["type"] == "call.offered"]
        assert not sofia.phone.received("leg.incoming")

        seen = len(sofia.stream.events)
        await sofia.phone.command("set_registration", active=True)
        back = await sofia.stream.wait_for(
            "agent.state", timeout=5, state="available",
            where=lambda e: sofia.stream.events.index(e) >= seen)
        assert back["data"]["reason"] is None


async def test_online_while_any_contact_is_registered(tmp_path: Path) -> None:
    """A desk phone registered from two places: away only when the last one leaves."""
    async with running_gateway(tmp_path) as gw, Advisor(gw, "sofia") as sofia, \
            Phone(name="sofia-desk") as desk:
        s = gw.settings
        await desk.command("register", user="sofia", password=sofia.password,
                           registrar=f"sip:{s.sip.ip}:{s.sip.port}", transport="udp")
        assert (await desk.wait_for("reg.state", timeout=10))["code"] == 200
        await sofia.set_state("available")
        await sofia.phone.command("set_registration", active=False)
        await sofia.phone.wait_for("reg.state", expires=0, timeout=5)
        assert gw.rpc is not None  # the edge's table has the desk phone's contact still
        assert "sofia" in await gw.rpc.registered_users()
        await desk.command("set_registration", active=False)
        away = await sofia.stream.wait_for("agent.state", timeout=2, state="away")
        assert away["data"]["reason"] == "phone_offline"
        assert len([e for e in sofia.stream.events if e["type"] == "agent.state"
                    and e["data"]["state"] == "away"]) == 1

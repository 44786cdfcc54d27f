"""Skills routing with real calls: the right advisor, relaxed steps, skipped no-answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.gateway_harness import Advisor, bus_event, call_hotline, running_gateway, until
from tests.peers.phone import Phone

pytestmark = pytest.mark.e2e

QUICK_STEPS = {"default": [
    {"after_s": 0, "min_language": 3, "min_topic": 3},
    {"after_s": 2, "min_language": 2, "min_topic": 1},
    {"after_s": 3, "min_language": 1, "min_topic": 0, "escalate": True},
]}


async def _answer(advisor: Advisor) -> dict:
    incoming = await advisor.phone.wait_for("leg.incoming", timeout=15)
    await advisor.phone.command("answer", leg=incoming["leg"], code=200)
    return incoming


async def test_emre_gets_the_turkish_call_not_the_english_one(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw, Advisor(gw, "emre") as emre, \
            Phone(name="+442079460123") as english, Phone(name="+905321234567") as turkish:
        await call_hotline(english, gw, "24")  # English, DigiD
        await call_hotline(turkish, gw, "42")  # Türkçe, visa
        await until(lambda: len(gw.flow.distributor.waiting_calls()) >= 2, 15)
        await emre.set_state("available")
        offered = await emre.stream.wait_for("call.offered", timeout=10)
        assert offered["data"]["language"] == "tr"
        await _answer(emre)
        await emre.stream.wait_for("call.connected", call_id=offered["call_id"])
        assert len(gw.flow.distributor.waiting_calls()) == 1  # the English caller waits on


async def test_weaker_match_after_the_step_time_with_escalation(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, routing__escalation=QUICK_STEPS) as gw, \
            Advisor(gw, "emre") as emre, Phone(name="+905321234567") as caller:
        await emre.set_state("available")
        await call_hotline(caller, gw, "44")  # Türkçe, DigiD: emre has no DigiD
        queued = await bus_event(gw, "call.queued")
        assert not [e for e in emre.stream.events if e["type"] == "call.offered"]
        escalated = await bus_event(gw, "call.escalated", timeout=10)
        offered = await emre.stream.wait_for("call.offered", timeout=10)
        assert offered["call_id"] == queued["call_id"] == escalated["call_id"]
        await _answer(emre)
        await emre.stream.wait_for("call.connected", call_id=offered["call_id"])

        # The decision trace: visible through the API and stored with the call.
        nadia = Advisor(gw, "nadia")
        r = await nadia.http.post("/api/v1/login",
                                  json={"username": "nadia", "password": "demo-nadia"})
        token = r.json()["token"]
        detail = (await nadia.http.get(f"/api/v1/calls/{offered['call_id']}",
                                       headers={"Authorization": f"Bearer {token}"})).json()
        await nadia.http.aclose()
        (offer,) = detail["offers"]
        trace = offer["trace"]
        assert offer["advisor"] == "emre" and offer["outcome"] == "accepted"
        assert trace["step"]["index"] == 2 and trace["step"]["min_topic"] == 0
        assert trace["requirements"] == {"language": "tr", "topic": "digid", "trainings": []}
        assert trace["candidates"][0]["advisor"] == "emre"
        assert gw.store.offers(offered["call_id"])[0]["trace"] == trace


async def test_no_answer_skips_to_the_next_advisor(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, routing__offer_timeout_s=3,
                               routing__max_missed=1) as gw, \
            Advisor(gw, "sofia") as sofia, Advisor(gw, "michel") as michel, \
            Phone(name="+34911234567") as caller:
        await sofia.set_state("available")
        await michel.set_state("available")
        await call_hotline(caller, gw, "31")  # Español, passport: sofia 5+3, michel 3+4
        first = await sofia.stream.wait_for("call.offered", timeout=15)
        await sofia.phone.wait_for("leg.incoming", timeout=10)  # rings; sofia lets it ring
        away = await sofia.stream.wait_for("agent.state", state="away", timeout=10)
        assert away["data"]["reason"] == "no_answer"
        second = await michel.stream.wait_for("call.offered", timeout=10)
        assert second["call_id"] == first["call_id"]
        await _answer(michel)
        await michel.stream.wait_for("call.connected", call_id=first["call_id"])
        outcomes = [(o["advisor"], o["outcome"]) for o in gw.store.offers(first["call_id"])]
        assert outcomes == [("sofia", "revoked:timeout"), ("michel", "accepted")]
        trace = gw.store.offers(first["call_id"])[1]["trace"]
        assert trace["excluded"]["sofia"] == "away (no_answer)"


async def test_caller_hangs_up_while_the_advisor_rings(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw, Advisor(gw, "sofia") as sofia, \
            Phone(name="+34911234567") as caller:
        await sofia.set_state("available")
        leg = await call_hotline(caller, gw, "32")
        offered = await sofia.stream.wait_for("call.offered", timeout=15)
        ringing = await sofia.phone.wait_for("leg.incoming", timeout=10)
        await caller.command("hangup", leg=leg)
        # The advisor's phone stops ringing, she is free again, nothing is left over.
        await sofia.phone.wait_for("leg.state", leg=ringing["leg"], state="disconnected")
        ended = await sofia.stream.wait_for("call.ended", call_id=offered["call_id"])
        assert ended["data"]["reason"] == "caller_abandoned"
        assert gw.flow.distributor.advisor_state("sofia").value == "available"
        assert len(gw.flow.calls) == 0 and gw.flow.distributor.waiting_calls() == []
        (offer,) = gw.store.offers(offered["call_id"])
        assert offer["outcome"] == "caller_abandoned"


async def test_max_wait_moves_the_call_to_another_queue(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, routing__max_wait_s=1,
                               routing__max_wait_action="queue:travel_advice") as gw, \
            Advisor(gw, "emre") as emre, Phone(name="+905321234567") as caller:
        await emre.set_state("available")
        await call_hotline(caller, gw, "44")  # Türkçe, DigiD: emre has no DigiD
        moved = await bus_event(gw, "call.max_wait", timeout=10)
        assert moved["data"] == {"action": "queue:travel_advice", "topic": "travel_advice"}
        offered = await emre.stream.wait_for("call.offered", timeout=10)
        assert offered["call_id"] == moved["call_id"]
        assert offered["data"]["topic"] == "travel_advice"
        assert offered["data"]["ivr_path"][-1] == "max_wait->travel_advice"
        assert offered["data"]["waited_s"] >= 1  # it kept its place in time

"""Call control with real calls: consult and blind transfers to the crisis team, blind
transfer to another advisor, hold, consult cancel, and the wrap-up that follows."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cti.controller.control import CallControlError
from tests.audio import tone_present, write_tone
from tests.e2e.gateway_harness import (
    Advisor,
    bus_event,
    call_hotline,
    hear_each_other,
    running_gateway,
    until,
)
from tests.peers.phone import Phone

pytestmark = pytest.mark.e2e

CALLER, TEAM = 440.0, 1000.0


@contextlib.asynccontextmanager
async def connected_call(tmp_path: Path) -> AsyncIterator[tuple[Any, Advisor, Phone, Phone,
                                                                 str, str, str]]:
    """A gateway, sofia talking to a Spanish caller, and a crisis-team phone in the
    directory: (gw, sofia, caller, team, caller leg, sofia's leg, call id)."""
    write_tone(tmp_path / "caller.wav", CALLER, 30)
    write_tone(tmp_path / "team.wav", TEAM, 30)
    async with Phone(name="crisis") as team, \
            running_gateway(tmp_path, routing__wrap_up_s=120, directory=[
                {"key": "crisis_team", "name": "Crisis team", "number": "+31703480000",
                 "uri": team.uri("crisis")}]) as gw, \
            Advisor(gw, "sofia") as sofia, Phone(name="+34911234567") as caller:
        await sofia.set_state("available")
        leg = await call_hotline(caller, gw, "32")
        incoming = await sofia.phone.wait_for("leg.incoming", timeout=20)
        await sofia.phone.command("answer", leg=incoming["leg"], code=200)
        connected = await sofia.stream.wait_for("call.connected")
        yield gw, sofia, caller, team, leg, incoming["leg"], connected["call_id"]


async def _answer(phone: Phone, **match: Any) -> str:
    incoming = await phone.wait_for("leg.incoming", timeout=15, **match)
    await phone.command("answer", leg=incoming["leg"], code=200)
    await phone.wait_for("leg.media", leg=incoming["leg"], active=True)
    return incoming["leg"]


async def test_consult_transfer_to_the_crisis_team(tmp_path: Path) -> None:
    async with connected_call(tmp_path) as (gw, sofia, caller, team, leg, sofia_leg, call_id):
        gw.flow.transfer_call(call_id, "sofia", "consult", "external", "crisis_team")
        # Sofia's phone rings a second time (the consult), the crisis team rings too.
        consult_leg = await _answer_consult(sofia.phone, call_id)
        team_leg = await _answer(team)
        talking = await sofia.stream.wait_for("call.consult", state="talking")
        assert talking["call_id"] == call_id
        # The consult filled the call's worker (caller, advisor, advisor again, team):
        # the edge sends no new caller there until it has room again.
        assert gw.flow._out_of_rotation == {gw.flow.calls.get(call_id).worker}
        # Sofia and the crisis team hear each other while the caller waits.
        heard_sofia, heard_team = await hear_each_other(
            tmp_path, sofia.phone, consult_leg, team, team_leg, "consult")
        assert tone_present(heard_sofia, TEAM, min_seconds=1.0)
        assert tone_present(heard_team, CALLER, min_seconds=1.0)

        gw.flow.consult_complete(call_id, "sofia")
        await sofia.stream.wait_for("call.transferred", call_id=call_id)
        await sofia.phone.wait_for("leg.state", leg=sofia_leg, state="disconnected")
        await sofia.phone.wait_for("leg.state", leg=consult_leg, state="disconnected")
        await sofia.stream.wait_for("agent.state", state="wrap_up")
        assert gw.flow.distributor.advisor_state("sofia").value == "wrap_up"

        # The caller now talks to the crisis team.
        heard_caller, heard_team = await hear_each_other(
            tmp_path, caller, leg, team, team_leg, "after")
        assert tone_present(heard_caller, TEAM, min_seconds=1.0)
        assert tone_present(heard_team, CALLER, min_seconds=1.0)

        await caller.command("hangup", leg=leg)
        await team.wait_for("leg.state", leg=team_leg, state="disconnected")
        ended = await bus_event(gw, "call.ended")
        assert ended["data"]["reason"] == "caller_hangup"
        await until(lambda: not gw.flow._out_of_rotation)
        # Sofia wraps the call up; she is available again.
        gw.flow.wrap_up(call_id, "sofia", "forwarded", "crisis team took over")
        await sofia.stream.wait_for("call.wrap_up", call_id=call_id)
        await sofia.stream.wait_for("agent.state", state="available")
        assert gw.store.wrap_up(call_id)["code"] == "forwarded"


async def _answer_consult(phone: Phone, call_id: str) -> str:
    """Answer the second incoming call of the advisor's phone, the consult."""
    def is_consult(e: dict[str, Any]) -> bool:
        h = e.get("headers", {})
        return h.get("x-cti-call-id") == call_id and "x-cti-consult" in h

    for _ in range(3):
        incoming = await phone.wait_for("leg.incoming", timeout=15)
        if is_consult(incoming):
            await phone.command("answer", leg=incoming["leg"], code=200)
            await phone.wait_for("leg.media", leg=incoming["leg"], active=True)
            return incoming["leg"]
    raise AssertionError("no consult call reached the advisor's phone")


async def test_blind_transfer_to_the_crisis_team(tmp_path: Path) -> None:
    async with connected_call(tmp_path) as (gw, sofia, caller, team, leg, sofia_leg, call_id):
        gw.flow.transfer_call(call_id, "sofia", "blind", "external", "crisis_team")
        await sofia.phone.wait_for("leg.state", leg=sofia_leg, state="disconnected")
        await sofia.stream.wait_for("agent.state", state="wrap_up")
        team_leg = await _answer(team)
        await bus_event(gw, "call.transferred", kind="blind")
        heard_caller, heard_team = await hear_each_other(
            tmp_path, caller, leg, team, team_leg, "blind")
        assert tone_present(heard_caller, TEAM, min_seconds=1.0)
        assert tone_present(heard_team, CALLER, min_seconds=1.0)
        await team.command("hangup", leg=team_leg)
        await caller.wait_for("leg.state", leg=leg, state="disconnected")
        assert (await bus_event(gw, "call.ended"))["data"]["reason"] == "transfer_ended"


async def test_a_busy_crisis_team_sends_the_caller_back_to_the_queue(tmp_path: Path) -> None:
    async with connected_call(tmp_path) as (gw, sofia, caller, team, leg, sofia_leg, call_id):
        gw.flow.transfer_call(call_id, "sofia", "blind", "external", "crisis_team")
        incoming = await team.wait_for("leg.incoming", timeout=15)
        await team.command("hangup", leg=incoming["leg"], code=486)
        failed = await bus_event(gw, "call.transfer_failed")
        assert failed["data"]["code"] == 486
        assert gw.flow.distributor.has_call(call_id)  # waiting again, not lost
        assert caller.received("leg.state", leg=leg, state="disconnected") == []


async def test_blind_transfer_to_another_advisor_and_consult_cancel(tmp_path: Path) -> None:
    async with connected_call(tmp_path) as (gw, sofia, caller, team, leg, sofia_leg, call_id), \
            Advisor(gw, "michel") as michel:
        # A consult that is cancelled: Sofia has the caller again.
        gw.flow.transfer_call(call_id, "sofia", "consult", "external", "crisis_team")
        await team.wait_for("leg.incoming", timeout=15)
        gw.flow.consult_cancel(call_id, "sofia")
        cancelled = await sofia.stream.wait_for("call.consult", state="cancelled")
        assert cancelled["call_id"] == call_id
        assert gw.flow.calls.get(call_id).state == "connected"
        with pytest.raises(CallControlError, match="not another advisor"):
            gw.flow.transfer_call(call_id, "sofia", "blind", "advisor", "sofia")

        gw.flow.hold_call(call_id, "sofia", True)
        assert (await sofia.stream.wait_for("call.held"))["data"] == {"on": True, "by": "sofia"}
        gw.flow.hold_call(call_id, "sofia", False)

        await michel.set_state("available")
        gw.flow.transfer_call(call_id, "sofia", "blind", "advisor", "michel")
        await sofia.stream.wait_for("agent.state", state="wrap_up")
        offered = await michel.stream.wait_for("call.offered", call_id=call_id, timeout=20)
        assert offered["data"]["ivr_path"][-1] == "transfer->michel"
        michel_leg = await _answer(michel.phone)
        await michel.stream.wait_for("call.connected", call_id=call_id)
        heard_caller, heard_michel = await hear_each_other(
            tmp_path, caller, leg, michel.phone, michel_leg, "michel")
        assert tone_present(heard_caller, TEAM, min_seconds=1.0)
        assert tone_present(heard_michel, CALLER, min_seconds=1.0)


async def test_a_consult_from_a_full_worker_runs_on_another_and_is_joined(
    tmp_path: Path,
) -> None:
    write_tone(tmp_path / "caller.wav", CALLER, 30)
    write_tone(tmp_path / "team.wav", TEAM, 30)
    async with Phone(name="crisis") as team, \
            running_gateway(tmp_path, routing__wrap_up_s=120, directory=[
                {"key": "crisis_team", "name": "Crisis team", "uri": team.uri("crisis")}]) as gw, \
            Advisor(gw, "sofia") as sofia, Phone(name="+34911234567") as caller, \
            Phone(name="+34911234568") as second:
        # Both callers land on w1 (w2 is out of the edge's rotation meanwhile), so w1
        # is full: the first call and its advisor, the second caller and the slot kept
        # for its advisor.
        assert gw.rpc is not None
        await gw.rpc.set_worker_state("w2", False)
        await sofia.set_state("available")
        leg = await call_hotline(caller, gw, "32")
        incoming = await sofia.phone.wait_for("leg.incoming", timeout=20)
        await sofia.phone.command("answer", leg=incoming["leg"], code=200)
        call_id = (await sofia.stream.wait_for("call.connected"))["call_id"]
        await call_hotline(second, gw, "32")
        await gw.bus.wait_for(
            lambda e: e["type"] == "call.queued" and e["call_id"] != call_id, 20)
        await gw.rpc.set_worker_state("w2", True)
        assert gw.flow.calls.get(call_id).worker == "w1"
        assert gw.flow._free_calls("w1") == 0

        gw.flow.transfer_call(call_id, "sofia", "consult", "external", "crisis_team")
        assert gw.flow.calls.get(call_id).consult.worker == "w2"
        # w2 (a consult and nothing else) has room for one caller with an advisor, but
        # the edge would send it two: it leaves the rotation (cti/controller/capacity.py)
        assert gw.flow._out_of_rotation == {"w2"}
        consult_leg = await _answer_consult(sofia.phone, call_id)
        team_leg = await _answer(team)
        await sofia.stream.wait_for("call.consult", state="talking")
        gw.flow.consult_complete(call_id, "sofia")
        await sofia.stream.wait_for("call.transferred", call_id=call_id)
        await sofia.phone.wait_for("leg.state", leg=consult_leg, state="disconnected")

        # The caller on w1 talks to the crisis team on w2 through the join call.
        heard_caller, heard_team = await hear_each_other(
            tmp_path, caller, leg, team, team_leg, "joined")
        assert tone_present(heard_caller, TEAM, min_seconds=1.0)
        assert tone_present(heard_team, CALLER, min_seconds=1.0)
        roles = sorted(x.role for x in gw.flow.calls.get(call_id).legs)
        assert "join" in roles and "join_in" in roles

        await team.command("hangup", leg=team_leg)
        await caller.wait_for("leg.state", leg=leg, state="disconnected")
        await until(lambda: gw.flow.calls.get(call_id) is None)
        # w1 was full while the consult ran elsewhere; nothing was taken out of rotation
        # for it, and w2 is in the edge's rotation again now that its legs ended.
        assert not gw.flow._out_of_rotation
        ended = [e for e in gw.bus.since(0)
                 if e["type"] == "call.ended" and e["call_id"] == call_id]
        assert ended[0]["data"]["reason"] == "transfer_ended"


async def test_consult_a_colleague_of_a_queue_who_then_keeps_the_caller(tmp_path: Path) -> None:
    async with connected_call(tmp_path) as (gw, sofia, caller, team, leg, sofia_leg, call_id), \
            Advisor(gw, "michel") as michel:
        with pytest.raises(CallControlError, match="nobody for visa is free"):
            gw.flow.transfer_call(call_id, "sofia", "consult", "queue", "visa")
        await michel.set_state("available")
        # Passport questions: michel (Spanish 3, passport 4) is the one free for them.
        gw.flow.transfer_call(call_id, "sofia", "consult", "queue", "passport")
        pop = await michel.stream.wait_for("call.offered", call_id=call_id)
        assert pop["data"]["caller"]["number"] == "+34911234567"
        await michel.stream.wait_for("agent.state", state="reserved", reason="consult")
        consult_leg = await _answer_consult(sofia.phone, call_id)
        michel_leg = await _answer(michel.phone)
        await sofia.stream.wait_for("call.consult", state="talking")
        await michel.stream.wait_for("call.consult", state="talking")

        gw.flow.consult_complete(call_id, "sofia")
        await michel.stream.wait_for("call.connected", call_id=call_id)
        await sofia.stream.wait_for("agent.state", state="wrap_up")
        await michel.stream.wait_for("agent.state", state="on_call")
        await sofia.phone.wait_for("leg.state", leg=consult_leg, state="disconnected")
        await sofia.phone.wait_for("leg.state", leg=sofia_leg, state="disconnected")
        heard_caller, heard_michel = await hear_each_other(
            tmp_path, caller, leg, michel.phone, michel_leg, "colleague")
        assert tone_present(heard_caller, TEAM, min_seconds=1.0)
        assert tone_present(heard_michel, CALLER, min_seconds=1.0)

        # It is michel's call now: he hangs up, both may wrap it up.
        await michel.phone.command("hangup", leg=michel_leg)
        ended = await michel.stream.wait_for("call.ended", call_id=call_id)
        assert ended["data"]["reason"] == "advisor_hangup"
        assert gw.store.get_call(call_id).advisor == "michel"
        gw.flow.wrap_up(call_id, "sofia", "forwarded", "passport question for michel")
        gw.flow.wrap_up(call_id, "michel", "info_given", "")
        assert [(w["advisor"], w["code"]) for w in gw.store.wrap_ups(call_id)] == [
            ("sofia", "forwarded"), ("michel", "info_given")]
        assert gw.store.wrap_up(call_id)["code"] == "info_given"


async def test_a_colleague_declines_a_consult_from_the_desktop(tmp_path: Path) -> None:
    async with connected_call(tmp_path) as (gw, sofia, caller, team, leg, sofia_leg, call_id), \
            Advisor(gw, "michel") as michel:
        await michel.set_state("available")
        gw.flow.transfer_call(call_id, "sofia", "consult", "advisor", "michel")
        await michel.stream.wait_for("call.offered", call_id=call_id)
        await michel.phone.wait_for("leg.incoming", timeout=15)
        assert gw.flow.distributor.advisor_state("michel").value == "reserved"
        auth = {"Authorization": f"Bearer {michel.token}"}
        r = await michel.http.post(f"/api/v1/calls/{call_id}/offer/reject", headers=auth)
        assert r.status_code == 200, r.text
        failed = await sofia.stream.wait_for("call.consult", state="failed")
        assert failed["data"]["target"] == "michel"
        assert gw.flow.distributor.advisor_state("michel").value == "available"
        assert gw.flow.calls.get(call_id).state == "connected"  # sofia has the caller
        # michel may not act on sofia's call otherwise
        r = await michel.http.post(f"/api/v1/calls/{call_id}/hangup", headers=auth)
        assert r.status_code == 404

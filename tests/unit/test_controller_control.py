"""Call control without SIP: hold, hang-up, transfers, consults, wrap-up, a worker lost."""

from __future__ import annotations

import pytest

from cti.controller.control import CallControlError
from tests.unit.controller_fakes import Harness


async def test_hold_plays_music_and_resume_bridges_again(h: Harness) -> None:
    call_id, advisor_leg = await h.connected("sofia")
    h.flow.hold_call(call_id, "sofia", True)
    await h.settle()
    assert h.link().sent("unbridge") == [{"a": "c1", "b": advisor_leg}]
    music = h.link().sent("play")[-1]
    assert (music["play_id"], music["loop"], music["leg"]) == ("music", True, "c1")
    assert music["file"].endswith("music/hold.wav")
    h.flow.hold_call(call_id, "sofia", False)
    await h.settle()
    assert h.link().sent("bridge")[-1] == {"a": "c1", "b": advisor_leg}
    assert [e["data"]["on"] for e in h.of_type("call.held")] == [True, False]


async def test_hold_needs_a_connected_call(h: Harness) -> None:
    call_id = await h.queued()
    with pytest.raises(CallControlError, match="not connected"):
        h.flow.hold_call(call_id, "sofia", True)
    with pytest.raises(KeyError):
        h.flow.hold_call("no-such-call", "sofia", True)


async def test_hangup_ends_both_legs_and_saves_the_record(h: Harness) -> None:
    call_id, advisor_leg = await h.connected("sofia")
    h.flow.hangup_call(call_id, "sofia")
    await h.settle()
    assert sorted(f["leg"] for f in h.link().sent("hangup")) == sorted(["c1", advisor_leg])
    assert h.flow.calls.get(call_id) is None
    rec = h.record(call_id)
    assert (rec.end_reason, rec.advisor, rec.topic) == ("hangup_by_advisor", "sofia", "visa")
    assert {leg["role"] for leg in rec.legs} == {"customer", "advisor"}
    assert h.of_type("call.ended")[-1]["data"]["reason"] == "hangup_by_advisor"
    assert h.hooks.hooks()[-1] == "cti_call_ended"
    assert h.flow.distributor.advisor_state("sofia").value == "wrap_up"
    # The ended call is still sofia's to wrap up; then she is available again.
    assert h.flow.handled_by(call_id, "sofia") and h.flow.advisor_of(call_id) == "sofia"
    h.flow.wrap_up(call_id, "sofia", "info_given", "visa rules explained")
    assert (h.store.wrap_up(call_id) or {}).get("code") == "info_given"
    assert h.flow.distributor.advisor_state("sofia").value == "available"
    with pytest.raises(CallControlError, match="unknown wrap-up code"):
        h.flow.wrap_up(call_id, "sofia", "nonsense", "")


async def test_advisor_hanging_up_ends_the_call(h: Harness) -> None:
    call_id, advisor_leg = await h.connected("sofia")
    h.leg_state("w1", advisor_leg, "disconnected", code=200)
    await h.settle()
    assert h.link().sent("hangup") == [{"leg": "c1"}]
    assert h.record(call_id).end_reason == "advisor_hangup"


async def test_blind_transfer_to_another_advisor_rings_them(h: Harness) -> None:
    call_id, sofia_leg = await h.connected("sofia")
    h.flow.set_advisor_state("michel", "available")  # speaks Spanish, knows no visas
    for target in ("nobody", "sofia"):
        with pytest.raises(CallControlError, match="not another advisor"):
            h.flow.transfer_call(call_id, "sofia", "blind", "advisor", target)
    h.flow.transfer_call(call_id, "sofia", "blind", "advisor", "michel")
    await h.settle()
    assert {"leg": sofia_leg} in h.link().sent("hangup")
    assert h.link().sent("dial")[-1]["uri"] == "sip:michel@127.0.0.1:5060"
    call = h.call(call_id)
    assert (call.state, call.advisor) == ("offered", "michel")
    assert call.ivr_path[-1] == "transfer->michel"
    assert h.flow.distributor.advisor_state("sofia").value == "wrap_up"
    assert h.flow.handled_by(call_id, "sofia")


async def test_blind_transfer_out_that_fails_goes_back_to_the_queue(h: Harness) -> None:
    call_id, _ = await h.connected("sofia")
    h.flow.transfer_call(call_id, "sofia", "blind", "external", "crisis_team")
    await h.settle()
    dial = h.link().sent("dial")[-1]
    assert dial["uri"] == "sip:crisis@127.0.0.1:5090"
    assert h.call(call_id).state == "transferring"
    h.leg_state("w1", dial["leg"], "disconnected", code=486)
    await h.settle()
    assert h.of_type("call.transfer_failed")[0]["data"]["code"] == 486
    assert h.flow.distributor.has_call(call_id)
    assert h.call(call_id).state == "queued"


async def test_consult_on_the_same_worker_then_complete(h: Harness) -> None:
    call_id, sofia_leg = await h.connected("sofia")
    h.flow.transfer_call(call_id, "sofia", "consult", "external", "crisis_team")
    await h.settle()
    consult = h.call(call_id).consult
    assert consult.worker == "w1"  # room for 2 more legs there
    assert h.link().sent("unbridge") == [{"a": "c1", "b": sofia_leg}]
    dials = {d["leg"]: d for d in h.link().sent("dial")[-2:]}
    assert dials[consult.advisor_leg.leg_id]["uri"] == "sip:sofia@127.0.0.1:5060"
    assert dials[consult.advisor_leg.leg_id]["headers"]["X-CTI-Consult"] == "crisis_team"
    assert dials[consult.target_leg.leg_id]["uri"] == "sip:crisis@127.0.0.1:5090"
    for leg in (consult.advisor_leg, consult.target_leg):
        h.leg_state("w1", leg.leg_id, "confirmed")
    await h.settle()
    assert h.link().sent("bridge")[-1] == {"a": consult.advisor_leg.leg_id,
                                           "b": consult.target_leg.leg_id}
    h.flow.consult_complete(call_id, "sofia")
    await h.settle()
    assert h.link().sent("bridge")[-1] == {"a": "c1", "b": consult.target_leg.leg_id}
    hung = {f["leg"] for f in h.link().sent("hangup")}
    assert {sofia_leg, consult.advisor_leg.leg_id} <= hung
    assert h.call(call_id).state == "transferred"
    assert [e["data"]["state"] for e in h.of_type("call.consult")] == [
        "ringing", "talking", "completed"]
    # The crisis team hangs up: the call ends.
    h.leg_state("w1", consult.target_leg.leg_id, "disconnected", code=200)
    await h.settle()
    assert h.record(call_id).end_reason == "transfer_ended"


async def test_consult_cancelled_gives_the_caller_back(h: Harness) -> None:
    call_id, sofia_leg = await h.connected("sofia")
    h.flow.transfer_call(call_id, "sofia", "consult", "external", "crisis_team")
    await h.settle()
    consult = h.call(call_id).consult
    h.flow.consult_cancel(call_id, "sofia")
    await h.settle()
    hung = {f["leg"] for f in h.link().sent("hangup")}
    assert hung == {consult.advisor_leg.leg_id, consult.target_leg.leg_id}
    assert h.link().sent("bridge")[-1] == {"a": "c1", "b": sofia_leg}
    call = h.call(call_id)
    assert call.consult is None and call.state == "connected"
    with pytest.raises(CallControlError, match="no consult"):
        h.flow.consult_cancel(call_id, "sofia")


async def test_worker_down_ends_its_calls_without_commands(h: Harness) -> None:
    call_id, advisor_leg = await h.connected("sofia")
    before = len(h.link().commands)
    # The link is left "up" so that a command sent to the dead worker would show.
    dialogs = await h.flow.on_worker_down(h.link())  # type: ignore[arg-type]
    await h.settle()
    assert dialogs == [f"sip-{advisor_leg}"]  # the edge sends the advisor the BYE
    assert len(h.link().commands) == before
    assert h.record(call_id).end_reason == "worker_failed"
    assert h.flow.distributor.advisor_state("sofia").value == "wrap_up"


async def test_facade_exposes_the_services(h: Harness) -> None:
    flow = h.flow
    assert flow.calls is flow.ctx.calls and flow.distributor is flow.ctx.distributor
    assert flow.flags is flow.ctx.flags and flow.skills is flow.ctx.skills
    for name in ("offers", "waiting", "ending", "consults", "inbound", "control", "events",
                 "rooms"):
        assert getattr(flow, name).ctx is flow.ctx
    seen: list[tuple[str, bool]] = []
    flow.edge_rotation = lambda worker, active: seen.append((worker, active))
    assert flow.rooms.edge_rotation is flow.edge_rotation
    await flow.set_flag("crisis", True, by="nadia")
    assert h.flow.ctx.store.flags.values() == {"crisis": True}  # stored before it counts
    assert flow.flags["crisis"] is True
    assert h.of_type("ivr.flag")[0]["data"] == {"name": "crisis", "value": True, "by": "nadia"}
    assert flow._free_calls("w1") == 4 and flow._out_of_rotation == set()


async def test_a_worker_holding_a_consult_stays_out_of_rotation_until_the_edge_fits(
    h: Harness,
) -> None:
    """Found by scripts/soak.py: w2 carried a consult for w1's call, its own caller
    hung up, and w2 went back into the edge's rotation with room for one caller; the
    edge (which counts callers, not legs) sent two, and the second caller's advisor
    could not be dialled there (PJ_ETOOMANY)."""
    seen: list[tuple[str, bool]] = []
    h.flow.edge_rotation = lambda worker, active: seen.append((worker, active))
    call_id, _ = await h.connected("sofia", worker="w1", leg="c1")
    await h.queued("w1", "c2")  # w1 is full: its waiting caller keeps a call for an advisor
    await h.incoming("w2", "c3")
    h.flow.transfer_call(call_id, "sofia", "consult", "external", "crisis_team")
    await h.settle()
    consult = h.call(call_id).consult
    assert consult.worker == "w2" and seen == [("w2", False)]

    h.leg_state("w2", "c3", "disconnected", code=200)  # w2's own caller hangs up
    await h.settle()
    # Room for one caller and an advisor, but the edge would send w2 two callers.
    assert h.flow._free_calls("w2") == 2
    assert seen == [("w2", False)] and h.flow._out_of_rotation == {"w2"}

    h.flow.consult_cancel(call_id, "sofia")
    for leg in (consult.advisor_leg, consult.target_leg):
        h.leg_state("w2", leg.leg_id, "disconnected", code=200)
    await h.settle()
    await h.settle()
    assert seen == [("w2", False), ("w2", True)] and h.flow._out_of_rotation == set()

"""The call flow without SIP: a caller answered, the IVR, offers, the advisor's phone.

Fake workers record the commands (tests/unit/controller_fakes.py); everything
else (config, bus, store, plugins, distributor, IVR engine) is real.
"""

from __future__ import annotations

import pytest

from cti.controller.calls import Leg
from cti.controller.control import CallControlError
from cti.controller.flow import CallFlow
from cti.controller.work import InboundCall
from cti.core.numbers import caller_id
from cti.routing import OfferRevoked
from tests.unit.controller_fakes import Harness


async def test_incoming_call_is_answered_without_its_call_id(h: Harness) -> None:
    call_id = await h.incoming()
    # The call id is for the advisors' phones, not for the caller's 200 OK.
    assert h.link().sent("answer") == [{"leg": "c1", "code": 200}]
    [ev] = h.of_type("call.incoming")
    assert ev["call_id"] == call_id
    assert ev["data"]["caller"] == {"number": "+34911234567", "country": "ES"}
    assert h.hooks.hooks() == ["cti_call_incoming"]
    assert h.call(call_id).state == "incoming"


async def test_ivr_digits_put_the_call_in_the_queue(h: Harness) -> None:
    call_id = await h.queued()
    call = h.call(call_id)
    assert (call.state, call.language, call.topic) == ("queued", "es", "visa")
    assert h.flow.distributor.waiting_calls() == [call_id]
    plays = h.link().sent("play")
    assert [p["play_id"] for p in plays] == ["ivr-1", "ivr-2", "ivr-3"]
    assert len(h.link().sent("stop_play")) == 2  # each digit barges in
    assert h.of_type("ivr.done")[0]["data"]["ivr_path"] == ["hours:open", "lang:es",
                                                             "topic:visa"]
    assert h.hooks.hooks() == ["cti_call_incoming", "cti_call_queued"]
    # "please hold" played: music follows while the caller waits.
    h.send("w1", event="play.done", leg="c1", play_id="ivr-3")
    await h.settle()
    assert h.link().sent("play")[-1]["play_id"] == "music"
    assert h.link().sent("play")[-1]["loop"] is True


async def test_offer_rings_the_advisor_after_the_screen_pop(h: Harness) -> None:
    call_id, advisor_leg = await h.offered("sofia")
    [offered] = h.of_type("call.offered")
    assert offered["advisor"] == "sofia" and offered["call_id"] == call_id
    assert offered["data"]["language"] == "es" and offered["data"]["topic"] == "visa"
    assert h.delivered == [("sofia", offered["seq"])]  # waited for before the dial
    [dial] = h.link().sent("dial")
    call = h.call(call_id)
    # The caller's number and what they chose, not the worker, on the advisor's phone.
    ident = caller_id(call.caller_number, "127.0.0.1", "visa", "es")
    assert dial == {"leg": advisor_leg, "uri": "sip:sofia@127.0.0.1:5060", "from": ident,
                    "headers": {"X-CTI-Call-ID": call_id, "P-Asserted-Identity": ident}}
    assert (call.state, call.advisor) == ("offered", "sofia")
    [row] = h.store.offers(call_id)
    assert row["advisor"] == "sofia" and row["outcome"] is None


async def test_advisor_answers_bridge_and_connected(h: Harness) -> None:
    call_id, advisor_leg = await h.connected("sofia")
    assert h.link().sent("bridge") == [{"a": "c1", "b": advisor_leg}]
    [ev] = h.of_type("call.connected")
    assert ev["call_id"] == call_id and ev["advisor"] == "sofia"
    assert h.hooks.hooks()[-1] == "cti_call_connected"
    assert h.call(call_id).state == "connected"
    assert h.flow.distributor.advisor_state("sofia").value == "on_call"
    assert h.store.offers(call_id)[0]["outcome"] == "accepted"


async def test_busy_advisor_puts_the_call_back_in_the_queue(h: Harness) -> None:
    call_id, first_leg = await h.offered("sofia")
    h.leg_state("w1", first_leg, "disconnected", code=486)
    await h.settle()
    # Back at the head of the queue, and sofia (still available) is rung again.
    assert [r["outcome"] for r in h.store.offers(call_id)] == ["rejected", None]
    second_leg = h.link().sent("dial")[-1]["leg"]
    assert second_leg != first_leg
    h.leg_state("w1", second_leg, "disconnected", code=486)
    await h.settle()
    # Two misses (routing.max_missed): she is away, the caller waits on.
    call = h.call(call_id)
    assert (call.state, call.advisor, call.advisor_leg) == ("queued", None, None)
    assert h.flow.distributor.waiting_calls() == [call_id]
    assert h.flow.distributor.advisor_state("sofia").value == "away"
    assert len(h.link().sent("dial")) == 2
    assert not h.of_type("call.connected")


async def test_dial_refused_by_the_worker_is_an_unreachable_offer(h: Harness) -> None:
    h.link().fail.add("dial")
    call_id, _ = await h.offered("sofia")
    assert h.call(call_id).state == "queued"
    assert h.store.offers(call_id)[0]["outcome"] == "unreachable"


async def test_reject_in_the_client_stops_the_ring(h: Harness) -> None:
    call_id, advisor_leg = await h.offered("sofia")
    h.flow.reject_offer(call_id, "sofia")
    await h.settle()
    assert h.link().sent("hangup") == [{"leg": advisor_leg}]
    assert h.store.offers(call_id)[0]["outcome"] == "rejected"
    with pytest.raises(CallControlError, match="not ringing for you"):
        h.flow.reject_offer(call_id, "michel")


async def test_revoked_offer_hangs_up_the_ringing_phone(h: Harness) -> None:
    call_id, advisor_leg = await h.offered("sofia")
    h.flow.offers.revoke(OfferRevoked(call_id, "sofia", "timeout"))
    await h.settle()
    assert h.link().sent("hangup") == [{"leg": advisor_leg}]
    assert h.call(call_id).state == "queued"
    assert h.store.offers(call_id)[0]["outcome"] == "revoked:timeout"


async def test_caller_hangs_up_while_waiting(h: Harness) -> None:
    call_id = await h.queued()
    h.leg_state("w1", "c1", "disconnected", code=200)
    await h.settle()
    assert h.flow.calls.get(call_id) is None
    assert h.flow.distributor.waiting_calls() == []
    assert h.record(call_id).end_reason == "caller_abandoned"
    assert h.of_type("call.ended")[0]["data"]["reason"] == "caller_abandoned"
    assert h.link().sent("hangup") == []  # the caller's leg is already gone


class RecordingKind:
    """A kind of work whose advisor is reached and connected differently."""

    def __init__(self) -> None:
        self.reached: list[tuple[str, str]] = []
        self.answered: list[str] = []

    async def reach_advisor(self, call: object, leg: Leg, advisor: str) -> bool:
        self.reached.append((leg.leg_id, advisor))
        return True

    def advisor_answered(self, call: object, leg: Leg) -> None:
        self.answered.append(leg.leg_id)


async def test_the_call_kind_decides_how_the_advisor_is_reached(h: Harness) -> None:
    kind = RecordingKind()
    h.flow = CallFlow(h.settings, h.pool, h.bus, h.store, h.plugins,  # type: ignore[arg-type]
                      h.prompts, h._delivered, handlers={"inbound": kind})
    call_id = await h.queued()
    h.flow.set_advisor_state("sofia", "available")
    await h.settle()
    [(advisor_leg, advisor)] = kind.reached
    assert advisor == "sofia"
    leg = h.call(call_id).advisor_leg
    assert leg is not None and leg.leg_id == advisor_leg
    assert h.link().sent("dial") == []  # the handler, not the flow, reaches the advisor
    h.leg_state("w1", advisor_leg, "confirmed")
    await h.settle()
    assert kind.answered == [advisor_leg]
    assert h.link().sent("bridge") == []
    assert h.call(call_id).state == "connected"
    assert isinstance(CallFlow(h.settings, h.pool, h.bus, h.store,  # type: ignore[arg-type]
                               h.plugins, h.prompts, h._delivered).handlers["inbound"],
                      InboundCall)

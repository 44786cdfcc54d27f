"""Calls back without SIP: queued with the caller's place in time, the advisor's
phone first, then the customer dialled through the edge, bridged when they pick
up, ``unreached`` (advisor freed) when they do not."""

from __future__ import annotations

import asyncio
import logging
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from cti.controller.calls import Call
from tests.unit.controller_fakes import Harness

NUMBER = "+34911234567"


def callback(h: Harness, enqueued_at: float | None = None) -> str:
    return h.flow.callbacks.callback(NUMBER, language="es", topic="visa",
                                     enqueued_at=enqueued_at, origin_call_id="orig-1",
                                     ivr_path=["hours:open", "lang:es", "topic:visa"])


async def test_a_call_back_keeps_the_callers_place_and_rings_the_advisor_first(
        h: Harness) -> None:
    waiting = await h.queued()  # a caller who came later than the original call
    cb = callback(h, enqueued_at=time.time() - 600)
    assert h.flow.distributor.waiting_calls() == [cb, waiting]
    assert h.flow.calls.get(cb).worker == ""  # on no worker until an advisor takes it
    h.flow.set_advisor_state("sofia", "available")
    await h.settle()
    offered = h.of_type("call.offered")[-1]
    assert offered["call_id"] == cb and offered["advisor"] == "sofia"
    assert offered["data"]["flags"]["callback"] is True
    assert offered["data"]["ivr_path"] == ["hours:open", "lang:es", "topic:visa"]
    call = h.call(cb)
    assert call.worker in ("w1", "w2") and call.customer.worker == call.worker
    [ring] = h.link(call.worker).sent("dial")[-1:]
    assert ring["uri"] == "sip:sofia@127.0.0.1:5060"
    assert ring["headers"] == {"X-CTI-Call-ID": cb}
    # Sofia answers: now the customer is dialled through the edge.
    h.leg_state(call.worker, ring["leg"], "confirmed")
    await h.settle()
    dial = h.link(call.worker).sent("dial")[-1]
    assert dial["leg"] == call.customer.leg_id
    assert dial["uri"] == f"sip:{NUMBER}@127.0.0.1:5060"
    assert dial["headers"] == {"X-CTI-Call-ID": cb}
    assert not h.link(call.worker).sent("bridge")
    h.leg_state(call.worker, call.customer.leg_id, "confirmed")
    await h.settle()
    assert h.link(call.worker).sent("bridge")[-1] == {"a": call.customer.leg_id,
                                                       "b": ring["leg"]}
    assert h.of_type("call.reached")[-1]["call_id"] == cb
    h.leg_state(call.worker, call.customer.leg_id, "disconnected", code=200)
    await h.settle()
    record = h.record(cb)
    assert (record.kind, record.origin_call_id, record.end_reason, record.advisor) == (
        "callback", "orig-1", "caller_hangup", "sofia")


async def test_a_customer_who_does_not_pick_up_ends_it_unreached_and_frees_the_advisor(
        h: Harness) -> None:
    cb = callback(h)
    call, advisor_leg = await _advisor_answered(h, cb)
    h.leg_state(call.worker, call.customer.leg_id, "disconnected", code=486)
    await h.settle()
    assert h.record(cb).end_reason == "unreached"
    hung = [c["leg"] for c in h.link(call.worker).sent("hangup")]
    assert advisor_leg in hung  # the advisor's phone is hung up
    assert h.flow.distributor.advisor_call("sofia") is None
    ended = [v for name, v in h.hooks.seen if name == "cti_call_ended"]
    assert ended[-1].end_reason == "unreached" and ended[-1].kind == "callback"


@pytest.fixture
def quick_ring(tmp_path: Path) -> Iterator[Harness]:
    """A flow whose callees ring 0.05 s at most (routing.callee_ring_s)."""
    harness = Harness(tmp_path, routing={"callee_ring_s": 0.05})
    yield harness
    harness.close()


async def test_a_customer_who_rings_on_and_on_is_hung_up_after_callee_ring_s(
        quick_ring: Harness) -> None:
    h = quick_ring
    cb = callback(h)
    call, advisor_leg = await _advisor_answered(h, cb)
    h.leg_state(call.worker, call.customer.leg_id, "early")  # ringing
    while not any(c["leg"] == call.customer.leg_id
                  for c in h.link(call.worker).sent("hangup")):
        await asyncio.sleep(0.01)  # the ring limit is the gateway's own timer
    h.leg_state(call.worker, call.customer.leg_id, "disconnected", code=487)
    await h.settle()
    assert h.record(cb).end_reason == "unreached"
    assert h.flow.distributor.advisor_call("sofia") is None


async def test_a_customer_who_picks_up_in_time_is_not_hung_up(quick_ring: Harness) -> None:
    h = quick_ring
    cb = callback(h)
    call, _ = await _advisor_answered(h, cb)
    h.leg_state(call.worker, call.customer.leg_id, "confirmed")
    await h.settle()
    await asyncio.sleep(0.1)
    assert not any(c["leg"] == call.customer.leg_id
                   for c in h.link(call.worker).sent("hangup"))
    assert h.call(cb).reached_at is not None


async def test_a_waiting_call_back_is_cancelled_without_commands(h: Harness) -> None:
    cb = callback(h)
    assert h.flow.callbacks.cancel(cb, by="nadia") is True
    assert h.record(cb).end_reason == "cancelled"
    assert all(not link.commands for link in h.pool.links.values())
    assert h.flow.callbacks.cancel(cb) is False
    assert h.flow.distributor.waiting_calls() == []


async def test_no_worker_with_room_fails_the_offer_and_the_call_back_waits(h: Harness) -> None:
    for link in h.pool.links.values():
        link.up = False
    cb = callback(h)
    h.flow.set_advisor_state("sofia", "available")
    await h.settle()
    assert h.call(cb).state == "queued" and h.call(cb).worker == ""


async def _advisor_answered(h: Harness, cb: str) -> tuple[Call, str]:
    """Sofia takes the call back ``cb`` and answers; returns it and her leg's id."""
    h.flow.set_advisor_state("sofia", "available")
    await h.settle()
    call = h.call(cb)
    ring = h.link(call.worker).sent("dial")[-1]
    h.leg_state(call.worker, ring["leg"], "confirmed")
    await h.settle()
    return call, ring["leg"]


async def _reached(h: Harness, greeting: tuple[str, ...]) -> tuple[Call, str]:
    """A call back with ``greeting``: the advisor answers, then the customer."""
    cb = h.flow.callbacks.callback(NUMBER, language="es", topic="visa", greeting=greeting)
    call, advisor_leg = await _advisor_answered(h, cb)
    h.leg_state(call.worker, call.customer.leg_id, "confirmed")
    await h.settle()
    return call, advisor_leg


def _greeting_prompt(h: Harness, lang: str = "es") -> None:
    path = h.prompts.cache_dir / lang / "callbacks.greeting.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 80)


async def test_the_customer_hears_the_greeting_in_the_calls_language_then_is_bridged(
        h: Harness) -> None:
    _greeting_prompt(h)
    call, advisor_leg = await _reached(h, ("callbacks.greeting",))
    link = h.link(call.worker)
    [play] = link.sent("play")
    assert play["leg"] == call.customer.leg_id and play["loop"] is False
    assert play["file"].endswith("es/callbacks.greeting.wav")
    assert h.of_type("call.reached")[-1]["call_id"] == call.call_id  # on pick-up
    [prompt] = [e for e in h.of_type("ivr.prompt") if e["call_id"] == call.call_id]
    assert prompt["data"]["kind"] == "greeting"
    assert prompt["data"]["prompts"] == ["es/callbacks.greeting"]
    assert not link.sent("bridge") and not h.of_type("call.bridged")
    # Another play's end (none here, but e.g. a stray one) does not bridge.
    h.send(call.worker, event="play.done", leg=call.customer.leg_id, play_id="music")
    await h.settle()
    assert not link.sent("bridge")
    h.send(call.worker, event="play.done", leg=call.customer.leg_id,
           play_id=play["play_id"])
    await h.settle()
    assert link.sent("bridge") == [{"a": call.customer.leg_id, "b": advisor_leg}]
    [bridged] = h.of_type("call.bridged")
    assert bridged["data"] == {"number": NUMBER, "greeted": True}
    assert bridged["advisor"] == "sofia"
    assert not [c for c, f in link.commands if c == "play" and f.get("loop")]  # no music


async def test_without_a_greeting_the_customer_is_bridged_at_once(h: Harness) -> None:
    call, advisor_leg = await _reached(h, ())
    link = h.link(call.worker)
    assert not link.sent("play")
    assert link.sent("bridge") == [{"a": call.customer.leg_id, "b": advisor_leg}]
    assert h.of_type("call.bridged")[-1]["data"] == {"number": NUMBER, "greeted": False}


async def test_a_missing_greeting_prompt_is_left_out_not_the_call(
        h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    _greeting_prompt(h, "en")  # not in Spanish, the call's language
    with caplog.at_level(logging.WARNING, logger="cti.flow"):
        call, advisor_leg = await _reached(h, ("callbacks.greeting",))
    link = h.link(call.worker)
    assert not link.sent("play")
    assert link.sent("bridge") == [{"a": call.customer.leg_id, "b": advisor_leg}]
    assert h.of_type("call.reached")[-1]["call_id"] == call.call_id
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert call.call_id in warning.getMessage()
    assert "es/callbacks.greeting.wav" in warning.getMessage()


async def test_a_customer_hanging_up_during_the_greeting_ends_it_reached(h: Harness) -> None:
    _greeting_prompt(h)
    call, advisor_leg = await _reached(h, ("callbacks.greeting",))
    worker, play = call.worker, h.link(call.worker).sent("play")[-1]
    h.leg_state(worker, call.customer.leg_id, "disconnected", code=200)
    await h.settle()
    h.send(worker, event="play.done", leg=call.customer.leg_id, play_id=play["play_id"])
    await h.settle()
    assert not h.link(worker).sent("bridge")
    assert h.record(call.call_id).end_reason == "caller_hangup"
    assert advisor_leg in [c["leg"] for c in h.link(worker).sent("hangup")]


async def test_an_advisor_hanging_up_during_the_greeting_ends_the_call(h: Harness) -> None:
    _greeting_prompt(h)
    call, advisor_leg = await _reached(h, ("callbacks.greeting",))
    worker = call.worker
    h.leg_state(worker, advisor_leg, "disconnected", code=200)
    await h.settle()
    assert h.record(call.call_id).end_reason == "advisor_hangup"
    assert call.customer.leg_id in [c["leg"] for c in h.link(worker).sent("hangup")]
    assert not h.link(worker).sent("bridge") and not h.of_type("call.bridged")


async def test_a_customer_put_on_hold_during_the_greeting_is_bridged_when_taken_back(
        h: Harness) -> None:
    _greeting_prompt(h)
    call, advisor_leg = await _reached(h, ("callbacks.greeting",))
    link, play = h.link(call.worker), h.link(call.worker).sent("play")[-1]
    h.flow.control.hold_call(call.call_id, "sofia", True)
    h.send(call.worker, event="play.done", leg=call.customer.leg_id,
           play_id=play["play_id"])  # a late end of the greeting: no bridge while held
    await h.settle()
    assert not link.sent("bridge")
    h.flow.control.hold_call(call.call_id, "sofia", False)
    await h.settle()
    assert link.sent("bridge") == [{"a": call.customer.leg_id, "b": advisor_leg}]


def test_a_greeting_is_a_sequence_of_prompt_keys(h: Harness) -> None:
    with pytest.raises(ValueError, match="greeting"):
        h.flow.callbacks.callback(NUMBER, language="es", topic="visa",
                                  greeting="callbacks.greeting")

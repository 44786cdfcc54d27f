"""The callbacks plugin end to end (issue 10, part 3): a caller who waits with no
advisor available is offered a call back, presses 1, confirms their number, chooses
"as soon as possible" and hears "we will call you back"; the call ends, the request
is in the store, and a call back is queued with the original call's place in time.
An advisor who becomes available is rung first; the customer's number cannot reach
a carrier from the test edge, so each attempt ends unreached: retried once, then
the request ends unreached."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.gateway_harness import (
    REPO,
    Advisor,
    bus_event,
    hotline_uri,
    running_gateway,
    until,
)
from tests.peers.phone import Phone

pytestmark = pytest.mark.e2e

NUMBER = "+442071230001"


def callback_settings() -> dict[str, Any]:
    return {"callbacks": {"offer_after_s": 1, "no_input_s": 15, "hangup_after_s": 0.5,
                          "retry_after_s": 0.2, "max_attempts": 2,
                          "window_start": "00:00", "window_end": "24:00"}}


async def event_of(gw: Any, match: Callable[[dict[str, Any]], bool],  # noqa: ANN401
                   timeout: float = 20) -> dict[str, Any]:
    """The first bus event that matches, past or coming."""
    past = [e for e in gw.bus.since(0) if match(e)]
    return past[0] if past else await gw.bus.wait_for(match, timeout)


async def prompted(gw: Any, call_id: str, first: str) -> list[str]:  # noqa: ANN401
    """The prompts of the first play to the caller that starts with ``first``."""
    ev = await event_of(gw, lambda e: e["type"] == "ivr.prompt" and e["call_id"] == call_id
                        and e["data"]["prompts"][:1] == [first])
    return list(ev["data"]["prompts"])


async def test_a_waiting_caller_asks_to_be_called_back_and_keeps_their_place(
    tmp_path: Path, short_prompts: Path,
) -> None:
    async with running_gateway(
            tmp_path, plugins=callback_settings(),
            prompts={"texts": str(REPO / "config" / "prompts.yaml"),
                     "cache_dir": str(REPO / "var" / "prompts"),
                     "override_dir": str(short_prompts)}) as gw, \
            Advisor(gw, "michel") as michel, Phone(name=NUMBER) as caller:
        leg = uuid.uuid4().hex
        await caller.command("dial", leg=leg, uri=hotline_uri(gw))
        await caller.wait_for("leg.state", leg=leg, state="confirmed", timeout=10)
        await caller.wait_for("leg.media", leg=leg, active=True, timeout=10)
        incoming = await event_of(gw, lambda e: e["type"] == "call.incoming"
                                  and e["data"]["caller"]["number"] == NUMBER)
        call_id = incoming["call_id"]
        # English, travel advice; nobody is available (michel is logged in, away).
        await until(lambda: _node_prompted(gw, call_id, "lang"))
        await caller.command("send_dtmf", leg=leg, digits="2", method="rfc2833")
        await until(lambda: _node_prompted(gw, call_id, "topic"))
        await caller.command("send_dtmf", leg=leg, digits="3", method="rfc2833")
        queued = await event_of(gw, lambda e: e["type"] == "call.queued"
                                and e["call_id"] == call_id)
        queued_at = gw.flow.calls.get(call_id).queued_at
        assert queued["data"]["topic"] == "travel_advice"

        # After offer_after_s: "press 1 to be called back; you keep your place".
        await prompted(gw, call_id, "en/callbacks.offer")
        await caller.command("send_dtmf", leg=leg, digits="1", method="rfc2833")
        readback = await prompted(gw, call_id, "en/callbacks.number_is")
        digits = "".join(p.rsplit("_", 1)[-1] for p in readback[1:-1])
        assert digits == "00" + NUMBER[1:] and readback[-1] == "en/callbacks.confirm"
        await caller.command("send_dtmf", leg=leg, digits="1", method="rfc2833")
        await prompted(gw, call_id, "en/callbacks.when")
        await caller.command("send_dtmf", leg=leg, digits="1", method="rfc2833")
        await prompted(gw, call_id, "en/callbacks.done")
        store = gw.plugin_services["callbacks"].store
        # Stored before "we will call you back" was played.
        [row] = store.query(f"SELECT * FROM {store.prefix}requests")
        assert (row["number"], row["origin_call_id"], row["language"], row["topic"]) == (
            NUMBER, call_id, "en", "travel_advice")
        assert row["enqueued_at"] == queued_at
        requested = await bus_event(gw, "callback.requested")
        assert requested["data"]["when"] == "asap" and requested["call_id"] == call_id

        # The call ends; the call back waits in the caller's place in time.
        ended = await event_of(gw, lambda e: e["type"] == "call.ended"
                               and e["call_id"] == call_id)
        assert ended["data"]["reason"] == "callback_requested"
        await caller.wait_for("leg.state", leg=leg, state="disconnected", timeout=10)
        [row] = store.query(f"SELECT * FROM {store.prefix}requests")
        first = row["call_id"]
        back = gw.flow.calls.get(first)
        assert (back.kind, back.state, back.queued_at, back.origin_call_id) == (
            "callback", "queued", queued_at, call_id)
        assert back.flags["callback_id"] == row["callback_id"]
        assert gw.flow.distributor.waiting_calls() == [first]

        # Michel becomes available: his phone rings first (answered); the customer
        # is dialled through the edge, which reaches no carrier: unreached.
        for attempt, cb_call in enumerate([first, None], start=1):
            await michel.set_state("available")
            ring = await michel.phone.wait_for("leg.incoming", timeout=15)
            cb_call = cb_call or ring["headers"]["x-cti-call-id"]
            assert ring["headers"]["x-cti-call-id"] == cb_call
            assert attempt == 1 or cb_call != first  # the retry is a new call back
            await michel.phone.command("answer", leg=ring["leg"], code=200)
            done = await event_of(gw, lambda e, c=cb_call: e["type"] == "call.ended"
                                  and e["call_id"] == c)
            assert done["data"]["reason"] == "unreached"
            tried = await event_of(gw, lambda e, n=attempt: e["type"] == "callback.attempted"
                                   and e["data"]["attempt"] == n)
            assert tried["data"]["advisor"] == "michel"
            if attempt == 1:  # tried again in its place, after retry_after_s
                assert tried["data"]["retry_at"] is not None
                await until(lambda: _queued_again(gw, store, first))
            else:
                assert tried["data"]["retry_at"] is None
        unreached = await bus_event(gw, "callback.unreached")
        assert unreached["data"] == {"callback_id": row["callback_id"], "number": NUMBER,
                                     "attempts": 2}
        [row] = store.query(f"SELECT * FROM {store.prefix}requests")
        assert (row["status"], row["attempts"]) == ("unreached", 2)
        mine = await michel.http.get("/api/v1/plugins/callbacks/mine",
                                     headers={"Authorization": f"Bearer {michel.token}"})
        assert mine.status_code == 200 and [m["callback_id"] for m in mine.json()] == [
            row["callback_id"]]


def _node_prompted(gw: Any, call_id: str, node: str) -> bool:  # noqa: ANN401
    return any(e["type"] == "ivr.prompt" and e["call_id"] == call_id
               and e["data"].get("node") == node for e in gw.bus.since(0))


def _queued_again(gw: Any, store: Any, first: str) -> bool:  # noqa: ANN401
    rows = store.query(f"SELECT call_id, status FROM {store.prefix}requests")
    return bool(rows) and rows[0]["status"] == "queued" and rows[0]["call_id"] != first

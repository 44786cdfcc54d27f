"""The IVR with real calls: language guessed first, no input, invalid digits, SIP INFO,
and position announcements that match the distributor."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.gateway_harness import (
    Advisor,
    bus_event,
    call_hotline,
    ivr_gateway,
    running_gateway,
)
from tests.peers.phone import Phone

pytestmark = pytest.mark.e2e


def _events(gw, type_: str, call_id: str | None = None) -> list[dict]:  # noqa: ANN001
    return [e for e in gw.bus.since(0)
            if e["type"] == type_ and (call_id is None or e["call_id"] == call_id)]


async def test_a_spanish_number_hears_the_spanish_offer_first(
    tmp_path: Path, short_prompts: Path,
) -> None:
    async with ivr_gateway(tmp_path, short_prompts) as gw, Phone(name="+34911234567") as caller:
        await call_hotline(caller, gw)
        first = await bus_event(gw, "ivr.prompt", kind="menu")
        assert first["data"]["prompts"][:3] == ["es/welcome", "es/language_offer",
                                                 "nl/language_offer"]


async def test_no_input_reaches_the_default_queue_in_the_guessed_language(
    tmp_path: Path, short_prompts: Path,
) -> None:
    # Silences retried like wrong keys (the demo config instead takes the default
    # after one silence: test_silent_caller_is_offered_to_an_advisor).
    async with ivr_gateway(tmp_path, short_prompts, digit_timeout_s=0.5, max_retries=1,
                           silent_retries=None, silent_skips_menus=False) as gw, \
            Phone(name="+905321234567") as caller:
        await call_hotline(caller, gw)
        done = await bus_event(gw, "ivr.done", timeout=20)
        assert done["data"]["language"] == "tr"
        assert done["data"]["topic"] == gw.settings.ivr.default_topic
        assert done["data"]["ivr_path"] == ["hours:open", "lang:timeout->tr", "topic:timeout->travel_advice"]
        kinds = [e["data"]["prompts"][0] for e in _events(gw, "ivr.prompt", done["call_id"])]
        assert "tr/no_input" in kinds  # one retry before the default
        assert gw.flow.distributor.waiting_calls() == [done["call_id"]]  # queued, not hung up


async def test_an_invalid_digit_gets_the_retry_prompt(tmp_path: Path, short_prompts: Path) -> None:
    async with ivr_gateway(tmp_path, short_prompts) as gw, Phone(name="+442079460123") as caller:
        leg = await call_hotline(caller, gw, "7")
        retry = await bus_event(gw, "ivr.prompt", timeout=10,
                            prompts=["en/invalid", "en/language_offer", "nl/language_offer",
                                     "es/language_offer", "tr/language_offer"])
        inputs = _events(gw, "ivr.input", retry["call_id"])
        assert [(e["data"]["digit"], e["data"]["stage"]) for e in inputs] == [("7", "lang")]
        for d in "23":
            await caller.command("send_dtmf", leg=leg, digits=d)
        done = await bus_event(gw, "ivr.done")
        assert done["data"]["ivr_path"] == ["hours:open", "lang:en", "topic:travel_advice"]


async def test_sip_info_digits_work_like_rfc2833(tmp_path: Path, short_prompts: Path) -> None:
    async with ivr_gateway(tmp_path, short_prompts) as gw, Phone(name="+34911234567") as caller:
        leg = await call_hotline(caller, gw)
        await caller.command("send_dtmf", leg=leg, digits="3", method="info")
        await bus_event(gw, "ivr.input", digit="3")
        await caller.command("send_dtmf", leg=leg, digits="2", method="info")
        done = await bus_event(gw, "ivr.done")
        assert (done["data"]["language"], done["data"]["topic"]) == ("es", "visa")
        assert {e["data"]["method"] for e in _events(gw, "ivr.input")} == {"info"}


async def test_position_announcements_match_the_distributor(
    tmp_path: Path, short_prompts: Path,
) -> None:
    async with ivr_gateway(tmp_path, short_prompts, announce_first_s=0.5, announce_every_s=1) as gw, \
            Advisor(gw, "sofia") as sofia, \
            Phone(name="+34911234567") as first, Phone(name="+34911234568") as second:
        await sofia.set_state("away")  # logged in, not free: the wait can be estimated
        await call_hotline(first, gw, "32")
        call1 = (await bus_event(gw, "ivr.done"))["call_id"]
        await call_hotline(second, gw, "32")
        call2 = (await gw.bus.wait_for(
            lambda e: e["type"] == "ivr.done" and e["call_id"] != call1, 15))["call_id"]
        ann = await gw.bus.wait_for(
            lambda e: e["type"] == "ivr.prompt" and e["call_id"] == call2
            and e["data"]["kind"] == "announcement", 10)
        d = gw.flow.distributor
        assert ann["data"]["position"] == d.position(call2) == 2
        expected = d.expected_wait_s(call2)
        assert ann["data"]["expected_wait_s"] == pytest.approx(expected, abs=1)
        minutes = -(-int(expected) // 60)
        assert ann["data"]["prompts"] == ["es/position_intro", "es/number_2", "es/wait_intro",
                                          f"es/number_{minutes}", "es/minutes"]
        first_ann = [e for e in _events(gw, "ivr.prompt", call1)
                     if e["data"]["kind"] == "announcement"]
        assert first_ann and first_ann[0]["data"]["position"] == 1


async def test_outside_opening_hours_the_caller_hears_closed_and_is_hung_up(
    tmp_path: Path, short_prompts: Path,
) -> None:
    closed_all_week = {"timezone": "Europe/Amsterdam", "days": {}}
    async with ivr_gateway(tmp_path, short_prompts, opening_hours=closed_all_week) as gw, \
            Phone(name="+34911234567") as caller:
        leg = await call_hotline(caller, gw)
        prompt = await bus_event(gw, "ivr.prompt")
        assert prompt["data"]["prompts"] == ["es/welcome", "es/closed"]
        await caller.wait_for("leg.state", leg=leg, state="disconnected", timeout=10)
        ended = await bus_event(gw, "call.ended")
        assert ended["data"]["reason"] == "closed"
        assert gw.store.get_call(ended["call_id"]).ivr_path == ["hours:closed"]


async def test_a_crisis_notice_follows_the_welcome(tmp_path: Path, short_prompts: Path) -> None:
    async with ivr_gateway(tmp_path, short_prompts, notice="crisis_notice") as gw, \
            Phone(name="+442079460123") as caller:
        await call_hotline(caller, gw)
        prompt = await bus_event(gw, "ivr.prompt")
        assert prompt["data"]["prompts"][:3] == ["en/welcome", "en/crisis_notice",
                                                  "en/language_offer"]


async def test_silent_caller_is_offered_to_an_advisor(tmp_path: Path) -> None:
    """The demo's own prompts and timeouts: a caller who presses nothing is queued
    after one silence (the guessed language, the default topic) and offered.
    tests/unit/test_silent_caller.py computes that this takes <= 25 s of IVR."""
    async with running_gateway(tmp_path) as gw, Advisor(gw, "emre") as emre, \
            Phone(name="+905321234567") as caller:
        await emre.set_state("available")
        await call_hotline(caller, gw)  # presses nothing
        done = await bus_event(gw, "ivr.done", timeout=40)
        assert done["data"]["ivr_path"] == ["hours:open", "lang:timeout->tr",
                                            "topic:silent->travel_advice"]
        offered = await emre.stream.wait_for("call.offered", timeout=10)
        assert offered["call_id"] == done["call_id"]
        assert (offered["data"]["language"], offered["data"]["topic"]) == \
            ("tr", "travel_advice")
        kinds = {p for e in _events(gw, "ivr.prompt", done["call_id"])
                 for p in e["data"]["prompts"]}
        assert "tr/topic_menu" not in kinds and "tr/no_input" not in kinds
        incoming = await emre.phone.wait_for("leg.incoming", timeout=10)
        await emre.phone.command("answer", leg=incoming["leg"], code=200)
        connected = await emre.stream.wait_for("call.connected", call_id=done["call_id"])
        first = next(e for e in gw.bus.since(0) if e["type"] == "call.incoming"
                     and e["call_id"] == done["call_id"])
        print(f"silent caller: offered {offered['ts'] - first['ts']:.1f} s after "
              f"call.incoming, connected {connected['ts'] - first['ts']:.1f} s")

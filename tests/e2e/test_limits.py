"""Dead calls end and one address cannot take the hotline (issue 12): real edge, real workers.

Silent callers are raw SIP user agents (tests/peers/rawsip.py): they send INVITE
and ACK, answer the worker's BYE, and never send a single RTP packet. Each binds
its own loopback address (all of 127.0.0.0/8 is local on Linux), so the
per-source limit of the edge does not stop them.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path
from typing import Any

import pytest

from cti.controller.gateway import Gateway
from tests.e2e.gateway_harness import hotline_uri, running_gateway, until
from tests.peers.phone import Phone
from tests.peers.rawsip import Dialog, SipMessage, SipUA

pytestmark = pytest.mark.e2e

# > 5 s: a pjsua peer with VAD sends a silent frame every 5 s while quiet (measured:
# the test phones, idle, survive an 8 s timeout and are cut by a 3 s one).
RTP_TIMEOUT_S = 7
PER_SOURCE = 2
ATTEMPTS_PER_MINUTE = 5


def _ended(gw: Gateway, reason: str) -> list[dict[str, Any]]:
    return [e for e in gw.bus.since(0)
            if e["type"] == "call.ended" and e["data"].get("reason") == reason]


def _silent_call(ua: SipUA, gw: Gateway) -> tuple[Dialog, SipMessage]:
    """INVITE the hotline, ACK the 200; no RTP will ever follow (blocking: run in a thread)."""
    dialog = ua.send_invite(hotline_uri(gw), from_user=f"+3161234{ua.port % 10000:04d}")
    return dialog, ua.wait_invite(dialog, timeout=15)


def _wait_bye(ua: SipUA, call_id: str, timeout: float, answer: bool) -> SipMessage:
    """Wait for the BYE of a dialog; answer it 200, or not (a peer that is gone).

    Blocking: run in a thread."""
    bye = ua.recv(timeout, lambda m: not m.is_response and m.method == "BYE"
                  and m.call_id == call_id)
    if answer:
        ua.send(ua.response_to(bye, 200, "OK"))
    return bye


async def _dial(caller: Phone, gw: Gateway) -> str:
    leg = uuid.uuid4().hex
    await caller.command("dial", leg=leg, uri=hotline_uri(gw))
    return leg


async def _outcome(caller: Phone, leg: str, timeout: float = 15) -> dict[str, Any]:
    """The first final state of a leg: confirmed, or disconnected with its code."""
    waits = [asyncio.ensure_future(caller.wait_for("leg.state", leg=leg, state=s, timeout=timeout))
             for s in ("confirmed", "disconnected")]
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for p in pending:
        p.cancel()
    return done.pop().result()


async def test_silent_callers_time_out_and_one_address_is_limited(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, workers=2, workers__rtp_timeout_s=RTP_TIMEOUT_S,
                               sip__max_calls_per_source=PER_SOURCE,
                               sip__call_attempts_per_source_per_minute=ATTEMPTS_PER_MINUTE) as gw, \
            contextlib.AsyncExitStack() as st:
        edge = (gw.settings.sip.ip, gw.settings.sip.port)
        # 1. Four callers from four addresses take every customer slot and go silent.
        uas = [st.enter_context(SipUA(edge, local=(f"127.0.0.{11 + i}", 0), user=f"silent{i}"))
               for i in range(4)]
        answers = await asyncio.gather(*(asyncio.to_thread(_silent_call, ua, gw) for ua in uas))
        assert [reply.status for _, reply in answers] == [200] * 4
        # Two of them still answer SIP (their audio broke), two are gone altogether
        # and never answer the BYE: their slots must come back all the same.
        byes = [asyncio.ensure_future(asyncio.to_thread(
            _wait_bye, ua, dialog.call_id, RTP_TIMEOUT_S + 20, i < 2))
            for i, (ua, (dialog, _)) in enumerate(zip(uas, answers, strict=True))]

        async with Phone(name="+442079460001") as caller:
            # While they hold the slots, a normal caller is refused by the edge.
            refused = await _outcome(caller, await _dial(caller, gw))
            assert (refused["state"], refused["code"]) == ("disconnected", 503)

            # 2. The RTP timeout ends all four: each got a BYE, each call ended
            # with the reason, and their slots are free again (at the edge too).
            await asyncio.gather(*byes)
            await until(lambda: len(_ended(gw, "rtp_timeout")) == 4, timeout=10)
            await until(lambda: len(gw.flow.calls) == 0)
            answered = await _outcome(caller, await _dial(caller, gw))
            assert answered["state"] == "confirmed"

            # 3. Per source: a second call from 127.0.0.1 is answered, a third is
            # refused by the edge, and so are attempts beyond the limit a minute;
            # a caller from 127.0.0.2 is answered.
            second = await _outcome(caller, await _dial(caller, gw))
            assert second["state"] == "confirmed"
            third = await _outcome(caller, await _dial(caller, gw))
            assert (third["state"], third["code"]) == ("disconnected", 486)
            # Attempts: that was the 4th INVITE from 127.0.0.1 this minute, the 5th
            # is still only busy, the 6th is over the attempt limit.
            fifth = await _outcome(caller, await _dial(caller, gw))
            assert (fifth["state"], fifth["code"]) == ("disconnected", 486)
            sixth = await _outcome(caller, await _dial(caller, gw))
            assert (sixth["state"], sixth["code"]) == ("disconnected", 503)
            async with Phone(name="+442079460002", ip="127.0.0.2") as other:
                theirs = await _outcome(other, await _dial(other, gw))
                assert theirs["state"] == "confirmed"

"""Caller ID: the advisor's phone shows the caller's number, not the media worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.gateway_harness import Advisor, call_hotline, running_gateway
from tests.peers.phone import Phone

pytestmark = pytest.mark.e2e


async def test_the_advisor_sees_the_callers_number_in_from_and_pai(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw, Advisor(gw, "sofia") as sofia, \
            Phone(name="+34911234567") as caller:
        await sofia.set_state("available")
        await call_hotline(caller, gw, "31")  # Español, passport
        offered = await sofia.stream.wait_for("call.offered", timeout=20)
        incoming = await sofia.phone.wait_for("leg.incoming", timeout=10)
        expected = f'"+34 911 23 45 67 · passport · es" <sip:+34911234567@{gw.settings.sip.ip}>'
        assert incoming["from"] == expected
        headers = incoming["headers"]
        assert headers["p-asserted-identity"] == expected
        assert headers["x-cti-call-id"] == offered["call_id"]
        assert "w1@" not in headers["from"] and "w2@" not in headers["from"]
        await sofia.phone.command("answer", leg=incoming["leg"], code=200)
        await sofia.stream.wait_for("call.connected", call_id=offered["call_id"])

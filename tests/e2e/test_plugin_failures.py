"""Acceptance 3: a plugin that raises in every hook cannot stop a call. The call goes
through end to end with audio both ways; each failure is counted in /metrics and
logged with the call id."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from cti.hookspecs import hookimpl
from tests.audio import tone_present, write_tone
from tests.e2e.gateway_harness import (
    Advisor,
    call_hotline,
    hear_each_other,
    running_gateway,
)
from tests.peers.phone import Phone

pytestmark = pytest.mark.e2e

CALL_HOOKS = ("cti_call_incoming", "cti_ivr_extend", "cti_call_priority", "cti_call_routing",
              "cti_call_queued", "cti_call_offered", "cti_screen_pop", "cti_call_connected",
              "cti_call_ended", "cti_event")


class Raising:
    """Raises in every hook a call goes through."""

    def _boom(self, *args: Any) -> None:
        raise RuntimeError("this plugin is broken")

    @hookimpl
    def cti_call_incoming(self, call: Any) -> None:
        self._boom()

    @hookimpl
    def cti_ivr_extend(self, call: Any, flow: str) -> None:
        self._boom()

    @hookimpl
    def cti_ivr_branch(self, call: Any, question: str) -> None:
        self._boom()

    @hookimpl
    def cti_call_priority(self, call: Any) -> None:
        self._boom()

    @hookimpl
    def cti_call_routing(self, call: Any) -> None:
        self._boom()

    @hookimpl
    def cti_call_queued(self, call: Any) -> None:
        self._boom()

    @hookimpl
    def cti_call_escalated(self, call: Any, step: int) -> None:
        self._boom()

    @hookimpl
    def cti_call_max_wait(self, call: Any) -> None:
        self._boom()

    @hookimpl
    def cti_call_offered(self, call: Any, advisor: str) -> None:
        self._boom()

    @hookimpl
    def cti_screen_pop(self, call: Any) -> None:
        self._boom()

    @hookimpl
    def cti_call_connected(self, call: Any) -> None:
        self._boom()

    @hookimpl
    def cti_call_ended(self, call: Any) -> None:
        self._boom()

    @hookimpl
    def cti_event(self, event: Any) -> None:
        self._boom()

    @hookimpl
    def cti_shutdown(self) -> None:
        self._boom()


async def test_a_plugin_that_raises_everywhere_cannot_stop_a_call(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caller_tone, advisor_tone = 440.0, 1000.0
    write_tone(tmp_path / "caller.wav", caller_tone, 30)
    write_tone(tmp_path / "team.wav", advisor_tone, 30)
    caplog.set_level(logging.ERROR, logger="cti.plugins")
    async with running_gateway(tmp_path, extra_plugins={"raising": Raising()}) as gw, Advisor(gw, "sofia") as sofia, \
            Phone(name="+34911234567") as caller:
        await sofia.set_state("available")
        leg = await call_hotline(caller, gw, "32")
        offered = await sofia.stream.wait_for("call.offered", timeout=20)
        call_id = offered["call_id"]
        assert offered["data"]["plugins"] == {}  # the broken one added nothing
        incoming = await sofia.phone.wait_for("leg.incoming", timeout=10)
        await sofia.phone.command("answer", leg=incoming["leg"], code=200)
        await sofia.stream.wait_for("call.connected", call_id=call_id)
        await sofia.phone.wait_for("leg.media", leg=incoming["leg"], active=True)
        heard_by_caller, heard_by_sofia = await hear_each_other(
            tmp_path, caller, leg, sofia.phone, incoming["leg"], "broken-plugin")
        assert tone_present(heard_by_caller, advisor_tone, min_seconds=1.0)
        assert tone_present(heard_by_sofia, caller_tone, min_seconds=1.0)
        await caller.command("hangup", leg=leg)
        ended = await sofia.stream.wait_for("call.ended", call_id=call_id)
        assert ended["data"]["reason"] == "caller_hangup"
        assert gw.store.get_call(call_id).advisor == "sofia"

        s = gw.settings
        async with httpx.AsyncClient(base_url=f"http://{s.http.host}:{s.http.port}") as http:
            metrics = (await http.get("/metrics")).text
            health = (await http.get("/api/v1/health")).json()
        assert health["plugins"]["raising"]["errors"] >= len(CALL_HOOKS)
        counted = {m.group(1): float(m.group(2)) for m in re.finditer(
            r'^cti_plugin_errors_total\{plugin="raising",hook="(\w+)"\} (\S+)$', metrics, re.M)}
        for hook in CALL_HOOKS:
            assert counted.get(hook, 0) >= 1, (hook, counted)
        assert counted["cti_event"] > 5  # once per event
        logged = [r.getMessage() for r in caplog.records]
        for hook in ("cti_call_incoming", "cti_call_connected", "cti_call_ended"):
            assert any(f"plugin=raising hook={hook} call_id={call_id}" in m for m in logged), hook

"""Acceptance 5: the third-party example (examples/cti-plugin-hello, installed as its
own distribution with an entry point) enabled in a gateway: its routes obey the one
role table, its hook acts on a real call, its event validates against its schema."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.gateway_harness import Advisor, bus_event, call_hotline, running_gateway
from tests.event_schema import event_errors
from tests.peers.phone import Phone

pytestmark = pytest.mark.e2e

VIP = "+34911234567"


async def test_the_example_plugins_route_role_and_event(tmp_path: Path) -> None:
    plugins = {"crisis_line": {}, "hello": {"vip_numbers": [VIP], "priority": 40}}
    async with running_gateway(tmp_path, plugins=plugins) as gw, \
            Advisor(gw, "sofia") as sofia, Phone(name=VIP) as caller:
        s = gw.settings
        base = f"http://{s.http.host}:{s.http.port}"
        async with httpx.AsyncClient(base_url=base) as http:
            async def auth(user: str) -> dict[str, str]:
                r = await http.post("/api/v1/login",
                                    json={"username": user, "password": f"demo-{user}"})
                return {"Authorization": f"Bearer {r.json()['token']}"}

            nadia = await auth("nadia")
            url = "/api/v1/plugins/hello/vips"
            assert (await http.get(url)).status_code == 401
            assert (await http.get(url, headers={"Authorization": "Bearer x"})).status_code == 401
            assert (await http.get(url, headers=sofia_auth(sofia))).status_code == 403
            assert (await http.post(url, json={"number": "+3161"},
                                    headers=sofia_auth(sofia))).status_code == 403
            listed = (await http.get(url, headers=nadia)).json()
            assert [v["number"] for v in listed] == [VIP]

            # A VIP's call: flagged, its priority, the plugin's event (schema-checked).
            await call_hotline(caller, gw, "32")
            event = await bus_event(gw, "hello.vip_call", number=VIP)
            assert event_errors(event, gw.bus.types.schemas) == []
            assert event_errors({**event, "data": {"number": 5}}, gw.bus.types.schemas)
            queued = await bus_event(gw, "call.queued")
            assert queued["data"]["priority"] == 40
            assert gw.flow.calls.get(queued["call_id"]).flags["vip"] is True
            listed = (await http.get(url, headers=nadia)).json()
            assert listed[0]["calls_today"] == 1


def sofia_auth(sofia: Advisor) -> dict[str, str]:
    return {"Authorization": f"Bearer {sofia.token}"}

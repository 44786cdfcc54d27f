"""Issue 13, acceptance 7: an admin adds an advisor through the API with a password
and skills; the new advisor registers a phone and takes a call without a restart;
the change is audited and survives a restart; a removed advisor can no longer log
in or register. Real edge, workers and phones."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from cti.controller.gateway import Gateway
from tests.e2e.gateway_harness import Advisor, call_hotline, running_gateway
from tests.peers.phone import Phone

pytestmark = pytest.mark.e2e

SPANISH_CALLER = "+34911234567"
LUCIA = {"name": "lucia", "display_name": "Lucía", "role": "advisor",
         "password": "demo-lucia", "languages": {"es": 5}, "topics": {"visa": 4},
         "trainings": {}}


def client(gw: Gateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://{gw.settings.http.host}:{gw.settings.http.port}")


async def login(http: httpx.AsyncClient, user: str, password: str | None = None) -> httpx.Response:
    return await http.post("/api/v1/login", json={"username": user,
                                                  "password": password or f"demo-{user}"})


async def bearer(http: httpx.AsyncClient, user: str) -> dict[str, str]:
    r = await login(http, user)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def register(gw: Gateway, name: str, password: str) -> dict[str, Any]:
    """One REGISTER with a digest password: the edge's answer."""
    s = gw.settings
    async with Phone(name=name) as phone:
        await phone.command("register", user=name, password=password,
                            registrar=f"sip:{s.sip.ip}:{s.sip.port}", transport="udp")
        return await phone.wait_for("reg.state", timeout=10)


async def test_an_advisor_added_through_the_api_works_at_once_and_after_a_restart(
        tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw, client(gw) as http:
        ada = await bearer(http, "ada")
        # Only an admin manages advisors; a supervisor may not.
        nadia = await bearer(http, "nadia")
        assert (await http.post("/api/v1/admin/advisors", json=LUCIA,
                                headers=nadia)).status_code == 403
        # Refused: a short password, an unknown topic (nothing stored, nothing audited).
        short = await http.post("/api/v1/admin/advisors", headers=ada,
                                json={**LUCIA, "password": "short"})
        assert short.status_code == 422, short.text
        typo = await http.post("/api/v1/admin/advisors", headers=ada,
                               json={**LUCIA, "topics": {"vísa": 4}})
        assert typo.status_code == 422 and "unknown topic" in typo.text
        assert (await login(http, "lucia")).status_code == 401

        r = await http.post("/api/v1/admin/advisors", json=LUCIA, headers=ada)
        assert r.status_code == 201, r.text
        assert r.json()["state"] == "logged_out" and r.json()["languages"] == {"es": 5}
        assert (await http.post("/api/v1/admin/advisors", json=LUCIA,
                                headers=ada)).status_code == 409

        # No restart: her phone registers with the new password, she logs in,
        # becomes available and answers a Spanish visa call.
        async with Advisor(gw, "lucia") as lucia, Phone(name=SPANISH_CALLER) as caller:
            assert lucia.registration["code"] == 200
            await lucia.set_state("available")
            leg = await call_hotline(caller, gw, "32")  # Español, visa
            incoming = await lucia.phone.wait_for("leg.incoming", timeout=20)
            await lucia.phone.command("answer", leg=incoming["leg"], code=200)
            connected = await lucia.stream.wait_for("call.connected")
            assert connected["advisor"] == "lucia"
            await caller.command("hangup", leg=leg)
            await lucia.stream.wait_for("call.ended", call_id=connected["call_id"])

        lines = (await http.get("/api/v1/audit", params={"action": "advisor.add"},
                                headers=ada)).json()
        assert len(lines) == 1 and lines[0]["who"] == "ada"
        assert lines[0]["details"]["advisor"] == "lucia"
        assert lines[0]["details"]["topics"] == {"visa": 4}
        # Never the password, nor a hash of it.
        dumped = json.dumps(lines)
        assert "demo-lucia" not in dumped and "argon2" not in dumped
        assert "sip_ha1" not in dumped

        # A new password: the old one logs in no more.
        r = await http.patch("/api/v1/admin/advisors/lucia", headers=ada,
                             json={"password": "lucia-new-secret", "topics": {"visa": 5}})
        assert r.status_code == 200 and r.json()["topics"] == {"visa": 5}
        assert (await login(http, "lucia")).status_code == 401
        assert (await login(http, "lucia", "lucia-new-secret")).status_code == 200
        r = await http.patch("/api/v1/admin/advisors/lucia", headers=ada,
                             json={"password": "demo-lucia"})
        assert r.status_code == 200

    async with running_gateway(tmp_path) as gw, client(gw) as http:  # the same store
        ada = await bearer(http, "ada")
        listed = {a["name"]: a for a in (await http.get("/api/v1/admin/advisors",
                                                        headers=ada)).json()}
        assert listed["lucia"]["display_name"] == "Lucía"
        assert listed["lucia"]["topics"] == {"visa": 5} and "sofia" in listed
        assert "password_hash" not in listed["lucia"]
        async with Advisor(gw, "lucia") as lucia:  # logs in and registers
            assert lucia.registration["code"] == 200
            await lucia.set_state("available")
            assert gw.flow.distributor.advisor_state("lucia").value == "available"
            await lucia.set_state("away")

            # Removed: logged out, her token ends, her phone can no longer register.
            r = await http.delete("/api/v1/admin/advisors/lucia", headers=ada)
            assert r.status_code == 204, r.text
            me = await lucia.http.get("/api/v1/agents/me",
                                      headers={"Authorization": f"Bearer {lucia.token}"})
            assert me.status_code == 401
            # Her open WebSocket is closed too (its token is checked every second).
            assert lucia.stream is not None and lucia.stream._task is not None
            await asyncio.wait_for(lucia.stream._task, 10)
            assert lucia.stream._ws.close_code == 4401
            assert "lucia" not in gw.flow.distributor.advisor_names()
            assert not await gw.rpc.registered("lucia") if gw.rpc else False
        assert (await login(http, "lucia")).status_code == 401
        assert (await register(gw, "lucia", "demo-lucia"))["code"] == 401
        assert [x["action"] for x in (await http.get(
            "/api/v1/audit", params={"action": "advisor.remove"}, headers=ada)).json()] == [
            "advisor.remove"]

        # A config advisor removed through the API stays removed (the YAML is the seed).
        assert (await http.delete("/api/v1/admin/advisors/emre",
                                  headers=ada)).status_code == 204
        assert (await login(http, "emre")).status_code == 401

    async with running_gateway(tmp_path) as gw, client(gw) as http:
        assert (await login(http, "lucia")).status_code == 401
        assert (await login(http, "emre")).status_code == 401
        assert "emre" not in gw.flow.distributor.advisor_names()
        assert (await register(gw, "emre", "demo-emre"))["code"] == 401
        assert (await login(http, "sofia")).status_code == 200

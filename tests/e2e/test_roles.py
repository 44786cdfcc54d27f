"""Acceptance 1: no route or WebSocket message is reachable without a valid token
of the right role. The routes are enumerated from ``app.routes``: a new route
without a rule in cti/api/roles.py fails here (and is refused at run time)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import Route

from cti.api.app import create_app
from cti.api.commands import COMMANDS
from cti.api.roles import DOC_PATHS, WS_COMMAND_ROLES, WS_PATH, route_rules
from cti.controller.gateway import Gateway
from tests.e2e.gateway_harness import Advisor, call_hotline, running_gateway
from tests.peers.phone import Phone

pytestmark = pytest.mark.e2e

SPANISH_CALLER = "+34911234567"


def app_routes(gw: Gateway) -> list[tuple[str, str]]:
    """(method, path) of every HTTP route of the app; fails on an unknown kind."""
    found: list[tuple[str, str]] = []
    for route in create_app(gw).routes:
        if isinstance(route, APIRoute):
            found += [(m, route.path) for m in sorted(route.methods)]
        elif isinstance(route, APIWebSocketRoute):
            assert route.path == WS_PATH, f"a WebSocket route without rules: {route.path}"
        elif isinstance(route, Route) and route.path in DOC_PATHS:
            continue  # FastAPI's own docs: no data, no actions
        else:
            pytest.fail(f"a route of an unknown kind, no access rule: {route!r}")
    return found


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: {"name": "sofia"}.get(m.group(1), "no-such-call"),
                  path)


async def login(http: httpx.AsyncClient, user: str) -> dict[str, str]:
    r = await http.post("/api/v1/login", json={"username": user, "password": f"demo-{user}"})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def send(http: httpx.AsyncClient, method: str, path: str,
               headers: dict[str, str] | None = None) -> httpx.Response:
    body = {} if method in ("POST", "PUT", "PATCH") else None
    return await http.request(method, concrete(path), json=body, headers=headers or {})


async def test_every_route_has_a_rule_and_the_rule_holds(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw:
        routes = app_routes(gw)
        table = route_rules(r.rules for r in gw.plugin_routers)
        missing = [r for r in routes if r not in table]
        assert not missing, f"routes without a role rule in cti/api/roles.py: {missing}"
        stale = [r for r in table if r not in routes]
        assert not stale, f"rules for routes that do not exist: {stale}"

        base = f"http://{gw.settings.http.host}:{gw.settings.http.port}"
        async with httpx.AsyncClient(base_url=base) as http:
            sofia, nadia = await login(http, "sofia"), await login(http, "nadia")
            ines = await login(http, "ines")  # a coach: recordings only
            ada = await login(http, "ada")  # an admin: who works here
            checked = 0
            for method, path in routes:
                rule = table[(method, path)]
                anonymous = await send(http, method, path)
                if rule in ("public", "local_or_supervisor"):
                    # Public, or /metrics from this host (the tests run on it).
                    assert anonymous.status_code not in (401, 403), (method, path)
                    continue
                assert anonymous.status_code == 401, (method, path, anonymous.text)
                bad = await send(http, method, path, {"Authorization": "Bearer forged"})
                assert bad.status_code == 401, (method, path)
                if path.endswith("/logout"):
                    continue  # checked below: it would end the tokens used here
                as_sofia = await send(http, method, path, sofia)
                as_nadia = await send(http, method, path, nadia)
                as_ines = await send(http, method, path, ines)
                if rule == "supervisor":
                    assert as_sofia.status_code == 403, (method, path, as_sofia.text)
                    assert as_ines.status_code == 403, (method, path, as_ines.text)
                    assert as_nadia.status_code not in (401, 403), (method, path)
                elif rule == "advisor":
                    assert as_nadia.status_code == 403, (method, path, as_nadia.text)
                    assert as_ines.status_code == 403, (method, path, as_ines.text)
                    assert as_sofia.status_code not in (401, 403), (method, path)
                elif rule == "admin":
                    for refused in (as_sofia, as_nadia, as_ines):
                        assert refused.status_code == 403, (method, path, refused.text)
                    # (a name nobody has: an admin's DELETE of sofia would remove her)
                    as_ada = await http.request(
                        method, concrete(path).replace("/sofia", "/nobody"), headers=ada,
                        json={} if method in ("POST", "PATCH") else None)
                    assert as_ada.status_code not in (401, 403), (method, path)
                elif rule == "coach":
                    assert as_sofia.status_code == 403, (method, path, as_sofia.text)
                    assert as_ines.status_code not in (401, 403), (method, path)
                    assert as_nadia.status_code not in (401, 403), (method, path)
                else:
                    assert rule == "user"
                    assert as_sofia.status_code not in (401, 403), (method, path)
                    assert as_nadia.status_code not in (401, 403), (method, path)
                checked += 1
            assert checked >= 20

            # An unknown call is a 404 for everyone, never someone's data.
            r = await http.post("/api/v1/calls/no-such-call/hangup", headers=nadia)
            assert r.status_code == 404

            # Logout ends the token.
            throwaway = await login(http, "sofia")
            assert (await http.post("/api/v1/logout", headers=throwaway)).status_code == 204
            assert (await http.get("/api/v1/agents/me", headers=throwaway)).status_code == 401

            # Expired tokens: every token is refused once its TTL has passed.
            ttl = gw.settings.http.token_ttl_s
            gw.auth.clock = lambda: time.time() + ttl + 1
            assert (await http.get("/api/v1/agents/me", headers=sofia)).status_code == 401
            assert (await http.get("/api/v1/routing", headers=nadia)).status_code == 401
            ws_url = base.replace("http", "ws") + WS_PATH
            token = nadia["Authorization"].split()[1]
            with pytest.raises(websockets.ConnectionClosed) as closed:
                async with websockets.connect(f"{ws_url}?token={token}") as ws:
                    await ws.recv()
            assert closed.value.rcvd.code == 4401
            gw.auth.clock = time.time


async def test_metrics_from_another_host_needs_a_supervisor_token(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw:
        # The same app, as a client on another host would reach it.
        app = create_app(gw)
        transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://cti") as http:
            assert (await http.get("/metrics")).status_code == 401
            sofia, nadia = await login(http, "sofia"), await login(http, "nadia")
            ines = await login(http, "ines")  # a coach: recordings only
            assert (await http.get("/metrics", headers=sofia)).status_code == 403
            assert (await http.get("/metrics", headers=ines)).status_code == 403
            r = await http.get("/metrics", headers=nadia)
            assert r.status_code == 200 and "cti_worker_up" in r.text


async def test_websocket_needs_a_token_and_commands_check_roles(tmp_path: Path) -> None:
    assert set(WS_COMMAND_ROLES) == set(COMMANDS), "every WebSocket command needs a rule"
    async with running_gateway(tmp_path) as gw:
        s = gw.settings
        base = f"http://{s.http.host}:{s.http.port}"
        ws_url = f"ws://{s.http.host}:{s.http.port}{WS_PATH}"
        for url in (ws_url, f"{ws_url}?token=forged"):
            with pytest.raises(websockets.ConnectionClosed) as closed:
                async with websockets.connect(url) as ws:
                    await ws.recv()
            assert closed.value.rcvd.code == 4401

        async with httpx.AsyncClient(base_url=base) as http:
            tokens = {u: (await login(http, u))["Authorization"].split()[1]
                      for u in ("sofia", "nadia")}
        args: dict[str, dict[str, Any]] = {
            "state": {"state": "available"}, "hold": {"on": True}, "recording": {"paused": True},
            "transfer": {"kind": "blind", "target_type": "queue", "target": "visa"},
            "wrap_up": {"code": "info_given", "note": ""},
        }
        for user, token in tokens.items():
            async with websockets.connect(f"{ws_url}?token={token}") as ws:
                assert json.loads(await ws.recv())["type"] == "hello"
                for i, (cmd, rule) in enumerate(WS_COMMAND_ROLES.items()):
                    body = {"id": i, "cmd": cmd, **args.get(cmd, {})}
                    if cmd not in ("ping", "state"):
                        body["call_id"] = "no-such-call"
                    await ws.send(json.dumps(body))
                    reply = await next_reply(ws, i)
                    if rule == "advisor" and user == "nadia":
                        assert reply == {"type": "reply", "id": i, "ok": False,
                                         "error": f"{cmd}: advisors only"}
                    elif cmd == "ping" or (cmd == "state" and user == "sofia"):
                        assert reply["ok"] is True, reply
                    else:  # no such call: refused whoever asks
                        assert reply["ok"] is False and "no such call" in reply["error"], reply
                await ws.send("not json")
                assert (await next_reply(ws, None))["error"] == "not JSON"
                await ws.send(json.dumps({"id": "x", "cmd": "launch"}))
                assert (await next_reply(ws, "x"))["error"].startswith("unknown cmd 'launch'")
                await ws.send(json.dumps({"id": "y", "cmd": "hold", "call_id": "c"}))
                assert (await next_reply(ws, "y"))["error"] == "on: Field required"


async def next_reply(ws: Any, id_: Any) -> dict[str, Any]:
    """The next reply on the socket (events and heartbeats in between are skipped)."""
    while True:
        msg = json.loads(await ws.recv())
        if msg.get("type") == "reply":
            assert msg["id"] == id_, msg
            return msg


async def test_an_advisor_cannot_reach_another_advisors_call(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw, \
            Advisor(gw, "sofia") as sofia, Advisor(gw, "michel") as michel, \
            Phone(name=SPANISH_CALLER) as caller:
        await sofia.set_state("available")
        await michel.set_state("available")
        await call_hotline(caller, gw, "32")
        offered = await sofia.stream.wait_for("call.offered", timeout=20)
        call_id = offered["call_id"]
        incoming = await sofia.phone.wait_for("leg.incoming", timeout=10)
        await sofia.phone.command("answer", leg=incoming["leg"], code=200)
        await sofia.stream.wait_for("call.connected", call_id=call_id)

        as_michel = {"Authorization": f"Bearer {michel.token}"}
        http = michel.http
        assert (await http.get("/api/v1/calls", headers=as_michel)).json() == []
        for method, path, body in [
            ("GET", f"/api/v1/calls/{call_id}", None),
            ("POST", f"/api/v1/calls/{call_id}/hangup", None),
            ("POST", f"/api/v1/calls/{call_id}/hold", {"on": True}),
            ("POST", f"/api/v1/calls/{call_id}/transfer",
             {"kind": "blind", "target_type": "queue", "target": "visa"}),
            ("POST", f"/api/v1/calls/{call_id}/consult/complete", None),
            ("POST", f"/api/v1/calls/{call_id}/consult/cancel", None),
            ("POST", f"/api/v1/calls/{call_id}/offer/accept", None),
            ("POST", f"/api/v1/calls/{call_id}/offer/reject", None),
            ("POST", f"/api/v1/calls/{call_id}/wrap-up", {"code": "info_given", "note": "x"}),
        ]:
            r = await http.request(method, path, json=body, headers=as_michel)
            assert r.status_code == 404, (path, r.status_code, r.text)

        # The same over michel's WebSocket: every call command is refused.
        s = gw.settings
        url = f"ws://{s.http.host}:{s.http.port}{WS_PATH}?token={michel.token}"
        async with websockets.connect(url) as ws:
            await ws.recv()
            for i, (cmd, extra) in enumerate([
                ("hangup", {}), ("hold", {"on": True}), ("consult.complete", {}),
                ("consult.cancel", {}), ("offer.accept", {}), ("offer.reject", {}),
                ("transfer", {"kind": "blind", "target_type": "queue", "target": "visa"}),
                ("wrap_up", {"code": "info_given", "note": ""}),
            ]):
                await ws.send(json.dumps({"id": i, "cmd": cmd, "call_id": call_id, **extra}))
                reply = await next_reply(ws, i)
                assert reply["ok"] is False and reply["error"] == "no such call", (cmd, reply)
        # Michel saw nothing of sofia's call; the call is untouched.
        assert not [e for e in michel.stream.events if e.get("call_id") == call_id]
        assert gw.flow.calls.get(call_id).state == "connected"

        # Sofia hangs up her own call over the WebSocket.
        sofia_url = f"ws://{s.http.host}:{s.http.port}{WS_PATH}?token={sofia.token}"
        async with websockets.connect(sofia_url) as ws:
            await ws.recv()
            await ws.send(json.dumps({"id": 7, "cmd": "hangup", "call_id": call_id}))
            assert (await next_reply(ws, 7))["ok"] is True
        ended = await sofia.stream.wait_for("call.ended", call_id=call_id)
        assert ended["data"]["reason"] == "hangup_by_advisor"

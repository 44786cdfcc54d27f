"""REST and WebSocket basics against a running gateway: auth, bad input, replay."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import websockets

from tests.e2e.gateway_harness import EventStream, running_gateway

pytestmark = pytest.mark.e2e


async def test_login_state_and_websocket_replay(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, routing__state_follows_phone=False) as gw:  # no phone
        base = f"http://{gw.settings.http.host}:{gw.settings.http.port}"
        ws_base = base.replace("http", "ws") + "/api/v1/ws"
        async with httpx.AsyncClient(base_url=base) as http:
            bad = await http.post("/api/v1/login", json={"username": "sofia", "password": "x"})
            assert bad.status_code == 401
            unknown = await http.post("/api/v1/login",
                                      json={"username": "nobody", "password": "x"})
            assert unknown.status_code == 401
            assert (await http.post("/api/v1/login", json={"user": "sofia"})).status_code == 422
            assert (await http.post("/api/v1/agents/me/state",
                                    json={"state": "available"})).status_code == 401

            r = await http.post("/api/v1/login",
                                json={"username": "sofia", "password": "demo-sofia"})
            token = r.json()["token"]
            auth = {"Authorization": f"Bearer {token}"}
            bad_state = await http.post("/api/v1/agents/me/state", json={"state": "dancing"},
                                        headers=auth)
            assert bad_state.status_code == 422
            assert (await http.get("/api/v1/agents/me", headers=auth)).json()["state"] == \
                "logged_out"

            # A bad token: the socket is closed with 4401.
            with pytest.raises(websockets.ConnectionClosed) as closed:
                async with websockets.connect(f"{ws_base}?token=nope") as ws:
                    await ws.recv()
            assert closed.value.rcvd.code == 4401

            # Events while disconnected are replayed with `since`, in order, once.
            first = EventStream(f"{ws_base}?token={token}")
            hello = await first.connect()
            await first.close()
            for state in ("available", "away", "available"):
                r = await http.post("/api/v1/agents/me/state", json={"state": state},
                                    headers=auth)
                assert r.json()["state"] == state
            again = EventStream(f"{ws_base}?token={token}&since={hello['last_seq']}")
            hello2 = await again.connect()
            assert hello2["replay_complete"] is True
            await again.wait_for("agent.state", state="available")
            states = [e["data"]["state"] for e in again.events]
            seqs = [e["seq"] for e in again.events]
            assert states == ["available", "away", "available"]
            assert seqs == sorted(set(seqs)) and seqs[0] > hello["last_seq"]
            await again.close()

            # Header auth works too.
            async with websockets.connect(ws_base, additional_headers=auth) as ws:
                assert json.loads(await ws.recv())["user"] == "sofia"


async def test_supervisor_edits_skills_live_and_sees_the_routing_picture(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw:
        base = f"http://{gw.settings.http.host}:{gw.settings.http.port}"
        async with httpx.AsyncClient(base_url=base) as http:
            async def login(user: str) -> dict[str, str]:
                r = await http.post("/api/v1/login",
                                    json={"username": user, "password": f"demo-{user}"})
                return {"Authorization": f"Bearer {r.json()['token']}"}

            nadia, emre = await login("nadia"), await login("emre")
            body = {"languages": {"tr": 5, "ar": 2}, "topics": {"digid": 4},
                    "trainings": {"crisis": "2020-01-01"}}
            # An advisor may not edit skills or read the floor.
            assert (await http.put("/api/v1/advisors/emre/skills", json=body,
                                   headers=emre)).status_code == 403
            assert (await http.get("/api/v1/routing", headers=emre)).status_code == 403
            bad = await http.put("/api/v1/advisors/emre/skills", headers=nadia,
                                 json={**body, "languages": {"tr": 9}})
            assert bad.status_code == 422
            assert (await http.put("/api/v1/advisors/nobody/skills", json=body,
                                   headers=nadia)).status_code == 404

            r = await http.put("/api/v1/advisors/emre/skills", json=body, headers=nadia)
            assert r.status_code == 200
            assert r.json()["languages"] == {"tr": 5, "ar": 2}
            profile = gw.flow.distributor.advisor_profile("emre")
            assert profile.topics == {"digid": 4}
            assert profile.valid_trainings(0) == {"crisis"}
            assert profile.valid_trainings(1_600_000_000) == set()  # expired in 2020

            floor = (await http.get("/api/v1/routing", headers=nadia)).json()
            names = {a["name"]: a for a in floor["advisors"]}
            assert names["emre"]["languages"] == {"tr": 5, "ar": 2}
            listing = (await http.get("/api/v1/advisors", headers=nadia)).json()
            assert {a["name"] for a in listing} >= {"michel", "dalia", "sofia", "emre", "nadia"}

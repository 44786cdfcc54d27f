"""State that survives a restart: a flag and an advisor's skills set through the
API are there again in a new gateway on the same store, and the audit has the
lines of both runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from cti.controller.gateway import Gateway
from tests.e2e.gateway_harness import EventStream, running_gateway

pytestmark = pytest.mark.e2e

SKILLS = {"languages": {"tr": 5, "ar": 2}, "topics": {"digid": 4},
          "trainings": {"crisis": "2031-01-01"}}


async def login(http: httpx.AsyncClient, user: str) -> dict[str, str]:
    r = await http.post("/api/v1/login", json={"username": user, "password": f"demo-{user}"})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def client(gw: Gateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://{gw.settings.http.host}:{gw.settings.http.port}")


async def audit(http: httpx.AsyncClient, auth: dict[str, str], **q: Any) -> list[dict[str, Any]]:
    """The audit without the gateway's own start and stop lines."""
    r = await http.get("/api/v1/audit", params=q, headers=auth)
    assert r.status_code == 200, r.text
    return [a for a in r.json() if not a["action"].startswith("gateway.")]


async def test_flags_skills_and_audit_survive_a_restart(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw, client(gw) as http:
        assert gw.flow.flags.get("crisis") is False
        nadia = await login(http, "nadia")
        token = nadia["Authorization"].split()[1]
        s = gw.settings
        stream = EventStream(f"ws://{s.http.host}:{s.http.port}/api/v1/ws?token={token}")
        await stream.connect()
        r = await http.put("/api/v1/ivr/flags/crisis", json={"value": True}, headers=nadia)
        assert r.status_code == 200 and r.json()["crisis"] is True
        # Announced only once stored: the event comes after the commit.
        await stream.wait_for("ivr.flag", name="crisis", value=True)
        await stream.close()
        assert (await http.put("/api/v1/ivr/flags/bad name!", json={"value": True},
                               headers=nadia)).status_code in (404, 422)
        r = await http.put("/api/v1/advisors/emre/skills", json=SKILLS, headers=nadia)
        assert r.status_code == 200, r.text
        # A failed edit (unknown advisor) is neither applied nor audited.
        assert (await http.put("/api/v1/advisors/nobody/skills", json=SKILLS,
                               headers=nadia)).status_code == 404
        first = await audit(http, nadia)
        assert [x["action"] for x in first] == ["skills.set", "flag.set"]
        emre = await login(http, "emre")
        assert (await http.get("/api/v1/audit", headers=emre)).status_code == 403

    async with running_gateway(tmp_path) as gw, client(gw) as http:  # same store path
        assert gw.flow.flags["crisis"] is True  # over the config's crisis: false
        profile = gw.flow.distributor.advisor_profile("emre")
        assert profile.languages == {"tr": 5, "ar": 2} and profile.topics == {"digid": 4}
        assert profile.valid_trainings(0) == {"crisis"}
        michel = gw.flow.distributor.advisor_profile("michel")
        assert michel.topics == {"passport": 4, "digid": 3, "travel_advice": 3}  # config
        nadia = await login(http, "nadia")
        flags = (await http.get("/api/v1/ivr/flags", headers=nadia)).json()
        assert flags["crisis"] is True
        listing = {a["name"]: a for a in (await http.get("/api/v1/advisors",
                                                         headers=nadia)).json()}
        assert listing["emre"]["languages"] == {"tr": 5, "ar": 2}
        assert listing["emre"]["trainings"] == {"crisis": "2031-01-01"}

        # This run's change goes on top of the first run's lines.
        r = await http.put("/api/v1/ivr/flags/crisis", json={"value": False}, headers=nadia)
        assert r.json()["crisis"] is False
        lines = await audit(http, nadia)
        assert [x["action"] for x in lines] == ["flag.set", "skills.set", "flag.set"]
        assert lines[1:] == first
        flag_on, flag_off = lines[2], lines[0]
        assert flag_on["who"] == "nadia" and flag_on["details"] == {"name": "crisis",
                                                                   "value": True}
        assert flag_on["address"] == "127.0.0.1" and flag_off["details"]["value"] is False
        skills = lines[1]
        assert skills["details"]["advisor"] == "emre"
        assert skills["details"]["languages"] == SKILLS["languages"]
        only = await audit(http, nadia, action="skills.set")
        assert [x["id"] for x in only] == [skills["id"]]
        assert await audit(http, nadia, since=flag_off["at"]) == [flag_off]
        assert len(await audit(http, nadia, limit=1)) == 1
        assert (await http.get("/api/v1/audit", params={"limit": 0},
                               headers=nadia)).status_code == 422


async def test_logins_and_chosen_states_survive_a_restart(tmp_path: Path) -> None:
    # No phones here: the state is the chosen one, not the one the phone sets.
    async with running_gateway(tmp_path, routing__state_follows_phone=False) as gw, \
            client(gw) as http:
        sofia, michel, emre = [await login(http, n) for n in ("sofia", "michel", "emre")]
        r = await http.post("/api/v1/agents/me/state", headers=sofia,
                            json={"state": "away", "reason": "lunch"})
        assert r.status_code == 200, r.text
        assert (await http.post("/api/v1/agents/me/state", headers=michel,
                                json={"state": "available"})).status_code == 200
        assert (await http.post("/api/v1/logout", headers=emre)).status_code == 204
        # The token is in the store as a hash only.
        assert not any(emre["Authorization"].split()[1] in str(row)
                       for row in gw.store.sessions.live(0))

    async with running_gateway(tmp_path, routing__state_follows_phone=False) as gw, \
            client(gw) as http:  # same store
        me = await http.get("/api/v1/agents/me", headers=sofia)
        assert me.status_code == 200, me.text  # still logged in
        advisors = {a["name"]: a for a in gw.flow.distributor.snapshot(0)["advisors"]}
        assert (me.json()["state"], advisors["sofia"]["reason"]) == ("away", "lunch")
        assert (await http.get("/api/v1/agents/me", headers=michel)).json()["state"] == (
            "available")
        assert (await http.get("/api/v1/agents/me", headers=emre)).status_code == 401

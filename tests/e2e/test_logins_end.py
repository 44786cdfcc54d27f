"""An admin's new password or removal of an advisor ends what their old logins
gave: the API token (also after a restart: the stored session goes) and the
browser phone's SIP credentials (REGISTER refused, the page's binding dropped)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.gateway_harness import running_gateway
from tests.e2e.test_webrtc_edge import (
    _api,
    _login,
    _phone,
    _register,
    browser_advisors,
    until_async,
)

pytestmark = pytest.mark.e2e


async def test_a_new_password_ends_the_old_logins_and_their_browser_phone(
        tmp_path: Path) -> None:
    async with running_gateway(tmp_path, webrtc__enabled=True,
                               advisors=browser_advisors("sofia", "emre")) as gw, \
            await _api(gw.settings) as http:
        s = gw.settings
        ada = await _login(http, "ada")
        sofia = await _login(http, "sofia")
        creds = await _phone(http, sofia)
        assert await _register(s, creds) == 200
        # Emre's logins are not sofia's: they stay.
        emre = await _login(http, "emre")
        assert (await http.get("/agents/me", headers=emre)).status_code == 200

        r = await http.patch("/admin/advisors/sofia", headers=ada,
                             json={"password": "sofia-new-secret"})
        assert r.status_code == 200, r.text
        assert (await http.get("/agents/me", headers=sofia)).status_code == 401
        await until_async(lambda: _register(s, creds), 401)
        assert gw.rpc is not None
        await until_async(lambda: gw.rpc.registered("sofia"), False)  # type: ignore[union-attr]
        assert (await http.get("/agents/me", headers=emre)).status_code == 200
        # The new password logs in and gets a phone that works.
        r = await http.post("/login", json={"username": "sofia",
                                            "password": "sofia-new-secret"})
        assert r.status_code == 200
        fresh = await _phone(http, {"Authorization": f"Bearer {r.json()['token']}"})
        assert await _register(s, fresh) == 200

    async with running_gateway(tmp_path, webrtc__enabled=True,
                               advisors=browser_advisors("sofia", "emre")) as gw, \
            await _api(gw.settings) as http:
        # The ended session did not come back with the restart; emre's did.
        assert (await http.get("/agents/me", headers=sofia)).status_code == 401
        assert (await http.get("/agents/me", headers=emre)).status_code == 200


async def test_a_removed_advisors_browser_phone_stops_registering(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, webrtc__enabled=True,
                               advisors=browser_advisors("sofia")) as gw, \
            await _api(gw.settings) as http:
        s = gw.settings
        ada = await _login(http, "ada")
        creds = await _phone(http, await _login(http, "sofia"))
        assert await _register(s, creds) == 200
        assert (await http.delete("/admin/advisors/sofia", headers=ada)).status_code == 204
        await until_async(lambda: _register(s, creds), 401)

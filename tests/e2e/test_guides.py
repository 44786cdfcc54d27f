"""Issue 13: topic guides (the guides plugin) in the screen pop, in the caller's
language; supervisors edit them live, audited, stored across a restart."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.gateway_harness import (
    Advisor,
    call_hotline,
    running_gateway,
)
from tests.peers.phone import Phone

pytestmark = pytest.mark.e2e

BASE = "/api/v1/plugins/guides/guides"


async def _token(http: httpx.AsyncClient, name: str) -> dict[str, str]:
    r = await http.post("/api/v1/login", json={"username": name, "password": f"demo-{name}"})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def test_the_digid_pop_carries_the_guide_in_the_callers_language(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw, Advisor(gw, "michel") as michel, \
            Phone(name="+34911234567") as caller:
        await michel.set_state("available")
        leg = await call_hotline(caller, gw, "34")  # Spanish, DigiD
        offered = await michel.stream.wait_for("call.offered", timeout=20)
        guide = offered["data"]["plugins"]["guides"]
        assert (guide["topic"], guide["language"], guide["source"]) == ("digid", "es", "file")
        assert guide["markdown"].startswith("# DigiD desde el extranjero")
        await caller.command("hangup", leg=leg)


async def test_supervisors_edit_guides_live_audited_and_kept_over_a_restart(
        tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw:
        s = gw.settings
        async with httpx.AsyncClient(base_url=f"http://{s.http.host}:{s.http.port}") as http:
            nadia, sofia = await _token(http, "nadia"), await _token(http, "sofia")
            listed = (await http.get(BASE, headers=sofia)).json()
            assert {(g["topic"], g["language"]) for g in listed} >= {
                ("digid", "nl"), ("digid", "en"), ("digid", "es"), ("digid", "tr")}

            text = "# Visa\n1. Check the **visa checker** first.\n"
            r = await http.put(f"{BASE}/visa/es", headers=sofia, json={"markdown": text})
            assert r.status_code == 403  # advisors read, supervisors edit
            for path, body in ((f"{BASE}/vissa/es", {"markdown": text}),
                               (f"{BASE}/visa/xx", {"markdown": text}),
                               (f"{BASE}/visa/es", {"markdown": "bad \x00 text"}),
                               (f"{BASE}/visa/es", {"markdown": "x" * 9000}),
                               (f"{BASE}/visa/es", {"markdown": ""})):
                r = await http.put(path, headers=nadia, json=body)
                assert r.status_code == 422, (path, r.text)
            r = await http.put(f"{BASE}/visa/es", headers=nadia, json={"markdown": text})
            assert r.status_code == 200, r.text
            assert r.json()["source"] == "edited" and r.json()["updated_by"] == "nadia"
            audit = (await http.get("/api/v1/audit", headers=nadia)).json()
            entries = audit if isinstance(audit, list) else audit["entries"]
            assert any(a["action"] == "plugin.guides.guide.edit" and a["who"] == "nadia"
                       for a in entries), entries

    # After a restart (the same store) the edit is still there.
    async with running_gateway(tmp_path) as gw:
        s = gw.settings
        async with httpx.AsyncClient(base_url=f"http://{s.http.host}:{s.http.port}") as http:
            nadia = await _token(http, "nadia")
            got = (await http.get(f"{BASE}/visa/es", headers=nadia)).json()
            assert (got["markdown"], got["source"]) == (text, "edited")
            # Reverted: DigiD es has a file, so reverting it gives the file back.
            r = await http.put(f"{BASE}/digid/es", headers=nadia, json={"markdown": "# new"})
            assert r.status_code == 200
            r = await http.delete(f"{BASE}/digid/es", headers=nadia)
            assert r.status_code == 204
            got = (await http.get(f"{BASE}/digid/es", headers=nadia)).json()
            assert got["source"] == "file" and got["markdown"].startswith("# DigiD desde")

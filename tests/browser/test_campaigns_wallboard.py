"""Campaigns on the wallboard, in Chromium: a supervisor uploads a CSV (a bad one is
refused with its line), watches the campaign's progress change live as it is
paused, resumed and stopped, and exports the outcomes."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Floor, login, screenshot
from tests.e2e.gateway_harness import bus_event

pytestmark = pytest.mark.e2e

GOOD = ("number,name,language,note\n+442071230001,Ann Smith,en,stranded in Lima\n"
        "+442071230002,Bob Jones,,\n+81312345678,Chiyo Sato,en,\n")


def test_upload_watch_and_export_a_campaign(page: Page, floor: Floor, tmp_path: Path) -> None:
    bad, good = tmp_path / "bad.csv", tmp_path / "peru.csv"
    bad.write_text("number,name\n+442071230001,Ann\n12345,Bob\n")
    good.write_text(GOOD)
    login(page, floor, "/wallboard", "nadia")
    panel = page.get_by_test_id("campaigns-panel")
    expect(panel).to_be_visible()
    expect(page.get_by_test_id("campaigns-empty")).to_be_visible()

    page.get_by_role("button", name="Upload a campaign").click()
    page.get_by_test_id("campaign-form-name").fill("Repatriation Peru")
    page.get_by_label("Topic (advisors need this skill)").select_option("visa")
    page.get_by_test_id("campaign-form-file").set_input_files(str(bad))
    page.get_by_test_id("campaign-upload").click()
    error = page.get_by_test_id("campaigns-error")
    expect(error).to_have_text("Could not upload the campaign: line 3: '12345' is not an "
                               "international phone number (+44… or 0044…)")
    page.get_by_test_id("campaign-form-file").set_input_files(str(good))
    page.get_by_test_id("campaign-upload").click()
    expect(page.get_by_test_id("campaign-form")).to_be_hidden()
    created = floor.run(bus_event(floor.gw, "campaign.status", status="running"))
    cid = created["data"]["campaign_id"]
    # Nobody is working: the dialer takes no advisor; three numbers wait.
    expect(page.get_by_test_id(f"campaign-status-{cid}")).to_have_text("running")
    expect(page.get_by_test_id(f"campaign-done-{cid}")).to_have_text(" 0/3")
    expect(page.get_by_test_id(f"campaign-waiting-{cid}")).to_have_text("3")
    screenshot(page, "wallboard-campaign")

    page.get_by_test_id(f"campaign-pause-{cid}").click()
    expect(page.get_by_test_id(f"campaign-status-{cid}")).to_have_text("paused")
    page.get_by_test_id(f"campaign-resume-{cid}").click()
    expect(page.get_by_test_id(f"campaign-status-{cid}")).to_have_text("running")
    # Stopped from the API: the board follows the event, not a click of its own.
    token = floor.run(_token(floor))
    floor.run(_stop(floor, token, cid))
    expect(page.get_by_test_id(f"campaign-status-{cid}")).to_have_text("stopped")
    expect(page.get_by_test_id(f"campaign-done-{cid}")).to_have_text(" 3/3")
    expect(page.get_by_test_id(f"campaign-stop-{cid}")).to_have_count(0)

    with page.expect_download() as download:
        page.get_by_test_id(f"campaign-export-{cid}").click()
    path = download.value.path()
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text())))
    assert [(r["number"], r["status"]) for r in rows] == [
        ("+442071230001", "cancelled"), ("+442071230002", "cancelled"),
        ("+81312345678", "cancelled")]
    assert rows[0]["note"] == "stranded in Lima" and rows[1]["language"] == "en"


async def _token(floor: Floor) -> str:
    import httpx

    async with httpx.AsyncClient(base_url=floor.base_url) as http:
        r = await http.post("/api/v1/login", json={"username": "nadia",
                                                   "password": "demo-nadia"})
        r.raise_for_status()
        return str(r.json()["token"])


async def _stop(floor: Floor, token: str, cid: int) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=floor.base_url) as http:
        r = await http.post(f"/api/v1/plugins/campaigns/campaigns/{cid}/stop",
                            headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text

"""/agent in Chromium: the topic guide of a DigiD call, in the caller's language,
beside the caller's card (issue 13, acceptance 5); a guide cannot inject markup."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Floor, login, screenshot

pytestmark = pytest.mark.e2e


def test_digid_guide_beside_the_card(page: Page, floor: Floor) -> None:
    page.set_viewport_size({"width": 1400, "height": 900})
    michel_phone = floor.advisor_phone("michel")
    caller = floor.phone("+34911234567")
    login(page, floor, "/agent", "michel")
    page.get_by_test_id("state-available").click()
    expect(page.get_by_test_id("agent-state")).to_have_text("available")

    leg = floor.dial(caller, "34")  # Spanish, DigiD
    card, guide = page.get_by_test_id("screen-pop"), page.get_by_test_id("pop-guide")
    expect(card).to_be_visible()
    expect(guide).to_be_visible()
    expect(guide).to_have_attribute("data-language", "es")
    body = page.get_by_test_id("pop-guide-body")
    expect(body.locator("h1")).to_have_text("DigiD desde el extranjero")
    expect(body.locator("ol").first.locator("li")).to_have_count(3)
    expect(body.locator("strong").first).to_be_visible()
    # Beside the card: to its right, side by side.
    c, g = card.bounding_box(), guide.bounding_box()
    assert c and g and g["x"] >= c["x"] + c["width"] - 1 and g["y"] < c["y"] + c["height"]
    incoming = floor.run(michel_phone.wait_for("leg.incoming", timeout=20))
    floor.run(michel_phone.command("answer", leg=incoming["leg"], code=200))
    expect(page.get_by_test_id("call-state")).to_have_text("connected")
    screenshot(page, "agent-desktop-guide")
    floor.run(caller.command("hangup", leg=leg))
    expect(page.get_by_test_id("wrap-up")).to_be_visible()


def test_a_guide_renders_as_text_never_as_markup(page: Page, floor: Floor) -> None:
    r = httpx.post(f"{floor.base_url}/api/v1/login",
                   json={"username": "nadia", "password": "demo-nadia"})
    nadia = {"Authorization": f"Bearer {r.json()['token']}"}
    evil = ("# <img src=x onerror=alert(1)>\n"
            "- [click](javascript:alert(1)) and [ok](https://example.org)\n"
            "<script>window.pwned = 1</script>\n")
    r = httpx.put(f"{floor.base_url}/api/v1/plugins/guides/guides/digid/en", headers=nadia,
                  json={"markdown": evil})
    assert r.status_code == 200, r.text
    michel_phone = floor.advisor_phone("michel")
    caller = floor.phone("+441632960123")
    login(page, floor, "/agent", "michel")
    page.get_by_test_id("state-available").click()
    leg = floor.dial(caller, "24")  # English, DigiD
    body = page.get_by_test_id("pop-guide-body")
    expect(body.locator("h1")).to_have_text("<img src=x onerror=alert(1)>")
    expect(body.locator("img")).to_have_count(0)
    expect(body.locator("script")).to_have_count(0)
    expect(body.locator("a")).to_have_count(1)  # only the https link is a link
    expect(body.locator("a")).to_have_attribute("href", "https://example.org")
    assert page.evaluate("window.pwned") is None
    floor.run(caller.command("hangup", leg=leg))
    del michel_phone

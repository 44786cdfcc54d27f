"""/wallboard in Chromium: a real caller waits, then abandons."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Floor, login, screenshot

pytestmark = pytest.mark.e2e

SPANISH_CALLER = "+34911234567"


def test_waiting_caller_and_abandoned_call_show_live(page: Page, floor: Floor) -> None:
    caller = floor.phone(SPANISH_CALLER)

    login(page, floor, "/wallboard", "nadia")
    expect(page.get_by_test_id("total-waiting")).to_have_text("0")
    expect(page.get_by_test_id("abandoned")).to_have_text("0")
    expect(page.get_by_test_id("service-level-target")).to_have_text(
        f"(answered within {floor.gw.settings.wallboard.service_level_s:g} s)")
    # Nobody has logged in to take calls: every advisor of the demo floor is logged out.
    advisors = [a for a in floor.gw.settings.advisors if a.role == "advisor"]
    expect(page.get_by_test_id("advisors-logged_out").get_by_test_id("advisor-count")) \
        .to_have_text(str(len(advisors)))

    # A real caller picks Spanish, visa; no advisor is available, so the call waits.
    leg = floor.dial(caller, "32")
    row = page.get_by_test_id("queue-es-visa")
    expect(row.get_by_test_id("queue-waiting")).to_have_text("1")
    expect(page.get_by_test_id("total-waiting")).to_have_text("1")
    expect(page.get_by_test_id("longest-wait")).to_have_attribute("data-seconds", re.compile(r"^\d+$"))
    screenshot(page, "wallboard-caller-waiting")

    # The caller gives up: nobody waits any more and the abandoned count goes up.
    floor.run(caller.command("hangup", leg=leg))
    expect(page.get_by_test_id("abandoned")).to_have_text("1")
    expect(page.get_by_test_id("total-waiting")).to_have_text("0")
    expect(row).to_have_count(0)
    expect(page.get_by_test_id("longest-wait")).to_have_text("–")
    screenshot(page, "wallboard-abandoned")


def test_an_advisor_cannot_open_the_wallboard(page: Page, floor: Floor) -> None:
    page.goto(floor.base_url + "/wallboard")
    page.get_by_label("User name").fill("sofia")
    page.get_by_label("Password").fill("demo-sofia")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("login-error")).to_have_text(
        "This page is for supervisors and admins; sofia is advisor.")
    expect(page.get_by_test_id("board")).to_be_hidden()
    # The API refuses the figures to an advisor's token as well.
    token = page.evaluate("""async () => (await (await fetch('/api/v1/login', {
        method: 'POST', headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({username: 'sofia', password: 'demo-sofia'})})).json()).token""")
    status = page.evaluate("""async (t) => (await fetch('/api/v1/stats/queues',
        {headers: {Authorization: 'Bearer ' + t}})).status""", token)
    assert status == 403

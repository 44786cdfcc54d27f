"""Chromium: an advisor wraps up a call as distressing in /agent; the desktop says
the recovery break, and the supervisor's floor on /wallboard marks it (issue 13,
acceptance 6; the no-offer rule is tested in tests/e2e/test_recovery.py)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Floor, login, screenshot

pytestmark = pytest.mark.e2e


def test_distressing_call_gives_a_break_the_floor_shows(page: Page, browser: Browser,
                                                        floor: Floor) -> None:
    page.set_viewport_size({"width": 1500, "height": 1000})
    login(page, floor, "/wallboard", "nadia")
    desk_context = browser.new_context()
    try:
        desk = desk_context.new_page()
        sofia_phone = floor.advisor_phone("sofia")
        caller = floor.phone("+34911234567")
        login(desk, floor, "/agent", "sofia")
        desk.get_by_test_id("state-available").click()
        expect(desk.get_by_test_id("agent-state")).to_have_text("available")

        leg = floor.dial(caller, "32")
        incoming = floor.run(sofia_phone.wait_for("leg.incoming", timeout=20))
        floor.run(sofia_phone.command("answer", leg=incoming["leg"], code=200))
        expect(desk.get_by_test_id("call-state")).to_have_text("connected")
        floor.run(caller.command("hangup", leg=leg))

        expect(desk.get_by_test_id("wrap-up")).to_be_visible()
        desk.get_by_label("Code").select_option("info_given")
        desk.get_by_test_id("wrap-up-distressing").check()
        desk.get_by_test_id("wrap-up-save").click()
        expect(desk.get_by_test_id("recovery")).to_contain_text("Recovery break until")
        expect(desk.get_by_test_id("agent-state")).to_have_text("away")

        row = page.locator('[data-testid="floor-advisor"][data-advisor="sofia"]')
        expect(row).to_have_attribute("data-recovery", "")
        expect(row.get_by_test_id("floor-advisor-state")).to_have_text("Away (Recovery break)")
        screenshot(page, "wallboard-recovery-break")
    finally:
        desk_context.close()

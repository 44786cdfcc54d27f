"""/coach in Chromium: a coach sees the live call, listens (their phone rings with
X-CTI-Monitor), switches to whisper and stops; each use is in the audit. The audio
of each mode is checked in tests/e2e/test_monitoring.py."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Floor, screenshot
from tests.browser.test_coach_page import sign_in
from tests.e2e.gateway_harness import until

pytestmark = pytest.mark.e2e


def test_a_coach_listens_whispers_and_stops_from_the_page(page: Page, floor: Floor) -> None:
    sofia = floor.advisor_phone("sofia")
    ines = floor.advisor_phone("ines")
    floor.call(floor.gw.flow.set_advisor_state, "sofia", "available")
    caller = floor.phone("+34911234567")
    floor.dial(caller, "32")
    incoming = floor.run(sofia.wait_for("leg.incoming", timeout=20))
    floor.run(sofia.command("answer", leg=incoming["leg"], code=200))
    floor.run(until(lambda: any(c.state == "connected" for c in floor.gw.flow.calls.all())))

    sign_in(page, floor, "/coach", "ines")
    row = page.get_by_test_id("live-row")
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("live-advisor")).to_have_text("sofia")
    row.get_by_test_id("monitor-listen").click()
    rings: dict[str, Any] = floor.run(ines.wait_for("leg.incoming", timeout=15))
    assert rings["headers"]["x-cti-monitor"] == "listen"
    floor.run(ines.command("answer", leg=rings["leg"], code=200))
    expect(row.get_by_test_id("live-monitor")).to_have_text("listen: on")
    expect(row.get_by_test_id("monitor-listen")).to_have_attribute("aria-pressed", "true")
    row.get_by_test_id("monitor-whisper").click()
    expect(row.get_by_test_id("live-monitor")).to_have_text("whisper: on")
    screenshot(page, "coach-monitoring")
    row.get_by_test_id("monitor-stop").click()
    floor.run(ines.wait_for("leg.state", leg=rings["leg"], state="disconnected"))
    expect(row.get_by_test_id("live-monitor")).to_have_text("–")
    expect(page.get_by_test_id("live-error")).to_have_text("")

    lines = floor.call(floor.gw.store.audit.lines, "monitor.", None, 10)
    assert [(x.action, x.who, x.details["mode"]) for x in reversed(lines)] == [
        ("monitor.start", "ines", "listen"), ("monitor.mode", "ines", "whisper"),
        ("monitor.end", "ines", "whisper")]

"""/agent in Chromium during a real recorded call (issue 11): the card shows that the
call is being recorded, the advisor pauses it (card numbers, passport data) and
resumes it from the desktop, and the state survives a reload."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Floor, login, screenshot
from tests.e2e.gateway_harness import bus_event

pytestmark = pytest.mark.e2e

CALLER = "+442079460555"


@pytest.mark.gateway(short_prompts=True, plugins={"recording": {
    "directory": "recordings", "retention_days": {"default": 30}}})
def test_the_advisor_pauses_and_resumes_the_recording(page: Page, floor: Floor) -> None:
    sofia_phone = floor.advisor_phone("sofia")
    caller = floor.phone(CALLER)
    login(page, floor, "/agent", "sofia")
    page.get_by_test_id("state-available").click()
    expect(page.get_by_test_id("agent-state")).to_have_text("available")

    leg = floor.dial(caller, "22")  # English, visa
    incoming = floor.run(sofia_phone.wait_for("leg.incoming", timeout=20))
    floor.run(sofia_phone.command("answer", leg=incoming["leg"], code=200))
    expect(page.get_by_test_id("call-state")).to_have_text("connected")
    state, toggle = page.get_by_test_id("recording-state"), page.get_by_test_id("recording-toggle")
    # after the consent announcement the call is bridged and recorded
    expect(state).to_have_text("Recording")
    expect(state).to_have_attribute("role", "status")
    expect(toggle).to_have_text("Pause recording")
    expect(toggle).to_have_attribute("aria-pressed", "false")

    toggle.click()
    expect(state).to_have_text("Recording paused")
    expect(toggle).to_have_text("Resume recording")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    paused = floor.run(bus_event(floor.gw, "call.recording", state="paused"))
    assert paused["data"]["by"] == "sofia" and paused["advisor"] == "sofia"
    screenshot(page, "agent-desktop-recording-paused")

    # A reload while paused: the card says so again (GET /calls).
    page.reload()
    expect(page.get_by_test_id("conn-status")).to_have_text("Live")
    expect(state).to_have_text("Recording paused")

    toggle.click()
    expect(state).to_have_text("Recording")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    resumed = floor.run(bus_event(floor.gw, "call.recording", state="resumed"))
    assert resumed["data"]["by"] == "sofia"

    floor.run(caller.command("hangup", leg=leg))
    done = floor.run(bus_event(floor.gw, "call.recording", state="done", timeout=20))
    assert len(done["data"]["paused"]) == 1  # the paused stretch, in the index
    expect(page.get_by_test_id("wrap-up")).to_be_visible()
    expect(state).to_be_hidden()

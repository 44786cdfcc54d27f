"""The crisis line in Chromium: a supervisor starts a crisis from the wallboard, a real
crisis caller waits and is answered by a crisis-trained advisor whose card names the
crisis, and the supervisor ends it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Floor, login, screenshot
from tests.e2e.gateway_harness import bus_event, call_hotline, demo_config_data
from tests.peers.phone import Phone

pytestmark = pytest.mark.e2e

BRITISH_CALLER = "+442079460123"
CRISIS = "Floods in Slovenia"
# No overflow to the crisis team while the test runs (a slow shared CPU).
CRISIS_LINE = {**demo_config_data()["plugins"]["crisis_line"], "overflow_after_s": 900}


async def _dial_crisis(floor: Floor, caller: Phone) -> str:
    """A caller picks English (2), then the crisis option (5) of the topic menu.
    The crisis announcement plays first and ignores digits: wait for the menu."""
    leg = await call_hotline(caller, floor.gw)
    await bus_event(floor.gw, "ivr.prompt", timeout=30, node="lang")
    for d in "25":
        await caller.command("send_dtmf", leg=leg, digits=d, method="rfc2833")
    return leg


@pytest.mark.gateway(plugins={"crisis_line": CRISIS_LINE})
def test_start_watch_and_end_a_crisis_from_the_wallboard(page: Page, floor: Floor) -> None:
    dalia_phone = floor.advisor_phone("dalia")
    caller = floor.phone(BRITISH_CALLER)

    login(page, floor, "/wallboard", "nadia")
    panel = page.get_by_test_id("crisis-panel")
    banner = page.get_by_test_id("crisis-banner")
    expect(panel).to_be_visible()
    expect(banner).to_be_hidden()

    # The form; the API's errors are shown in one line: a validation error (422) ...
    page.get_by_role("button", name="Start a crisis").click()
    page.get_by_label("Name (callers hear it)").fill(CRISIS)
    english = page.get_by_label("Announcement in English")
    english.fill("Because of {name}, call {number}.")
    page.get_by_label("Priority").fill("2000")
    page.get_by_test_id("crisis-start").click()
    error = page.get_by_test_id("crisis-error")
    expect(error).to_have_text(
        "Could not start the crisis: priority: Input should be less than or equal to 1000")
    # ... and one the plugin finds (422 too): only {name} and {digit} are filled in.
    page.get_by_label("Priority").fill("")
    page.get_by_test_id("crisis-start").click()
    expect(error).to_have_text(re.compile(
        r"^Could not start the crisis: announce: only \{name\} and \{digit\} may stand"))
    expect(banner).to_be_hidden()
    screenshot(page, "wallboard-crisis-form-error")

    # Dutch left empty (the standard text), the standard priority: the crisis starts.
    english.fill("Because of {name}, it is very busy. Please stay on the line.")
    page.get_by_test_id("crisis-start").click()
    expect(banner).to_be_visible()
    expect(error).to_have_text("")
    expect(page.get_by_test_id("crisis-form")).to_be_hidden()
    expect(page.get_by_test_id("crisis-name")).to_have_text(CRISIS)
    expect(page.get_by_test_id("crisis-since")).to_have_text(re.compile(r"^since .+ by nadia"))
    for count in ("waiting", "answered", "overflowed"):
        expect(page.get_by_test_id(f"crisis-{count}")).to_have_text("0")
    started = floor.run(bus_event(floor.gw, "crisis.started"))
    assert (started["data"]["name"], started["data"]["by"]) == (CRISIS, "nadia")

    # A real crisis caller: nobody is available yet, so the call waits.
    leg = floor.run(_dial_crisis(floor, caller))
    expect(page.get_by_test_id("crisis-waiting")).to_have_text("1")
    expect(page.get_by_test_id("queue-en-emergency").get_by_test_id("queue-waiting")) \
        .to_have_text("1")
    screenshot(page, "wallboard-crisis")

    # Dalia (crisis-trained) opens her desktop: the crisis banner is at its top.
    desk = page.context.new_page()
    desk_errors: list[str] = []
    desk.on("pageerror", lambda e: desk_errors.append(str(e)))
    login(desk, floor, "/agent", "dalia")
    expect(desk.get_by_test_id("crisis-top")).to_have_text(f"Crisis in force: {CRISIS}")
    desk.get_by_test_id("state-available").click()

    # The waiting crisis call is offered to her; its card names the crisis.
    expect(desk.get_by_test_id("call-state")).to_have_text("offered")
    expect(desk.get_by_test_id("pop-crisis")).to_have_text(f"Crisis: {CRISIS}")
    expect(desk.get_by_test_id("pop-topic")).to_have_text("Emergency")
    # A crisis call's raised priority, in words (an ordinary caller gets no badge).
    expect(desk.get_by_test_id("pop-priority")).to_have_text(re.compile(r"^Priority caller \(raised by \d+\)$"))
    incoming = floor.run(dalia_phone.wait_for("leg.incoming", timeout=20))
    floor.run(dalia_phone.command("answer", leg=incoming["leg"], code=200))
    expect(desk.get_by_test_id("call-state")).to_have_text("connected")
    screenshot(desk, "agent-desktop-crisis")

    # The wallboard counts the answer; nobody waits any more.
    expect(page.get_by_test_id("crisis-answered")).to_have_text("1")
    expect(page.get_by_test_id("crisis-waiting")).to_have_text("0")
    floor.run(caller.command("hangup", leg=leg))
    expect(desk.get_by_test_id("call-state")).to_have_text("ended")

    # End it, with a confirm step: the banner goes, the start button is back.
    page.get_by_role("button", name="End crisis").click()
    page.get_by_role("button", name="Cancel").click()
    expect(banner).to_be_visible()
    page.get_by_role("button", name="End crisis").click()
    page.get_by_role("button", name="Yes, end it").click()
    expect(banner).to_be_hidden()
    expect(page.get_by_role("button", name="Start a crisis")).to_be_visible()
    ended = floor.run(bus_event(floor.gw, "crisis.ended"))
    assert (ended["data"]["by"], ended["data"]["answered"]) == ("nadia", 1)
    screenshot(page, "wallboard-crisis-ended")

    # The desktop's banner goes with the crisis (at its next look; a reload looks now).
    desk.reload()
    expect(desk.get_by_test_id("conn-status")).to_have_text("Live")
    expect(desk.get_by_test_id("crisis-top")).to_be_hidden()
    assert not desk_errors, desk_errors


@pytest.mark.gateway(plugins={})
def test_without_the_plugin_the_crisis_panel_is_hidden(page: Page, floor: Floor) -> None:
    with page.expect_response(lambda r: r.url.endswith("/crises/current")) as current:
        login(page, floor, "/wallboard", "nadia")
    assert current.value.status == 404
    expect(page.get_by_test_id("total-waiting")).to_have_text("0")
    expect(page.get_by_test_id("crisis-panel")).to_be_hidden()

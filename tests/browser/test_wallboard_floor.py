"""/wallboard in Chromium: the supervisor's floor (issue 13): every advisor with their
state in words and time in state, a real live call, a real waiting call, the
service level per queue; all from the WebSocket events."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import Floor, login, screenshot

SPANISH_CALLER = "+34911234567"
SECOND_CALLER = "+34915550123"
DIGITS = re.compile(r"^\d+$")


def _set_state(floor: Floor, user: str, state: str, reason: str | None = None) -> None:
    """The advisor's own state through the API (as the desktop does)."""
    with httpx.Client(base_url=floor.base_url) as http:
        r = http.post("/api/v1/login", json={"username": user, "password": f"demo-{user}"})
        headers = {"Authorization": f"Bearer {r.json()['token']}"}
        r = http.post("/api/v1/agents/me/state", headers=headers,
                      json={"state": state, "reason": reason})
        assert r.status_code == 200, r.text


def _counts_on(cell: Locator) -> None:
    """A time cell shows whole seconds and they go up while the page is open."""
    expect(cell).to_have_attribute("data-seconds", DIGITS)
    before = int(cell.get_attribute("data-seconds") or "0")
    expect(cell).not_to_have_attribute("data-seconds", str(before))
    assert int(cell.get_attribute("data-seconds") or "0") > before


def test_the_floor_advisor_by_advisor_live_and_waiting_calls(page: Page, floor: Floor) -> None:
    page.set_viewport_size({"width": 1500, "height": 1000})
    sofia_phone = floor.advisor_phone("sofia")
    caller, second = floor.phone(SPANISH_CALLER), floor.phone(SECOND_CALLER)
    login(page, floor, "/wallboard", "nadia")

    # Every advisor of the floor, logged out to start with, in words.
    advisors = sorted(a.name for a in floor.gw.settings.advisors if a.role == "advisor")
    rows = page.get_by_test_id("floor-advisor")
    expect(rows).to_have_count(len(advisors))
    expect(rows.locator("th")).to_have_text(advisors)
    sofia = page.locator('[data-testid="floor-advisor"][data-advisor="sofia"]')
    dalia = page.locator('[data-testid="floor-advisor"][data-advisor="dalia"]')
    expect(sofia.get_by_test_id("floor-advisor-state")).to_have_text("Logged out")
    expect(page.get_by_test_id("live-calls-empty")).to_be_visible()
    expect(page.get_by_test_id("waiting-calls-empty")).to_be_visible()

    # State changes arrive as events: sofia available, dalia away for lunch.
    _set_state(floor, "sofia", "available")
    _set_state(floor, "dalia", "away", "lunch")
    # Within 3 s: the agent.state event brings it, not the 5 s poll.
    expect(sofia.get_by_test_id("floor-advisor-state")).to_have_text("Available", timeout=3000)
    expect(dalia.get_by_test_id("floor-advisor-state")).to_have_text("Away (Lunch)")
    _counts_on(sofia.get_by_test_id("floor-advisor-time"))

    # A real caller (Spanish, visa) goes to sofia, who answers: a live call row.
    leg = floor.dial(caller, "32")
    incoming = floor.run(sofia_phone.wait_for("leg.incoming", timeout=20))
    call_id = incoming["headers"]["x-cti-call-id"]
    floor.run(sofia_phone.command("answer", leg=incoming["leg"], code=200))
    live = page.locator(f'[data-testid="live-call"][data-call-id="{call_id}"]')
    expect(live).to_have_count(1)
    expect(live.get_by_test_id("live-call-number")).to_have_text(SPANISH_CALLER)
    expect(live.get_by_test_id("live-call-country")).to_have_text("Spain (ES)")
    expect(live.get_by_test_id("live-call-language")).to_have_text("Español")
    expect(live.get_by_test_id("live-call-topic")).to_have_text("Visa and entering the Netherlands")
    expect(live.get_by_test_id("live-call-advisor")).to_have_text("sofia")
    # The supervisor's monitoring controls (tests/e2e/test_monitoring.py hears them).
    expect(live.get_by_test_id("live-call-actions").get_by_role("button")).to_have_text(
        ["Listen", "Whisper", "Barge", "Stop"])
    _counts_on(live.get_by_test_id("live-call-talk"))
    # Sofia's row: on a call, with the call's caller country, language, topic, talk time.
    expect(sofia.get_by_test_id("floor-advisor-state")).to_have_text("On a call")
    expect(sofia.get_by_test_id("floor-advisor-country")).to_have_text("Spain (ES)")
    expect(sofia.get_by_test_id("floor-advisor-language")).to_have_text("Español")
    expect(sofia.get_by_test_id("floor-advisor-topic")).to_have_text(
        "Visa and entering the Netherlands")
    _counts_on(sofia.get_by_test_id("floor-advisor-talk"))

    # A second Spanish visa caller: nobody free, so the call waits, and its wait counts.
    second_leg = floor.dial(second, "32")
    waiting = page.get_by_test_id("waiting-call")
    expect(waiting).to_have_count(1)
    expect(waiting.get_by_test_id("waiting-call-number")).to_have_text(SECOND_CALLER)
    expect(waiting.get_by_test_id("waiting-call-country")).to_have_text("Spain (ES)")
    expect(waiting.get_by_test_id("waiting-call-language")).to_have_text("Español")
    expect(waiting.get_by_test_id("waiting-call-status")).to_have_text("waiting, 1st in line")
    _counts_on(waiting.get_by_test_id("waiting-call-wait"))
    expect(page.get_by_test_id("waiting-calls-empty")).to_be_hidden()
    expect(live).to_have_count(1)  # the live call row is still the same call
    screenshot(page, "wallboard-floor")

    # The second caller gives up, then the first call ends: the queue's service
    # level today is one answered in time of two (one abandoned).
    floor.run(second.command("hangup", leg=second_leg))
    expect(waiting).to_have_count(0)
    floor.run(caller.command("hangup", leg=leg))
    expect(live).to_have_count(0)
    # (wrap-up, then available: the harness's wrap-up time is short)
    expect(sofia.get_by_test_id("floor-advisor-state")).to_have_text(
        re.compile(r"^(Wrapping up|Available)$"))
    expect(sofia.get_by_test_id("floor-advisor-talk")).to_have_text("")
    sl = page.get_by_test_id("sl-es-visa")
    expect(sl.locator("th")).to_have_text("Español")
    expect(sl.locator("td").first).to_have_text("Visa and entering the Netherlands")
    expect(sl.get_by_test_id("sl-answered")).to_have_text("1")
    expect(sl.get_by_test_id("sl-within")).to_have_text("1")
    expect(sl.get_by_test_id("sl-abandoned")).to_have_text("1")
    expect(sl.get_by_test_id("sl-value")).to_have_text("50 %")
    screenshot(page, "wallboard-floor-after")

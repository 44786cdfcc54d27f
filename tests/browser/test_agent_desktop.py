"""/agent in Chromium during a real call: login, state, screen pop, answer, wrap-up, history."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Floor, login, screenshot
from tests.peers.phone import Phone

pytestmark = pytest.mark.e2e

SPANISH_CALLER = "+34911234567"


def test_screen_pop_answer_and_wrap_up_of_a_real_call(page: Page, floor: Floor) -> None:
    sofia_phone = floor.advisor_phone("sofia")
    caller = floor.phone(SPANISH_CALLER)

    login(page, floor, "/agent", "sofia")
    expect(page.get_by_test_id("who")).to_have_text("sofia")
    # Away reasons in words (config away_reasons), the code as the value.
    reasons = page.get_by_label("Away reason").locator("option")
    expect(reasons).to_have_text(["(no reason)", "Break", "Lunch", "Meeting", "Training", "Admin"])
    expect(reasons.nth(2)).to_have_attribute("value", "lunch")
    page.get_by_test_id("state-available").click()
    expect(page.get_by_test_id("agent-state")).to_have_text("available")

    # A real caller picks Spanish (3), then visa (2): the card pops before sofia's phone rings.
    leg = floor.dial(caller, "32")
    pop = page.get_by_test_id("screen-pop")
    expect(pop).to_be_visible()
    expect(pop).to_have_attribute("aria-live", "polite")
    expect(page.get_by_test_id("call-state")).to_have_text("offered")
    expect(page.get_by_test_id("pop-number")).to_have_text(SPANISH_CALLER)
    expect(page.get_by_test_id("pop-country")).to_have_text("ES")
    # Words from the config, not codes (issue 13); the code stays in data-code.
    expect(page.get_by_test_id("pop-language")).to_have_text("Español")
    expect(page.get_by_test_id("pop-language")).to_have_attribute("data-code", "es")
    expect(page.get_by_test_id("pop-language-name")).to_have_text("(Spanish)")
    expect(page.get_by_test_id("pop-topic")).to_have_text("Visa and entering the Netherlands")
    # An ordinary caller (priority 0): no priority badge.
    expect(page.get_by_test_id("pop-priority")).to_be_hidden()
    # While the offer rings, a countdown to the offer's timeout (routing.offer_timeout_s).
    countdown = page.get_by_test_id("offer-countdown")
    expect(countdown).to_be_visible()
    expect(countdown).to_contain_text("left to answer")
    timeout_s = floor.gw.settings.routing.offer_timeout_s
    left = int(countdown.get_attribute("data-seconds") or "-1")
    assert 0 < left <= timeout_s
    expect(countdown).not_to_have_attribute("data-seconds", str(left))  # it counts down
    assert int(countdown.get_attribute("data-seconds") or "99") < left
    expect(page.get_by_test_id("talk-time")).to_be_hidden()
    screenshot(page, "agent-desktop-ringing")
    expect(page.get_by_test_id("pop-ivr-path").locator("li")).to_have_text(
        ["hours:open", "lang:es", "topic:visa"])
    expect(page.get_by_test_id("pop-waited")).to_have_text(re.compile(r"^\d+ s$|^\d+:\d\d$"))
    # The caller's wall clock, from the number's time zone (Spain).
    expect(page.get_by_test_id("pop-timezone")).to_have_text("Europe/Madrid")
    expect(page.get_by_test_id("pop-local-time")).to_have_text(re.compile(r"^\w{3} \d\d:\d\d$"))
    expect(page.get_by_test_id("pop-crisis")).to_be_hidden()
    expect(page.get_by_test_id("pop-earlier")).to_have_text("none")
    call_id = pop.get_attribute("data-call-id")
    assert call_id

    # Sofia's softphone rings with the same call and she answers it there.
    incoming = floor.run(sofia_phone.wait_for("leg.incoming", timeout=20))
    assert incoming["headers"]["x-cti-call-id"] == call_id
    floor.run(sofia_phone.command("answer", leg=incoming["leg"], code=200))
    expect(page.get_by_test_id("call-state")).to_have_text("connected")
    expect(page.get_by_test_id("agent-state")).to_have_text("on call")
    expect(page.get_by_test_id("hangup")).to_be_enabled()
    # Answered: the countdown gives way to the talk timer, which runs.
    expect(countdown).to_be_hidden()
    talk = page.get_by_test_id("talk-time")
    expect(talk).to_be_visible()
    expect(talk).to_have_attribute("data-seconds", re.compile(r"^[1-9]\d*$"))
    talked = int(talk.get_attribute("data-seconds") or "0")
    expect(talk).not_to_have_attribute("data-seconds", str(talked))
    assert int(talk.get_attribute("data-seconds") or "0") > talked

    # Hold and resume go over the WebSocket to the flow and come back as call.held.
    page.get_by_test_id("hold").click()
    expect(page.get_by_test_id("call-state")).to_have_text("held")
    expect(page.get_by_test_id("hold")).to_have_text("Resume")
    hold = page.get_by_test_id("hold-time")
    expect(hold).to_be_visible()
    expect(hold).to_have_attribute("data-seconds", re.compile(r"^[1-9]\d*$"))
    expect(talk).to_be_visible()  # the talk time goes on counting on hold
    page.get_by_test_id("hold").click()
    expect(page.get_by_test_id("call-state")).to_have_text("connected")
    expect(hold).to_be_hidden()

    # The transfer directory marks the embassy of the caller's country (Spain).
    page.get_by_label("Transfer to", exact=True).select_option("external")
    embassy = page.locator("[data-testid='directory-list'] li[data-embassy]")
    expect(embassy).to_have_count(1)
    expect(embassy).to_have_attribute("data-country", "ES")
    expect(embassy).to_contain_text("caller's embassy")
    expect(embassy.get_by_role("radio")).to_be_checked()
    screenshot(page, "agent-desktop-call")

    # A reload during the call: the page resumes its session and shows the call again.
    page.reload()
    expect(page.get_by_test_id("conn-status")).to_have_text("Live")
    expect(page.get_by_test_id("pop-number")).to_have_text(SPANISH_CALLER)
    expect(page.get_by_test_id("call-state")).to_have_text("connected")
    expect(talk).to_have_attribute("data-seconds", re.compile(r"^[1-9]\d*$"))  # not from 0

    # The caller hangs up: the wrap-up form opens for this call.
    floor.run(caller.command("hangup", leg=leg))
    wrap = page.get_by_test_id("wrap-up")
    expect(wrap).to_be_visible()
    expect(page.get_by_test_id("screen-pop")).to_have_attribute("data-call-state", "ended")
    code = floor.gw.settings.wrap_up.codes[0]
    page.get_by_label("Code").select_option(code.code)
    page.get_by_label("Note").fill("Visa appointment explained; calls back next week.")
    page.get_by_test_id("wrap-up-save").click()
    expect(wrap).to_be_hidden()
    expect(page.get_by_test_id("notice")).to_have_text(f"Wrap-up saved ({code.label}).")

    stored = floor.call(floor.gw.store.wrap_up, call_id)
    assert stored is not None
    assert (stored["advisor"], stored["code"], stored["note"]) == (
        "sofia", code.code, "Visa appointment explained; calls back next week.")

    # Today's history lists the call with its wrap-up.
    row = page.locator(f'[data-testid="history-row"][data-call-id="{call_id}"]')
    expect(row).to_contain_text(SPANISH_CALLER)
    expect(row.get_by_test_id("history-code")).to_have_text(code.label)
    expect(row.get_by_test_id("history-code")).to_have_attribute("data-code", code.code)
    expect(row.locator("td").nth(2)).to_have_text("Español")
    expect(row.locator("td").nth(3)).to_have_text("Visa and entering the Netherlands")
    expect(row.get_by_test_id("history-note")).to_have_text(
        "Visa appointment explained; calls back next week.")
    screenshot(page, "agent-desktop-wrapped-up")

    # The wrap-up made sofia available again; the same number calls back: the card
    # shows the earlier contact with its wrap-up code and note.
    expect(page.get_by_test_id("agent-state")).to_have_text("available")
    leg = floor.dial(caller, "32")
    expect(page.get_by_test_id("call-state")).to_have_text("offered")
    expect(pop).not_to_have_attribute("data-call-id", call_id)
    earlier = page.get_by_test_id("pop-earlier-item")
    expect(earlier).to_have_count(1)
    expect(earlier).to_contain_text(code.label)
    expect(earlier).to_contain_text("Visa and entering the Netherlands (Español)")
    expect(earlier).to_contain_text("Visa appointment explained; calls back next week.")
    floor.run(caller.command("hangup", leg=leg))
    expect(page.get_by_test_id("call-state")).to_have_text("ended")
    expect(wrap).to_be_hidden()  # never answered: nothing to wrap up


async def _answer(phone: Phone, consult_of: str | None = None) -> str:
    """Answer the phone's next incoming call (with consult_of: the consult of that call)."""
    while True:
        incoming = await phone.wait_for("leg.incoming", timeout=20)
        headers = incoming.get("headers", {})
        if consult_of is None or (headers.get("x-cti-call-id") == consult_of
                                  and "x-cti-consult" in headers):
            break
    await phone.command("answer", leg=incoming["leg"], code=200)
    await phone.wait_for("leg.media", leg=incoming["leg"], active=True)
    return incoming["leg"]


@pytest.mark.gateway(crisis_team=True, routing__wrap_up_s=120)
def test_consult_transfer_to_the_crisis_team_from_the_desktop(page: Page, floor: Floor) -> None:
    assert floor.team is not None
    sofia_phone = floor.advisor_phone("sofia")
    caller = floor.phone(SPANISH_CALLER)
    login(page, floor, "/agent", "sofia")
    page.get_by_test_id("state-available").click()
    expect(page.get_by_test_id("agent-state")).to_have_text("available")
    leg = floor.dial(caller, "32")
    expect(page.get_by_test_id("call-state")).to_have_text("offered")
    call_id = page.get_by_test_id("screen-pop").get_attribute("data-call-id")
    assert call_id
    floor.run(_answer(sofia_phone))
    expect(page.get_by_test_id("call-state")).to_have_text("connected")

    # Consult the crisis team: sofia's phone rings for the consult, the team answers.
    page.get_by_label("Transfer kind").select_option("consult")
    page.get_by_label("Transfer to", exact=True).select_option("external")
    page.get_by_role("radio", name=re.compile("Crisis team")).check()
    page.get_by_test_id("transfer-submit").click()
    consult = page.get_by_test_id("consult-state")
    expect(consult).to_have_text("Consulting crisis_team: ringing")
    floor.run(_answer(sofia_phone, consult_of=call_id))
    floor.run(_answer(floor.team))
    expect(consult).to_have_text("Consulting crisis_team: talking")
    screenshot(page, "agent-desktop-consult")

    # Complete: the caller goes to the crisis team, sofia is in wrap-up.
    page.get_by_test_id("consult-complete").click()
    expect(page.get_by_test_id("call-state")).to_have_text("transferred")
    expect(page.get_by_test_id("agent-state")).to_have_text("wrap up")
    expect(page.get_by_test_id("wrap-up")).to_be_visible()
    expect(page.get_by_test_id("call-controls")).to_be_hidden()

    # The caller and the team end their call later; sofia's wrap-up stays open for it.
    floor.run(caller.command("hangup", leg=leg))
    page.get_by_label("Code").select_option(floor.gw.settings.wrap_up.codes[0].code)
    page.get_by_test_id("wrap-up-save").click()
    expect(page.get_by_test_id("wrap-up")).to_be_hidden()
    expect(page.get_by_test_id("agent-state")).to_have_text("available")
    assert floor.call(floor.gw.store.wrap_up, call_id)["advisor"] == "sofia"

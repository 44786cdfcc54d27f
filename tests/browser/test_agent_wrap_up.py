"""/agent in Chromium: wrap-up lasts until saved (at most routing.wrap_up_s), and a
call not wrapped up in time is wrapped up later from today's calls (issue 13)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Floor, login
from tests.peers.phone import Phone

pytestmark = pytest.mark.e2e

SPANISH_CALLER = "+34911234567"
MOST_WRAP_UP_S = 6


@pytest.mark.gateway(routing__wrap_up_s=MOST_WRAP_UP_S)
def test_wrap_up_with_countdown_then_later_from_todays_calls(page: Page, floor: Floor) -> None:
    sofia_phone = floor.advisor_phone("sofia")
    caller: Phone = floor.phone(SPANISH_CALLER)
    login(page, floor, "/agent", "sofia")
    page.get_by_test_id("state-available").click()
    expect(page.get_by_test_id("agent-state")).to_have_text("available")

    leg = floor.dial(caller, "32")
    pop = page.get_by_test_id("screen-pop")
    expect(pop).to_be_visible()
    call_id = pop.get_attribute("data-call-id")
    incoming = floor.run(sofia_phone.wait_for("leg.incoming", timeout=20))
    floor.run(sofia_phone.command("answer", leg=incoming["leg"], code=200))
    expect(page.get_by_test_id("call-state")).to_have_text("connected")
    floor.run(caller.command("hangup", leg=leg))

    # The form is open, a countdown says how long wrap-up may last.
    expect(page.get_by_test_id("wrap-up")).to_be_visible()
    expect(page.get_by_test_id("agent-state")).to_have_text("wrap up")
    expect(page.get_by_test_id("wrap-up-countdown")).to_contain_text("Available again in")
    page.get_by_label("Note").fill("half written")
    # Nothing saved: after the most, sofia is available and the call not wrapped up.
    expect(page.get_by_test_id("agent-state")).to_have_text(
        "available", timeout=(MOST_WRAP_UP_S + 10) * 1000)
    expect(page.get_by_test_id("wrap-up-countdown")).to_contain_text("Wrap-up time is over")
    row = page.locator(f'[data-testid="history-row"][data-call-id="{call_id}"]')
    expect(row.get_by_test_id("history-not-wrapped")).to_have_text("Not wrapped up")

    # Later, from today's calls.
    row.get_by_test_id("history-wrap-up").click()
    expect(page.get_by_test_id("wrap-up-call")).to_have_text(SPANISH_CALLER)
    code = floor.gw.settings.wrap_up.codes[0]
    page.get_by_label("Code").select_option(code.code)
    page.get_by_test_id("wrap-up-save").click()
    expect(page.get_by_test_id("wrap-up")).to_be_hidden()
    expect(row.get_by_test_id("history-not-wrapped")).to_have_count(0)
    expect(row.get_by_test_id("history-code")).to_have_text(code.label)
    expect(page.get_by_test_id("agent-state")).to_have_text("available")
    stored = floor.call(floor.gw.store.wrap_up, call_id)
    assert stored is not None and (stored["advisor"], stored["code"]) == ("sofia", code.code)

"""Calls back on the wallboard, in Chromium: the callbacks panel counts a request as
pending as it is made (the plugin's own API on the in-process gateway, as the IVR
dialogue would), and is hidden when the plugin is not enabled."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect

from cti.core.views import CallView
from plugins.callbacks.plugin import CallbacksPlugin
from tests.browser.conftest import Floor, login, screenshot
from tests.e2e.gateway_harness import bus_event

pytestmark = pytest.mark.e2e

HOTLINE = "+31247247247"


def _waiting_call(call_id: str, number: str) -> CallView:
    """What the plugin sees of a caller waiting in the Spanish visa queue."""
    now = time.time()
    return CallView(
        call_id=call_id, kind="inbound", state="queued", caller_number=number,
        caller_country="ES", caller_timezone="Europe/Madrid", dialled=HOTLINE,
        language="es", topic="visa", priority=0, trainings=frozenset(),
        reserve=frozenset(), flags={}, ivr_path=("hours:open", "lang:es", "topic:visa"),
        advisor=None, worker="w1", held=False, started_at=now - 120, queued_at=now - 100,
        answered_at=None, ended_at=None, end_reason=None)


def _request(floor: Floor, call_id: str, number: str) -> None:
    """A caller asks to be called back tomorrow morning (scheduled: pending)."""
    plugin = floor.gw.plugins.plugins["callbacks"].obj
    assert isinstance(plugin, CallbacksPlugin)
    floor.run(plugin.cb.request(_waiting_call(call_id, number), number, "tomorrow"))
    floor.run(bus_event(floor.gw, "callback.requested", number=number))


@pytest.mark.gateway(plugins={"callbacks": {}})
def test_the_wallboard_counts_call_backs_as_they_are_requested(
        page: Page, floor: Floor) -> None:
    with page.expect_response(lambda r: r.url.endswith("/plugins/callbacks/stats")) as stats:
        login(page, floor, "/wallboard", "nadia")
    assert stats.value.status == 200
    panel = page.get_by_test_id("callbacks-panel")
    expect(panel).to_be_visible()
    pending = page.get_by_test_id("callbacks-pending")
    expect(pending).to_have_text("0")
    expect(page.get_by_test_id("callbacks-connected")).to_have_text("0")
    expect(page.get_by_test_id("callbacks-unreached")).to_have_text("0")
    # Right after the crisis panel's place, before the "Calls waiting" tile.
    order = page.evaluate("""() => [...document.querySelectorAll('[data-testid="board"] > *')]
        .map((n) => n.dataset.testid || n.querySelector('[data-testid]')?.dataset.testid)""")
    assert order[:3] == ["crisis-panel", "callbacks-panel", "total-waiting"], order

    # The callback.requested event refreshes the panel (well before its poll).
    _request(floor, "c-1", "+34911000001")
    expect(pending).to_have_text("1", timeout=10_000)
    _request(floor, "c-2", "+34911000002")
    expect(pending).to_have_text("2", timeout=10_000)
    expect(page.get_by_test_id("callbacks-detail")).to_contain_text(
        "0 waiting for an advisor, 2 scheduled (next ")
    screenshot(page, "wallboard-callbacks")


@pytest.mark.gateway(plugins={})
def test_without_the_plugin_the_callbacks_panel_is_hidden(page: Page, floor: Floor) -> None:
    with page.expect_response(lambda r: r.url.endswith("/plugins/callbacks/stats")) as stats:
        login(page, floor, "/wallboard", "nadia")
    assert stats.value.status == 404
    expect(page.get_by_test_id("total-waiting")).to_have_text("0")
    expect(page.get_by_test_id("callbacks-panel")).to_be_hidden()

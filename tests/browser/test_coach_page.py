"""/coach in Chromium: a coach finds a recording and listens to it to the end (the
<audio> element plays a signed link, seeking with Range); the page without the
recording plugin; a coach refused on /agent and /wallboard. The recording plugin
is enabled; its index rows and files are put in place by the test
(plugins/recording/tests/harness.py), without calls."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from plugins.recording.services import Recordings
from plugins.recording.tests.harness import add_with_file, recording
from tests.browser.conftest import Floor, floor_of, screenshot

pytestmark = pytest.mark.e2e


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[tuple[Floor, Recordings]]:
    directory = tmp_path / "recordings"
    with floor_of(tmp_path, plugins={"recording": {"directory": str(directory)}}) as floor:
        yield floor, floor.gw.plugins.plugins["recording"].obj.rec


def sign_in(page: Page, floor: Floor, path: str, user: str) -> None:
    page.goto(floor.base_url + path)
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(f"demo-{user}")
    page.get_by_role("button", name="Sign in").click()


def test_a_coach_finds_a_recording_and_listens_to_the_end(
        page: Page, recorded: tuple[Floor, Recordings]) -> None:
    floor, plugin = recorded
    rec, _ = floor.run(add_with_file(plugin.repo, plugin.directory, "call-play",
                                     seconds=1.5, advisors=["sofia", "dalia"]))
    floor.run(add_with_file(plugin.repo, plugin.directory, "call-other", seconds=1.0,
                            advisors=["michel"], topic="visa", caller_number="+31612345678"))
    floor.run(plugin.repo.add(recording("call-declined", None, status="declined",
                                        consent="declined", advisors=["sofia"])))

    sign_in(page, floor, "/coach", "ines")
    expect(page.get_by_test_id("who")).to_have_text("ines")
    rows = page.get_by_test_id("recording-row")
    expect(rows).to_have_count(3)

    page.get_by_test_id("search-advisor").fill("sofia")
    page.get_by_test_id("search-submit").click()
    expect(rows).to_have_count(2)
    row = page.locator(f'[data-testid="recording-row"][data-recording-id="{rec.recording_id}"]')
    expect(row.get_by_test_id("rec-advisors")).to_have_text("sofia, dalia")
    expect(row.get_by_test_id("rec-topic")).to_have_text("Passport and ID card")
    expect(row.get_by_test_id("rec-language")).to_have_text("English")
    expect(row.get_by_test_id("rec-number")).to_have_text("+34911234567")
    expect(row.get_by_test_id("rec-duration")).to_have_text("2 s")
    expect(row.get_by_test_id("rec-consent")).to_have_text("announced")
    expect(row.get_by_test_id("rec-paused")).to_have_text("0.5–0.7 s")
    expect(row.get_by_test_id("rec-held")).to_have_text("no")
    declined = page.locator('[data-testid="recording-row"][data-status="declined"]')
    expect(declined.get_by_test_id("rec-no-file")).to_have_text("declined by the caller")
    expect(declined.get_by_test_id("rec-play")).to_have_count(0)

    row.get_by_test_id("rec-play").click()
    audio = page.get_by_test_id("player-audio")
    expect(audio).to_have_attribute("data-recording-id", str(rec.recording_id))
    expect(page.get_by_test_id("player-state")).to_have_attribute("data-state", "ended")
    assert page.evaluate("""() => {
        const a = document.querySelector('[data-testid="player-audio"]');
        return [a.ended, Math.round(a.duration * 10) / 10];
    }""") == [True, 1.5]
    screenshot(page, "coach-listened")

    lines = floor.call(floor.gw.store.audit.lines, "plugin.recording.recording.listen",
                       None, 10)
    assert [(x.who, x.details["recording_id"], x.details["call_id"]) for x in lines] == [
        ("ines", rec.recording_id, "call-play")]


def test_without_the_recording_plugin_the_page_says_so(page: Page, floor: Floor) -> None:
    sign_in(page, floor, "/coach", "ines")
    expect(page.get_by_test_id("not-enabled")).to_be_visible()
    expect(page.get_by_test_id("not-enabled")).to_contain_text("Recording is not enabled")
    expect(page.get_by_test_id("search-panel")).to_be_hidden()


def test_a_coach_is_refused_on_the_desktop_and_the_wallboard_and_an_advisor_here(
        page: Page, floor: Floor) -> None:
    for path, text in (("/agent", "This page is for advisors; ines is coach."),
                       ("/wallboard", "This page is for supervisors and admins; ines is coach.")):
        sign_in(page, floor, path, "ines")
        expect(page.get_by_test_id("login-error")).to_have_text(text)
    sign_in(page, floor, "/coach", "sofia")
    expect(page.get_by_test_id("login-error")).to_have_text(
        "This page is for coaches, supervisors and admins; sofia is advisor.")
    expect(page.get_by_test_id("coach")).to_be_hidden()

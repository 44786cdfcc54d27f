"""The silent caller: on the demo config, a caller who presses nothing reaches the
queue in the guessed language after one silence per menu heard, within 30 s of the
answer -- computed from the demo's menus, timeouts and built prompt files."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from cti.config import Settings, ivr_flows, load_settings
from cti.ivr import Done, IvrSession, Play
from cti.prompts import resolve_prompt

REPO = Path(__file__).resolve().parents[2]
BUDGET_S = 30.0  # issue 13: offered to an advisor within 30 s of the answer


@pytest.fixture(scope="module")
def demo() -> Settings:
    return load_settings(REPO / "config" / "cti.yaml")


def _seconds(settings: Settings, lang: str, key: str) -> float:
    path = resolve_prompt(lang, key, settings.path(settings.prompts.cache_dir),
                          settings.path(settings.prompts.override_dir))
    assert path.exists(), f"{path}: run `cti prompts build` (scripts/setup.sh does)"
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def _walk_silently(settings: Settings, guessed: str | None) -> tuple[Done, float, int]:
    """Run the standard flow pressing nothing: the decision, the seconds it took
    (every prompt played to its end, every timer to its deadline), the timeouts."""
    session = IvrSession(ivr_flows(settings)[""], guessed_language=guessed)
    now, timeouts = 0.0, 0
    actions = session.start(now)
    while True:
        done = [a for a in actions if isinstance(a, Done)]
        if done:
            return done[0], now, timeouts
        (play,) = [a for a in actions if isinstance(a, Play)]
        now += sum(_seconds(settings, p.language, p.key) for p in play.prompts)
        actions = session.on_play_done(play.play_id, now)
        if not actions:  # a menu waits for a key that never comes
            assert session.deadline is not None
            now = session.deadline
            timeouts += 1
            actions = session.on_timer(now)


@pytest.mark.parametrize("guessed", ["nl", "en", "es", "tr", None])
def test_a_silent_caller_is_queued_in_the_guessed_language_within_budget(
    demo: Settings, guessed: str | None,
) -> None:
    done, seconds, timeouts = _walk_silently(demo, guessed)
    language = guessed or demo.ivr.default_language
    assert (done.language, done.topic) == (language, demo.ivr.default_topic)
    assert timeouts == 1  # one silence at the language menu, no retry
    assert done.path == ("hours:open", f"lang:timeout->{language}",
                         f"topic:silent->{demo.ivr.default_topic}")
    # The IVR's part leaves the rest for the queue's offer (measured in the e2e test).
    assert seconds <= BUDGET_S - 5, f"{guessed}: {seconds:.1f} s of IVR"


def test_without_the_setting_a_silent_caller_hears_every_retry(demo: Settings) -> None:
    """The old behaviour (silent_retries null): every menu with all its retries."""
    slow = demo.model_copy(update={"ivr": demo.ivr.model_copy(
        update={"silent_retries": None, "silent_skips_menus": False})})
    done, seconds, timeouts = _walk_silently(slow, "en")
    assert timeouts == 2 * (demo.ivr.max_retries + 1)
    assert seconds > 100  # issue 13: "only after 110 s"
    assert done.path[-1] == f"topic:timeout->{demo.ivr.default_topic}"


def test_a_caller_who_pressed_a_key_gets_the_retries(demo: Settings) -> None:
    """Skipping is for the silent caller only: once a key was pressed, a silence at
    the next menu gets max_retries retries as before."""
    session = IvrSession(ivr_flows(demo)[""], guessed_language="en")
    (play,) = session.start(0.0)
    assert isinstance(play, Play)
    actions = session.on_digit("2", 1.0)  # English: the topic menu plays
    timeouts = 0
    while not any(isinstance(a, Done) for a in actions):
        (menu,) = [a for a in actions if isinstance(a, Play)]  # the menu (again)
        assert session.on_play_done(menu.play_id, 2.0) == []
        assert session.deadline is not None
        actions = session.on_timer(session.deadline)
        timeouts += 1
    assert timeouts == demo.ivr.max_retries + 1


def test_silent_retries_is_the_number_of_retries_on_silence(demo: Settings) -> None:
    once = demo.model_copy(update={"ivr": demo.ivr.model_copy(
        update={"silent_retries": 1, "silent_skips_menus": False})})
    done, _, timeouts = _walk_silently(once, "es")
    assert timeouts == 4  # each menu: a silence, the retry, a silence, the default
    assert done.path == ("hours:open", "lang:timeout->es", "topic:timeout->travel_advice")

"""Unit tests of the pure IVR engine (no SIP, no clock)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.ivr import (
    DEMO_CONFIG,
    REQUIRED_PROMPT_KEYS,
    Action,
    Done,
    IvrConfig,
    IvrSession,
    MenuOption,
    Play,
    PromptRef,
    StopPlay,
    required_prompts,
)


def lang_offers(first: str = "en") -> tuple[PromptRef, ...]:
    """The language offers, the guessed (or default) language first, then menu order."""
    order = [first] + [c for c in ("nl", "en", "es", "tr") if c != first]
    return tuple(PromptRef(code, "language_offer") for code in order)


def only_play(actions: list[Action]) -> Play:
    plays = [a for a in actions if isinstance(a, Play)]
    assert len(plays) == 1, actions
    return plays[0]


def started(guess: str | None = None, config: IvrConfig = DEMO_CONFIG) -> tuple[IvrSession, Play]:
    session = IvrSession(config, guessed_language=guess)
    return session, only_play(session.start(0.0))


def finish_play(session: IvrSession, play: Play, now: float) -> None:
    assert session.on_play_done(play.play_id, now) == []


def test_happy_path_spanish_visa() -> None:
    session, welcome = started()
    assert welcome.prompts == (PromptRef("en", "welcome"), *lang_offers("en"))
    finish_play(session, welcome, 10.0)
    topic_menu = only_play(session.on_digit("3", 11.0))
    assert topic_menu.prompts == (PromptRef("es", "topic_menu"),)
    assert session.language == "es" and session.topic is None
    finish_play(session, topic_menu, 15.0)
    actions = session.on_digit("2", 16.0)
    assert actions[0] == Play(actions[0].play_id, (PromptRef("es", "please_hold"),))
    assert actions[1] == Done("es", "visa", ("hours:open", "lang:es", "topic:visa"))
    assert session.done and session.topic == "visa" and session.deadline is None
    assert session.path == ["hours:open", "lang:es", "topic:visa"]


def test_every_menu_option_is_reachable() -> None:
    for lang in DEMO_CONFIG.languages:
        for topic in DEMO_CONFIG.topics:
            session, _ = started()
            session.on_digit(lang.digit, 1.0)
            done = session.on_digit(topic.digit, 2.0)[-1]
            assert done == Done(
                lang.value, topic.value, ("hours:open", f"lang:{lang.value}", f"topic:{topic.value}")
            )


def test_barge_in_stops_the_prompt_then_acts() -> None:
    session, welcome = started()
    actions = session.on_digit("4", 1.0)  # during the welcome
    assert actions[0] == StopPlay()
    assert only_play(actions).prompts == (PromptRef("tr", "topic_menu"),)
    actions = session.on_digit("9", 2.0)  # during the topic menu
    assert actions[0] == StopPlay()
    assert actions[-1] == Done("tr", "emergency", ("hours:open", "lang:tr", "topic:emergency"))


def test_no_stop_play_when_nothing_plays() -> None:
    session, welcome = started()
    finish_play(session, welcome, 5.0)
    actions = session.on_digit("1", 6.0)
    assert not any(isinstance(a, StopPlay) for a in actions)


def test_timer_starts_when_menu_prompt_ends() -> None:
    session, welcome = started()
    assert session.deadline is None  # not while the prompt plays
    finish_play(session, welcome, 30.0)
    assert session.deadline == 30.0 + DEMO_CONFIG.digit_timeout_s
    assert session.on_timer(35.0) == []  # early: nothing
    assert session.deadline == 36.0


def test_invalid_digit_replays_the_menu() -> None:
    session, welcome = started(guess="nl")
    finish_play(session, welcome, 3.0)
    replay = only_play(session.on_digit("7", 4.0))
    assert replay.prompts == (PromptRef("nl", "invalid"), *lang_offers("nl"))
    assert session.deadline is None
    assert session.stage == "lang"
    finish_play(session, replay, 9.0)
    assert session.deadline == 15.0
    only_play(session.on_digit("2", 10.0))
    assert session.path == ["hours:open", "lang:en"]
    assert session.history == ["lang:invalid:7", "lang:en"]


def test_invalid_digit_in_topic_menu_uses_the_chosen_language() -> None:
    session, _ = started()
    session.on_digit("3", 1.0)
    replay = only_play(session.on_digit("*", 2.0))
    assert replay.prompts == (PromptRef("es", "invalid"), PromptRef("es", "topic_menu"))


def test_no_input_replays_the_menu() -> None:
    session, welcome = started()
    finish_play(session, welcome, 5.0)
    replay = only_play(session.on_timer(11.0))
    assert replay.prompts == (PromptRef("en", "no_input"), *lang_offers("en"))
    assert session.deadline is None
    assert session.on_timer(30.0) == []  # no timer while the replay plays


@pytest.mark.parametrize("weird", ["", "A", "12", "x", "١", None, 3])
def test_unknown_input_is_invalid_and_never_raises(weird: object) -> None:
    session, _ = started()
    replay = only_play(session.on_digit(weird, 1.0))  # type: ignore[arg-type]
    assert replay.prompts[0] == PromptRef("en", "invalid")


def run_to_default(session: IvrSession, play: Play, now: float, failures: int) -> list[Action]:
    """Let the current menu time out ``failures`` times; return the last actions."""
    actions: list[Action] = []
    for _ in range(failures):
        finish_play(session, play, now)
        actions = session.on_timer(now + DEMO_CONFIG.digit_timeout_s)
        now += 10.0
        play = only_play(actions)
    return actions


def test_default_route_after_max_retries_timeouts() -> None:
    session, welcome = started()
    retries = DEMO_CONFIG.max_retries
    actions = run_to_default(session, welcome, 1.0, retries)
    assert session.path == ["hours:open"] and session.stage == "lang"
    actions = run_to_default(session, only_play(actions), 100.0, 1)
    assert only_play(actions).prompts == (PromptRef("en", "topic_menu"),)
    assert session.path == ["hours:open", "lang:timeout->en"]
    actions = run_to_default(session, only_play(actions), 200.0, retries + 1)
    assert actions[-1] == Done(
        "en", "travel_advice", ("hours:open", "lang:timeout->en", "topic:timeout->travel_advice")
    )
    assert session.done


def test_default_route_after_invalid_digits_uses_guessed_language() -> None:
    session, _ = started(guess="tr")
    for _ in range(DEMO_CONFIG.max_retries):
        only_play(session.on_digit("8", 1.0))
    actions = session.on_digit("8", 2.0)
    assert only_play(actions).prompts == (PromptRef("tr", "topic_menu"),)
    assert session.path == ["hours:open", "lang:invalid->tr"]
    assert session.language == "tr"


def test_mixed_failures_count_together() -> None:
    config = IvrConfig(DEMO_CONFIG.languages, DEMO_CONFIG.topics, max_retries=1)
    session, welcome = started(config=config)
    finish_play(session, welcome, 1.0)
    replay = only_play(session.on_timer(7.0))
    assert replay.prompts[0].key == "no_input"
    actions = session.on_digit("0", 8.0)
    assert session.path == ["hours:open", "lang:invalid->en"]
    assert only_play(actions).prompts == (PromptRef("en", "topic_menu"),)


def test_zero_retries_takes_the_default_at_once() -> None:
    config = IvrConfig(DEMO_CONFIG.languages, DEMO_CONFIG.topics, max_retries=0)
    session, _ = started(guess="es", config=config)
    session.on_digit("5", 1.0)
    actions = session.on_digit("5", 2.0)
    assert actions[-1] == Done(
        "es", "travel_advice", ("hours:open", "lang:invalid->es", "topic:invalid->travel_advice")
    )


def test_guessed_language_welcome_and_retry_prompts() -> None:
    session, welcome = started(guess="es")
    assert welcome.prompts[0] == PromptRef("es", "welcome")
    # each offer in its own language, the guessed one first: "Para español, pulse 3"
    assert welcome.prompts[1:] == lang_offers("es")
    assert session.language == "es"


def test_unknown_guess_falls_back_to_config_default() -> None:
    session, welcome = started(guess="fr")
    assert welcome.prompts[0] == PromptRef("en", "welcome")
    assert session.language == "en"


def test_stale_play_done_is_ignored() -> None:
    session, welcome = started()
    replay = only_play(session.on_digit("0", 1.0))  # barge-in: welcome is stale now
    assert session.on_play_done(welcome.play_id, 2.0) == []
    assert session.deadline is None
    assert session.on_play_done("not-ours", 2.0) == []
    assert session.deadline is None
    finish_play(session, replay, 3.0)
    assert session.deadline == 9.0


def test_digits_and_events_after_done_are_ignored() -> None:
    session, _ = started()
    session.on_digit("1", 1.0)
    hold = only_play(session.on_digit("1", 2.0))
    assert session.done
    assert session.on_digit("2", 3.0) == []
    assert session.on_play_done(hold.play_id, 4.0) == []
    assert session.on_timer(100.0) == []
    assert session.path == ["hours:open", "lang:nl", "topic:passport"]


def test_digits_before_start_are_ignored_and_double_start_raises() -> None:
    session = IvrSession(DEMO_CONFIG)
    assert session.on_digit("1", 0.0) == []
    assert session.stage == "idle"
    session.start(0.0)
    with pytest.raises(RuntimeError):
        session.start(1.0)


def test_play_ids_are_unique() -> None:
    session, first = started()
    second = only_play(session.on_digit("x", 1.0))
    third = only_play(session.on_digit("x", 2.0))
    assert len({first.play_id, second.play_id, third.play_id}) == 3


def test_required_prompts_cover_every_language_and_key() -> None:
    needed = required_prompts(DEMO_CONFIG)
    # the standard flow's keys plus "closed" (the hours branch), in every language
    assert len(needed) == 4 * (len(REQUIRED_PROMPT_KEYS) + 1)
    assert PromptRef("nl", "closed") in needed
    assert PromptRef("tr", "language_offer") in needed
    assert PromptRef("es", "please_hold") in needed


@pytest.mark.parametrize(
    "kwargs",
    [
        {"languages": ()},
        {"languages": (MenuOption("1", "nl"), MenuOption("1", "en"))},
        {"languages": (MenuOption("12", "en"),)},
        {"default_language": "fr"},
        {"default_topic": "weather"},
        {"digit_timeout_s": 0},
        {"max_retries": -1},
    ],
)
def test_bad_config_is_rejected(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {"languages": DEMO_CONFIG.languages, "topics": DEMO_CONFIG.topics}
    with pytest.raises(ValueError):
        IvrConfig(**{**base, **kwargs})  # type: ignore[arg-type]


def test_config_accepts_lists() -> None:
    config = IvrConfig(list(DEMO_CONFIG.languages), list(DEMO_CONFIG.topics))  # type: ignore[arg-type]
    assert config == DEMO_CONFIG and hash(config) == hash(DEMO_CONFIG)


EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("digit"), st.sampled_from(list("0123456789*#") + ["", "AB"])),
        st.tuples(st.just("play_done"), st.sampled_from(["current", "stale"])),
        st.tuples(st.just("timer"), st.floats(0, 20)),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(events=EVENTS, guess=st.sampled_from([None, "nl", "tr", "fr"]))
def test_any_event_sequence_ends_well(events: list[tuple[str, object]], guess: str | None) -> None:
    """Whatever happens, the session never raises, plays only known prompts, emits
    at most one Done, and a caller who stops pressing keys always reaches Done."""
    session = IvrSession(DEMO_CONFIG, guessed_language=guess)
    known = required_prompts(DEMO_CONFIG)
    now, last_play = 0.0, only_play(session.start(0.0))
    dones: list[Done] = []

    def feed(actions: list[Action]) -> None:
        nonlocal last_play
        for action in actions:
            if isinstance(action, Play):
                assert set(action.prompts) <= known
                last_play = action
            elif isinstance(action, Done):
                dones.append(action)

    for kind, arg in events:
        now += 1.0
        if kind == "digit":
            feed(session.on_digit(str(arg), now))
        elif kind == "play_done":
            feed(session.on_play_done(last_play.play_id if arg == "current" else "old", now))
        else:
            now += float(arg)  # type: ignore[arg-type]
            feed(session.on_timer(now))
    for _ in range(3 * (DEMO_CONFIG.max_retries + 1)):  # the caller goes silent
        if session.done:
            break
        now += 1.0
        feed(session.on_play_done(last_play.play_id, now))
        assert session.deadline is not None
        now = session.deadline
        feed(session.on_timer(now))
    assert session.done and len(dones) == 1
    assert dones[0].language in DEMO_CONFIG.language_values()
    assert dones[0].path == tuple(session.path) and len(session.path) == 3


def test_closed_line_plays_welcome_and_closed_then_hangs_up() -> None:
    from cti.ivr import Hangup

    session = IvrSession(DEMO_CONFIG, guessed_language="es", open_now=False)
    play = only_play(session.start(0.0))
    assert play.prompts == (PromptRef("es", "welcome"), PromptRef("es", "closed"))
    assert session.on_digit("3", 1.0) == []  # nothing to choose
    assert session.on_play_done(play.play_id, 5.0) == [Hangup("closed")]
    assert session.done and session.path == ["hours:closed"]


def test_notice_follows_the_welcome() -> None:
    session = IvrSession(DEMO_CONFIG, guessed_language="nl", notice="crisis_notice")
    play = only_play(session.start(0.0))
    assert play.prompts[:2] == (PromptRef("nl", "welcome"), PromptRef("nl", "crisis_notice"))
    assert play.prompts[2:] == lang_offers("nl")
    replay = only_play(session.on_digit("8", 1.0))
    assert PromptRef("nl", "crisis_notice") not in replay.prompts  # only the first time

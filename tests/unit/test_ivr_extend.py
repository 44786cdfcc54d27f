"""Flows extended per call by plugins: an intro first, extra menu options (cti/ivr/extend.py)."""

from __future__ import annotations

import pytest

from cti.ivr import (
    DEMO_CONFIG,
    Done,
    ExtraOption,
    Flow,
    FlowError,
    IvrSession,
    Play,
    PromptRef,
    as_flow,
    check_flow,
    extend_flow,
    extend_flow_with,
    required_prompts,
)
from cti.plugins.api import IvrExtension, MenuOption

STANDARD = as_flow(DEMO_CONFIG)
TOPICS = [o.value for o in DEMO_CONFIG.topics]
LANGS = STANDARD.languages  # nl en es tr, digits 1-4
CRISIS = ExtraOption("topic", "8", "crisis.option", "crisis", topic="emergency", priority=20,
                     flags={"crisis": True})


def prompts(action: object) -> tuple[PromptRef, ...]:
    assert isinstance(action, Play), action
    return action.prompts


def refs(language: str, *keys: str) -> tuple[PromptRef, ...]:
    return tuple(PromptRef(language, k) for k in keys)


def run(flow: Flow, digits: str, *, guessed: str = "es") -> tuple[list[tuple], Done]:
    """Press ``digits`` one per menu, each after its prompt; the prompts played and Done."""
    session = IvrSession(flow, guessed_language=guessed)
    actions = session.start(0)
    played = []
    now = 1.0
    for digit in digits:
        while True:  # play nodes go on by themselves; a menu waits for the digit
            (play,) = actions
            played.append(prompts(play))
            actions = session.on_play_done(play.play_id, now)
            now += 1
            if not actions:
                break
        actions = session.on_digit(digit, now)
    done = [a for a in actions if isinstance(a, Done)]
    assert len(done) == 1, actions
    return played, done[0]


def test_no_extension_is_the_flow_itself() -> None:
    assert extend_flow(STANDARD) is STANDARD
    assert extend_flow_with(STANDARD, [IvrExtension()]) is STANDARD
    assert run(extend_flow(STANDARD), "23") == run(STANDARD, "23")


def test_the_intro_plays_first_in_the_guessed_language_then_the_flow_as_before() -> None:
    flow = extend_flow(STANDARD, ["crisis.notice", "crisis.more"])
    played, done = run(flow, "23")
    plain_played, plain_done = run(STANDARD, "23")
    assert played[0] == refs("es", "crisis.notice", "crisis.more")
    assert played[1:] == plain_played and done == plain_done
    assert flow.nodes[flow.start].next == "hours"  # type: ignore[union-attr]


def test_intros_of_several_plugins_play_in_order() -> None:
    flow = extend_flow_with(STANDARD, [IvrExtension(intro=("a.one",)),
                                       IvrExtension(intro=("b.two",))])
    played, _ = run(flow, "23", guessed="nl")
    assert played[0] == refs("nl", "a.one", "b.two")


def test_an_extra_option_is_announced_after_the_menu_and_queues_with_its_values() -> None:
    flow = extend_flow(STANDARD, options=[CRISIS])
    played, done = run(flow, "28")
    assert played[-1] == refs("en", "topic_menu", "crisis.option")
    assert done == Done("en", "emergency", ("hours:open", "lang:en", "topic:crisis"), 20,
                        (("crisis", True),))
    # The other options are unchanged.
    assert run(flow, "23")[1] == run(STANDARD, "23")[1]


def test_the_extra_queue_says_please_hold_and_retries_replay_the_option() -> None:
    flow = extend_flow(STANDARD, options=[CRISIS])
    session = IvrSession(flow, guessed_language="en")
    (play,) = session.start(0)
    session.on_play_done(play.play_id, 1)
    (topic_menu,) = session.on_digit("2", 2)
    session.on_play_done(topic_menu.play_id, 3)
    (retry,) = session.on_digit("7", 4)  # not an option
    assert prompts(retry) == refs("en", "invalid", "topic_menu", "crisis.option")
    session.on_play_done(retry.play_id, 5)
    hold, done = session.on_digit("8", 6)
    assert prompts(hold) == refs("en", "please_hold") and isinstance(done, Done)


def test_an_option_in_the_language_menu_is_announced_in_every_language() -> None:
    option = ExtraOption("lang", "9", "crisis.option", "crisis", priority=20)
    played, done = run(extend_flow(STANDARD, options=[option]), "9", guessed="tr")
    order = ("tr", "nl", "en", "es")
    per_language = tuple(ref for code in order
                         for ref in refs(code, "language_offer", "crisis.option"))
    assert played[0] == refs("tr", "welcome") + per_language
    # No topic chosen: the flow's default; the guessed language stays.
    assert done == Done("tr", "travel_advice", ("hours:open", "lang:crisis"), 20, ())


def test_plugin_options_are_taken_as_they_are() -> None:
    ext = IvrExtension(intro=("crisis.notice",), options=(
        MenuOption("topic", "8", "crisis.option", "crisis", topic="emergency", priority=20,
                   flags={"crisis": True}),))
    played, done = run(extend_flow_with(STANDARD, [ext]), "28")
    assert played[0] == refs("es", "crisis.notice")
    assert done.topic == "emergency" and done.priority == 20 and done.flags == (("crisis", True),)


def test_the_original_flow_is_unchanged_and_the_extended_one_checks() -> None:
    before = (STANDARD.start, dict(STANDARD.nodes))
    flow = extend_flow(STANDARD, ["crisis.notice"], [CRISIS], topics=TOPICS)
    assert (STANDARD.start, dict(STANDARD.nodes)) == before
    check_flow(flow, topics=TOPICS)
    keys = flow.prompt_keys()
    assert keys["crisis.notice"] == flow.start and keys["crisis.option"] == "topic"
    assert "please_hold" in keys
    assert {PromptRef(code, "crisis.option") for code in LANGS} <= required_prompts(flow)


def test_a_node_name_already_taken_gets_a_suffix() -> None:
    once = extend_flow(STANDARD, ["a"])
    twice = extend_flow(once, ["b"], [CRISIS, ExtraOption("lang", "8", "p", "crisis")])
    assert twice.start == "extension_intro_2" and once.start == "extension_intro"
    assert {"topic_crisis_queue", "lang_crisis_queue"} <= set(twice.nodes)
    assert run(twice, "23", guessed="en")[0][:2] == [refs("en", "b"), refs("en", "a")]


@pytest.mark.parametrize(("option", "message"), [
    (ExtraOption("nope", "8", "p", "x"),
     "IVR option 'x' (digit '8' in menu 'nope'): flow 'standard' has no menu 'nope' "
     "(menus: lang, topic)"),
    (ExtraOption("queue", "8", "p", "x"), "has no menu 'queue'"),
    (ExtraOption("topic", "2", "p", "x"), "the digit is already used by option 'visa'"),
    (ExtraOption("topic", "10", "p", "x"), "'10' is not a single DTMF key"),
    (ExtraOption("topic", "", "p", "x"), "'' is not a single DTMF key"),
    (ExtraOption("topic", "8", "", "x"), "needs a prompt key"),
    (ExtraOption("topic", "8", "p", "x", priority=True), "priority must be a whole number"),
    (ExtraOption("topic", "8", "p", "x", topic="crisis"), "topic 'crisis' is not an IVR topic"),
])
def test_errors_name_the_option(option: ExtraOption, message: str) -> None:
    with pytest.raises(FlowError, match=message.replace("(", r"\(").replace(")", r"\)")):
        extend_flow(STANDARD, options=[option], topics=TOPICS)


def test_two_plugins_wanting_one_digit_name_the_first() -> None:
    other = ExtraOption("topic", "8", "other.option", "other")
    with pytest.raises(FlowError, match="already used by option 'crisis'") as err:
        extend_flow(STANDARD, options=[CRISIS, other])
    assert "\n" not in str(err.value)


def test_digits_during_the_intro_do_not_count_and_the_session_says_so() -> None:
    session = IvrSession(extend_flow(STANDARD, ["crisis.notice"]), guessed_language="en")
    (intro,) = session.start(0)
    assert not session.takes_digits
    assert session.on_digit("2", 0.5) == []  # ignored, kept in the history
    (menu,) = session.on_play_done(intro.play_id, 1)
    assert session.takes_digits and session.history == ["extension_intro:ignored:2"]

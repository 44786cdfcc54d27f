"""Unit tests of IVR flows as graphs: parsing, checking, running (no SIP, no clock)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.config import ConfigError, ivr_flows, parse_settings
from cti.ivr import (
    Action,
    Done,
    Flow,
    FlowError,
    Hangup,
    IvrSession,
    Play,
    PromptRef,
    StopPlay,
    Transfer,
    check_flow,
    parse_flow,
    required_prompts,
)

LANGS = ("nl", "en", "es", "tr")
TOPICS = ["passport", "visa", "travel_advice", "digid", "emergency"]
DIRECTORY = ["crisis_team"]
CRISIS = "+31247247248"
Q = {"type": "queue"}

# Every node type, as YAML gives it (True/False and int keys included).
FULL: dict[str, Any] = {
    "crisis_on": {"type": "branch", "by": "flag:crisis", "cases": {True: "notice", False: "hours"}},
    "notice": {"type": "play", "prompts": ["crisis_notice"], "next": "hours"},
    "hours": {"type": "branch", "by": "hours", "cases": {"open": "abroad", "closed": "closed"}},
    "closed": {"type": "hangup", "prompts": ["closed"], "reason": "closed"},
    "abroad": {"type": "branch", "by": "country", "cases": {"ES": "spain"}, "default": "lang"},
    "spain": {"type": "set", "language": "es", "flags": {"abroad": True}, "next": "lang"},
    "lang": {"type": "menu", "intro": ["welcome"], "prompts": ["language_offer"],
             "each_language": True, "default": "guessed",
             "options": {i: {"set": {"language": code}, "next": "topic"}
                         for i, code in enumerate(LANGS, 1)}},
    "topic": {"type": "menu", "prompts": ["topic_menu"], "default": 3, "timeout_s": 4,
              "retries": 1,
              "options": {1: {"set": {"topic": "passport"}, "next": "vip"},
                          2: {"set": {"topic": "visa"}, "next": "vip"},
                          3: {"set": {"topic": "travel_advice"}, "next": "vip"},
                          8: "bye",
                          9: {"set": {"topic": "emergency", "priority": 20},
                              "next": "crisis_team", "label": "crisis"}}},
    "vip": {"type": "branch", "by": "plugin:vip", "cases": {"yes": "vip_queue"},
            "default": "by_lang"},
    "vip_queue": {"type": "queue", "priority": 50},
    "by_lang": {"type": "branch", "by": "language",  # covers every language: no default
                "cases": {"nl": "queue", "en": "queue", "es": "queue", "tr": "tr_note"}},
    "tr_note": {"type": "play", "prompts": ["tr_note"], "next": "queue"},
    "crisis_team": {"type": "transfer", "to": "crisis_team", "prompts": ["transferring"],
                    "fallback": "crisis_queue"},
    "crisis_queue": {"type": "queue", "topic": "emergency", "priority": 20},
    "bye": {"type": "hangup"},
    "queue": Q,
}
# The path up to the language menu of a caller with no flags, no country, line open.
PRE = ("crisis_on:false", "hours:open", "abroad:none->default")


def build(nodes: dict[str, Any], start: str | None = None) -> Flow:
    data = {"start": start or next(iter(nodes)), "nodes": copy.deepcopy(nodes)}
    flow = parse_flow(CRISIS, data, languages=LANGS, default_language="en",
                      default_topic="travel_advice", digit_timeout_s=6.0, max_retries=2)
    check_flow(flow, topics=TOPICS, directory=DIRECTORY)
    return flow


FLOW = build(FULL)


def refs(lang: str, *keys: str) -> tuple[PromptRef, ...]:
    return tuple(PromptRef(lang, k) for k in keys)


def offers(first: str = "en") -> tuple[PromptRef, ...]:
    return tuple(PromptRef(c, "language_offer") for c in [first, *(x for x in LANGS if x != first)])


def only_play(actions: list[Action]) -> Play:
    plays = [a for a in actions if isinstance(a, Play)]
    assert len(plays) == 1, actions
    return plays[0]


def started(flow: Flow = FLOW, **kw: Any) -> tuple[IvrSession, Play]:
    session = IvrSession(flow, **kw)
    return session, only_play(session.start(0.0))


def at_topic(lang_digit: str = "2", **kw: Any) -> tuple[IvrSession, Play]:
    """A session whose caller chose a language and now hears the topic menu."""
    session, _ = started(**kw)
    return session, only_play(session.on_digit(lang_digit, 1.0))


# ------------------------------------------------------------- node types
def test_play_node_plays_then_next_and_ignores_digits() -> None:
    session, notice = started(flags={"crisis": True})
    assert notice.prompts == refs("en", "crisis_notice")
    assert session.path == ["crisis_on:true"] and session.stage == "notice"
    assert session.on_digit("1", 1.0) == []  # no barge-in on a play node
    assert session.history == ["notice:ignored:1"] and session.stage == "notice"
    menu = only_play(session.on_play_done(notice.play_id, 2.0))
    assert menu.prompts == (*refs("en", "welcome"), *offers("en"))
    assert session.path == ["crisis_on:true", "hours:open", "abroad:none->default"]


def test_menu_each_language_offers_the_guessed_language_first() -> None:
    _, menu = started(guessed_language="tr")
    assert menu.prompts == refs("tr", "welcome", "language_offer") + tuple(
        PromptRef(code, "language_offer") for code in ("nl", "en", "es"))


def test_menu_intro_only_on_first_entry() -> None:
    flow = build({"m": {"type": "menu", "intro": ["welcome"], "prompts": ["topic_menu"],
                        "default": 1, "options": {1: "queue", 0: "again"}},
                  "again": {"type": "play", "prompts": ["menu_again"], "next": "m"},
                  "queue": Q})
    session, first = started(flow)
    assert first.prompts == refs("en", "welcome", "topic_menu")
    retry = only_play(session.on_digit("7", 1.0))
    assert retry.prompts == refs("en", "invalid", "topic_menu")  # a retry: no intro
    again = session.on_digit("0", 2.0)
    assert again == [StopPlay(), Play("ivr-3", refs("en", "menu_again"))]
    menu_again = only_play(session.on_play_done("ivr-3", 3.0))
    assert menu_again.prompts == refs("en", "topic_menu")  # re-entered: no intro
    assert session.path == ["m:again"] and session.stage == "m"


def test_a_later_menu_plays_its_own_intro() -> None:
    flow = build({"a": {"type": "menu", "prompts": ["lang_menu"], "default": 1,
                        "options": {1: {"set": {"language": "nl"}, "next": "b"}}},
                  "b": {"type": "menu", "intro": ["topic_intro"], "prompts": ["topic_menu"],
                        "default": 1, "options": {1: "queue"}},
                  "queue": Q})
    session, _ = started(flow)
    actions = session.on_digit("1", 1.0)
    assert actions == [StopPlay(), Play("ivr-2", refs("nl", "topic_intro", "topic_menu"))]


def test_menu_options_as_node_name_and_as_set_next_label() -> None:
    session, _ = at_topic()
    assert session.on_digit("8", 2.0) == [StopPlay(), Hangup("ivr_hangup")]  # "8": bye
    assert session.path == [*PRE, "lang:en", "topic:bye"] and session.done
    session, _ = at_topic("3")
    actions = session.on_digit("9", 2.0)
    assert actions == [StopPlay(), Play("ivr-3", refs("es", "transferring")),
                       Transfer("crisis_team", "crisis_team")]
    assert session.path == [*PRE, "lang:es", "topic:crisis", "crisis_team:crisis_team"]
    assert session.topic == "emergency" and session.history[-1] == "topic:crisis"


def test_set_nodes_chain_without_prompts() -> None:
    session, menu = started(country="ES")
    assert menu.prompts == (PromptRef("es", "welcome"), *offers("es"))  # set: no prompt
    assert session.path == ["crisis_on:false", "hours:open", "abroad:ES"]
    assert session.language == "es" and session.flags == {"abroad": True}
    session.on_digit("1", 1.0)
    done = session.on_digit("1", 2.0)[-1]
    assert done == Done("nl", "passport", (*session.path,), None, (("abroad", True),))
    assert done.path[-3:] == ("topic:passport", "vip:none->default", "by_lang:nl")


def test_set_node_sets_language_topic_priority_flags() -> None:
    flow = build({"a": {"type": "set", "topic": "visa", "priority": 7,
                        "flags": {"vip": True, "desk": "tr"}, "next": "b"},
                  "b": {"type": "set", "language": "tr", "next": "queue"}, "queue": Q})
    session = IvrSession(flow, guessed_language="nl")  # the set node overrides the guess
    assert session.start(0.0) == [Play("ivr-1", refs("tr", "please_hold")),
                                  Done("tr", "visa", (), 7, (("vip", True), ("desk", "tr")))]
    assert session.done and session.topic == "visa"


def test_branch_by_hours_closed_plays_then_hangs_up() -> None:
    session, play = started(open_now=False, guessed_language="nl")
    assert play.prompts == refs("nl", "closed")
    assert session.on_digit("2", 1.0) == [] and session.history == ["closed:ignored:2"]
    assert session.on_play_done(play.play_id, 3.0) == [Hangup("closed")]
    assert session.done and session.path == ["crisis_on:false", "hours:closed"]


@pytest.mark.parametrize(("gateway", "path0"), [({"crisis": True}, "crisis_on:true"),
                                                 ({"crisis": False}, "crisis_on:false"),
                                                 ({}, "crisis_on:false")])
def test_branch_by_gateway_flag(gateway: dict[str, bool], path0: str) -> None:
    session, _ = started(flags=gateway)
    assert session.path[0] == path0
    assert session.stage == ("notice" if gateway.get("crisis") else "lang")


@pytest.mark.parametrize("flow_value", [True, False])
def test_flag_set_by_a_set_node_beats_the_gateway_flag(flow_value: bool) -> None:
    flow = build({"s": {"type": "set", "flags": {"crisis": flow_value}, "next": "b"},
                  "b": {"type": "branch", "by": "flag:crisis",
                        "cases": {"true": "yes", "false": "no"}},
                  "yes": {"type": "queue", "topic": "emergency"}, "no": Q})
    session = IvrSession(flow, flags={"crisis": not flow_value})
    done = session.start(0.0)[-1]
    assert isinstance(done, Done)
    assert done.path == (f"b:{str(flow_value).lower()}",)
    assert done.topic == ("emergency" if flow_value else "travel_advice")
    assert done.flags == (("crisis", flow_value),)


@pytest.mark.parametrize(("country", "entry", "lang"), [("ES", "abroad:ES", "es"),
                                                         ("DE", "abroad:DE->default", "en"),
                                                         (None, "abroad:none->default", "en")])
def test_branch_by_country(country: str | None, entry: str, lang: str) -> None:
    session, _ = started(country=country)
    assert session.path[-1] == entry and session.language == lang


def test_branch_by_language_covering_every_language() -> None:
    session, _ = at_topic("4")
    note = only_play(session.on_digit("2", 2.0))
    assert note.prompts == refs("tr", "tr_note") and session.path[-1] == "by_lang:tr"
    assert session.on_play_done(note.play_id, 3.0)[-1] == Done(
        "tr", "visa", (*PRE, "lang:tr", "topic:visa", "vip:none->default", "by_lang:tr"))


def test_branch_by_topic_uses_the_chosen_topic_or_the_default() -> None:
    flow = build({"m": {"type": "menu", "prompts": ["topic_menu"], "default": 9,
                        "options": {1: {"set": {"topic": "visa"}, "next": "t"}, 9: "t"}},
                  "t": {"type": "branch", "by": "topic", "cases": {"visa": "visa_q"},
                        "default": "queue"},
                  "visa_q": {"type": "queue", "priority": 3}, "queue": Q})
    session, _ = started(flow)
    assert session.on_digit("1", 1.0)[-1] == Done("en", "visa", ("m:visa", "t:visa"), 3)
    session, _ = started(flow)
    assert session.on_digit("9", 1.0)[-1] == Done(
        "en", "travel_advice", ("m:t", "t:none->default"))


@pytest.mark.parametrize(("answer", "entry", "priority"), [("yes", "vip:yes", 50),
                                                            ("no", "vip:no->default", None),
                                                            (None, "vip:none->default", None)])
def test_branch_by_plugin_answer(answer: str | None, entry: str, priority: int | None) -> None:
    asked: list[str] = []
    session, _ = at_topic(ask=lambda question: asked.append(question) or answer)
    done = session.on_digit("1", 2.0)[-1]
    assert asked == ["vip"]
    assert isinstance(done, Done) and entry in done.path and done.priority == priority
    assert done.topic == "passport"


def test_queue_node_sets_its_topic_and_priority_default_topic_otherwise() -> None:
    flow = build({"q": {"type": "queue", "prompts": [], "language": "nl"}})
    assert IvrSession(flow).start(0.0) == [Done("nl", "travel_advice", ())]
    flow = build({"q": {"type": "queue", "topic": "digid", "priority": 4}})
    assert IvrSession(flow, guessed_language="es").start(0.0) == [
        Play("ivr-1", refs("es", "please_hold")), Done("es", "digid", (), 4)]


def test_transfer_connected_ends_the_session_without_actions() -> None:
    session, _ = at_topic()
    session.on_digit("9", 2.0)
    assert session.on_digit("1", 3.0) == [] and session.history[-1] == "crisis_team:ignored:1"
    assert session.on_transfer_result(True, 4.0) == []
    assert session.done and session.stage == "done"
    assert session.on_transfer_result(False, 5.0) == [] and session.on_digit("1", 6.0) == []
    session, _ = started()  # outside a transfer node: ignored
    assert session.on_transfer_result(False, 1.0) == [] and session.stage == "lang"


def test_transfer_failed_goes_to_the_fallback() -> None:
    session, _ = at_topic("1")
    session.on_digit("9", 2.0)
    actions = session.on_transfer_result(False, 3.0)  # still playing "transferring"
    path = (*PRE, "lang:nl", "topic:crisis", "crisis_team:crisis_team", "crisis_team:failed")
    assert actions == [StopPlay(), Play("ivr-4", refs("nl", "please_hold")),
                       Done("nl", "emergency", path, 20)]
    session, _ = at_topic("1")
    transferring = only_play(session.on_digit("9", 2.0))
    assert session.on_play_done(transferring.play_id, 3.0) == []  # the controller dials
    assert session.on_transfer_result(False, 9.0)[0] == Play("ivr-4", refs("nl", "please_hold"))


def test_hangup_without_prompts_is_immediate() -> None:
    flow = build({"h": {"type": "hangup", "reason": "line_closed"}})
    assert IvrSession(flow).start(0.0) == [Hangup("line_closed")]


# --------------------------------------------------------- menu mechanics
def test_barge_in_stops_the_menu_prompt_first() -> None:
    session, _ = started()
    assert session.on_digit("3", 1.0) == [StopPlay(), Play("ivr-2", refs("es", "topic_menu"))]
    assert session.on_play_done("ivr-2", 2.0) == []
    actions = session.on_digit("2", 3.0)  # nothing plays: no StopPlay
    assert actions[0] == Play("ivr-3", refs("es", "please_hold")) and len(actions) == 2


def test_menu_timeout_and_retries_override_the_flow_defaults() -> None:
    session, menu = started()
    session.on_play_done(menu.play_id, 10.0)
    assert session.deadline == 16.0  # the flow's digit_timeout_s
    session, topic = at_topic()
    session.on_play_done(topic.play_id, 10.0)
    assert session.deadline == 14.0  # the topic menu's own timeout_s
    retry = only_play(session.on_timer(14.0))
    assert retry.prompts == refs("en", "no_input", "topic_menu")
    session.on_play_done(retry.play_id, 20.0)
    done = session.on_timer(24.0)[-1]  # retries: 1, so the second failure takes the default
    assert isinstance(done, Done) and done.topic == "travel_advice"
    assert "topic:timeout->travel_advice" in done.path


def test_timeouts_and_invalid_digits_count_together() -> None:
    session, topic = at_topic("3")
    session.on_play_done(topic.play_id, 2.0)
    only_play(session.on_timer(6.0))
    done = session.on_digit("5", 7.0)[-1]
    assert isinstance(done, Done) and done.path[-3] == "topic:invalid->travel_advice"
    assert session.history == ["lang:es", "topic:timeout", "topic:invalid:5"]


def test_retry_prompt_in_the_current_language_then_the_menu() -> None:
    session, _ = at_topic("1")
    assert only_play(session.on_digit("#", 2.0)).prompts == refs("nl", "invalid", "topic_menu")
    session, menu = started(guessed_language="nl")
    session.on_play_done(menu.play_id, 1.0)
    retry = only_play(session.on_timer(7.0))
    assert retry.prompts == (PromptRef("nl", "no_input"), *offers("nl"))  # no intro again


def test_default_routes_after_retries_digit_and_guessed() -> None:
    session, _ = started(country="ES")  # the set node made Spanish the guess
    for _ in range(2):
        only_play(session.on_digit("0", 1.0))
    assert only_play(session.on_digit("0", 2.0)).prompts == refs("es", "topic_menu")
    assert session.path[-1] == "lang:invalid->es" and session.language == "es"
    only_play(session.on_digit("0", 3.0))
    done = session.on_digit("*", 4.0)[-1]
    assert done == Done("es", "travel_advice", (*session.path,), None, (("abroad", True),))
    assert done.path[-3:] == ("topic:invalid->travel_advice", "vip:none->default", "by_lang:es")


def test_stale_play_done_is_ignored() -> None:
    session, menu = started()
    retry = only_play(session.on_digit("7", 1.0))
    assert session.on_play_done(menu.play_id, 2.0) == [] and session.deadline is None
    assert session.on_play_done("ivr-99", 2.0) == [] and session.deadline is None
    assert session.on_play_done(retry.play_id, 3.0) == [] and session.deadline == 9.0


# ------------------------------------------------------------ config errors
def menu(options: dict[Any, Any], default: Any = 1, **extra: Any) -> dict[str, Any]:
    return {"type": "menu", "prompts": ["topic_menu"], "options": options, "default": default,
            **extra}


def branch(by: str, cases: dict[Any, str], **extra: Any) -> dict[str, Any]:
    return {"type": "branch", "by": by, "cases": cases, **extra}


def set_(next_: str = "queue", **values: Any) -> dict[str, Any]:
    return {"type": "set", "next": next_, **values}


ERRORS = [
    ({"a": {"type": "menue"}},
     "node 'a': type: 'menue' is not a node type (did you mean 'menu'?) (expected one of play,"),
    ({"a": {"type": "play", "prompts": ["x"]}}, "node 'a': next: required key is missing"),
    ({"a": {"type": "play", "prompts": ["x"], "next": "queue", "nxet": "q"}, "queue": Q},
     "node 'a': unknown key 'nxet' (did you mean 'next'?)"),
    ({"topic": menu({1: {"nxt": "queue"}}), "queue": Q},
     "node 'topic': option '1': unknown key 'nxt' (did you mean 'next'?)"),
    ({"a": {"type": "play", "prompts": ["x"], "next": "qeue"}, "queue": Q},
     "node 'a': goes to 'qeue', which is not a node (did you mean 'queue'?)"),
    ({"b": branch("hours", {"open": "queue", "closed": "closd"}), "closed": {"type": "hangup"},
      "queue": Q}, "node 'b': goes to 'closd', which is not a node (did you mean 'closed'?)"),
    ({"t": {"type": "transfer", "to": "crisis_team", "fallback": "queu"}, "queue": Q},
     "node 't': goes to 'queu', which is not a node (did you mean 'queue'?)"),
    ({"s": set_(language="fr"), "queue": Q},
     "node 's': language 'fr' is not an IVR language (expected one of nl, en, es, tr)"),
    ({"s": set_(topic="visum"), "queue": Q},
     "node 's': topic 'visum' is not an IVR topic (did you mean 'visa'?)"),
    ({"q": {"type": "queue", "topic": "pasport"}},
     "node 'q': topic 'pasport' is not an IVR topic (did you mean 'passport'?)"),
    ({"topic": menu({10: "queue"}, 10), "queue": Q},
     "node 'topic': option '10' is not a single DTMF key (0-9, *, #)"),
    ({"topic": menu({1: "queue"}, 5), "queue": Q},
     "node 'topic': default '5' is not one of the options ['1']"),
    ({"topic": menu({1: "queue"}, "guessed"), "queue": Q},
     "node 'topic': default 'guessed' needs options that set a language"),
    ({"topic": menu({1: "queue", "1": "queue"}), "queue": Q}, "node 'topic': duplicate options"),
    ({"b": branch("weather", {"x": "queue"}, default="queue"), "queue": Q},
     "node 'b': by: 'weather' is not a branch subject (expected one of hours, country"),
    ({"b": branch("flag", {"true": "queue"}, default="queue"), "queue": Q},
     "node 'b': by: 'flag' is not a branch subject"),
    ({"b": branch("hours", {"open": "queue", "maybe": "queue"}), "queue": Q},
     "node 'b': case 'maybe' cannot happen when branching by hours (expected one of open, closed)"),
    ({"b": branch("language", {"fr": "queue"}, default="queue"), "queue": Q},
     "node 'b': case 'fr' cannot happen when branching by language (expected one of nl, en,"),
    ({"b": branch("topic", {"weather": "queue"}, default="queue"), "queue": Q},
     "node 'b': case 'weather' cannot happen when branching by topic"),
    ({"b": branch("country", {"es": "queue"}, default="queue"), "queue": Q},
     "node 'b': case 'es': expected an ISO country code such as ES"),
    ({"b": branch("hours", {"open": "queue"}), "queue": Q},
     "node 'b': needs a default: some callers match no case"),
    ({"b": branch("flag:crisis", {True: "queue"}), "queue": Q},
     "node 'b': needs a default: some callers match no case"),
    ({"b": branch("country", {"NL": "queue"}), "queue": Q}, "node 'b': needs a default"),
    ({"b": branch("plugin:vip", {"yes": "queue"}), "queue": Q}, "node 'b': needs a default"),
    ({"b": branch("topic", {t: "queue" for t in TOPICS}), "queue": Q},
     "node 'b': needs a default: some callers match no case (e.g. callers who have not chosen"),
    ({"queue": Q, "orphan": {"type": "hangup"}},
     "node 'orphan': cannot be reached from start 'queue'"),
    ({"a": set_("b", topic="visa"), "b": branch("flag:x", {"true": "queue", "false": "a"}),
      "queue": Q}, "node 'a': loops without playing anything (a -> b -> a)"),
    ({"t": {"type": "transfer", "to": "crisis_teem", "fallback": "queue"}, "queue": Q},
     "node 't': transfer target 'crisis_teem' is neither a directory entry (did you mean "
     "'crisis_team'?) nor a sip: URI"),
    ({"s": set_(priority="high"), "queue": Q},
     "node 's': priority: expected a whole number, got 'high'"),
    ({"topic": menu({1: {"set": {"priority": 1.5}, "next": "queue"}}), "queue": Q},
     "node 'topic': option '1': priority: expected a whole number, got 1.5"),
    ({"topic": menu({1: "queue"}, timeout_s="5s"), "queue": Q},
     "node 'topic': timeout_s: expected seconds, got '5s'"),
    ({"topic": menu({1: "queue"}, timeout_s=0), "queue": Q},
     "node 'topic': timeout_s must be > 0, got 0.0"),
    ({"topic": menu({1: "queue"}, retries=1.5), "queue": Q},
     "node 'topic': retries: expected a whole number, got 1.5"),
    ({"topic": menu({1: "queue"}, retries=-1), "queue": Q},
     "node 'topic': retries must be >= 0, got -1"),
]


@pytest.mark.parametrize(("nodes", "expected"), ERRORS, ids=[e[1][:40] for e in ERRORS])
def test_flow_errors_name_the_node(nodes: dict[str, Any], expected: str) -> None:
    with pytest.raises(FlowError) as e:
        build(nodes)
    assert str(e.value).startswith(expected)


def test_start_that_is_not_a_node() -> None:
    with pytest.raises(FlowError, match=r"^start: 'strat' is not a node \(did you mean 'start'"):
        build({"start": Q}, "strat")


def test_sip_uri_transfer_target_needs_no_directory_entry() -> None:
    flow = build({"t": {"type": "transfer", "to": "sip:embassy@192.0.2.1", "fallback": "queue"},
                  "queue": Q})
    assert IvrSession(flow).start(0.0) == [Transfer("sip:embassy@192.0.2.1", "t")]


def test_yaml_booleans_and_int_digits_as_keys() -> None:
    data = yaml.safe_load("""
      b: {type: branch, by: "flag:crisis", cases: {true: m, no: queue}}
      m: {type: menu, prompts: [topic_menu], default: 2, options: {1: queue, 2: queue}}
      queue: {type: queue, prompts: []}
    """)
    flow = build(data)
    assert flow.nodes["b"].cases == (("true", "m"), ("false", "queue"))  # type: ignore[union-attr]
    assert [c.digit for c in flow.nodes["m"].choices] == ["1", "2"]  # type: ignore[union-attr]
    session, _ = started(flow, flags={"crisis": True})
    assert session.on_digit("1", 1.0) == [StopPlay(), Done("en", "travel_advice",
                                                           ("b:true", "m:queue"))]


# ------------------------------------------------------------ config level
SRC = Path("config/cti.yaml").resolve()
DEMO = Path(__file__).resolve().parents[2] / "config" / "cti.yaml"
CRISIS_TEAM = {"key": "crisis_team", "name": "Crisis team", "uri": "sip:crisis@127.0.0.1:5090"}


def config(flow: dict[str, Any] | None = None, number: str = CRISIS) -> dict[str, Any]:
    d = yaml.safe_load(DEMO.read_text())
    d["sip"]["hotlines"] = [d["sip"]["hotlines"][0], CRISIS]
    d["directory"] = [dict(CRISIS_TEAM)]
    d["ivr"]["flows"] = {number: {"start": "crisis_on", "nodes": copy.deepcopy(flow or FULL)}}
    return d


def config_error(d: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as e:
        parse_settings(d, SRC)
    assert "\n" not in str(e.value)
    return str(e.value).removeprefix(f"{SRC}: ")


def test_config_flow_is_accepted_next_to_the_standard_flow() -> None:
    flows = ivr_flows(parse_settings(config(), SRC))
    assert set(flows) == {"", CRISIS}
    assert flows[""].name == "standard" and flows[""].start == "hours"
    crisis = flows[CRISIS]
    assert crisis.start == "crisis_on" and set(crisis.nodes) == set(FULL)
    assert crisis.languages == LANGS and crisis.default_topic == "travel_advice"
    assert PromptRef("tr", "transferring") in required_prompts(crisis)


def test_config_flow_for_a_number_that_is_not_a_hotline() -> None:
    msg = config_error(config(number="+31247247249"))
    assert msg.startswith("ivr.flows.+31247247249: not one of sip.hotlines (")
    assert CRISIS in msg and "calls to it never arrive" in msg


def test_config_broken_node_names_number_and_node() -> None:
    flow = copy.deepcopy(FULL)
    flow["topic"]["options"][1]["next"] = "qeue"
    msg = config_error(config(flow))
    assert "ivr.flows.+3124" in msg and "node 'topic'" in msg
    assert msg == (f"ivr.flows.{CRISIS}: node 'topic': goes to 'qeue', which is not a node "
                   "(did you mean 'queue'?)")


def test_config_transfer_target_must_be_in_the_directory() -> None:
    d = config()
    d["directory"] = []
    assert config_error(d).startswith(f"ivr.flows.{CRISIS}: node 'crisis_team': transfer target "
                          "'crisis_team' is neither a directory entry")


def test_config_duplicate_directory_keys_are_refused() -> None:
    d = config()
    d["directory"].append(dict(CRISIS_TEAM, uri="sip:other@127.0.0.1"))
    assert config_error(d).startswith("directory: duplicate keys in ['crisis_team', 'crisis_team']")


# ------------------------------------------------------------ property
EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("digit"), st.sampled_from([*"0123456789*#", "", "AB", "9", "2"])),
        st.tuples(st.just("play_done"), st.sampled_from(["current", "stale"])),
        st.tuples(st.just("timer"), st.floats(0, 20)),
        st.tuples(st.just("transfer"), st.booleans()),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(events=EVENTS, guess=st.sampled_from([None, "nl", "tr", "fr"]),
       country=st.sampled_from([None, "ES", "DE"]), open_now=st.booleans(),
       crisis=st.booleans(), answer=st.sampled_from([None, "yes", "no"]))
def test_any_event_sequence_ends_well(events: list[tuple[str, object]], guess: str | None,
                                      country: str | None, open_now: bool, crisis: bool,
                                      answer: str | None) -> None:
    """Never raises, plays only known prompts, ends at most once: with Done or Hangup as the
    last action other than Play, or in a connected transfer; a silent caller always ends."""
    session = IvrSession(FLOW, guessed_language=guess, country=country, open_now=open_now,
                         flags={"crisis": crisis}, ask=lambda _: answer)
    known = required_prompts(FLOW)
    emitted: list[Action] = []
    last_play: Play | None = None
    connected = False
    now = 0.0

    def feed(actions: list[Action]) -> None:
        nonlocal last_play
        for action in actions:
            if isinstance(action, Play):
                assert set(action.prompts) <= known
                last_play = action
        emitted.extend(actions)

    feed(session.start(now))
    for kind, arg in events:  # a caller pressing keys while prompts end, timers and transfers
        now += 1.0
        was_done, before = session.done, len(emitted)
        if kind == "digit":
            feed(session.on_digit(str(arg), now))
        elif kind == "play_done":
            current = last_play.play_id if last_play and arg == "current" else "stale"
            feed(session.on_play_done(current, now))
        elif kind == "timer":
            now += float(arg)  # type: ignore[arg-type]
            feed(session.on_timer(now))
        else:
            in_transfer = session.stage == "crisis_team"
            feed(session.on_transfer_result(bool(arg), now))
            connected |= bool(arg) and in_transfer
        if was_done:
            assert len(emitted) == before  # nothing after the end
    for _ in range(20):  # the caller goes silent; a transfer nobody answers fails
        if session.done:
            break
        now += 1.0
        feed(session.on_play_done(last_play.play_id if last_play else "", now))
        if session.deadline is not None:
            now = session.deadline
            feed(session.on_timer(now))
        feed(session.on_transfer_result(False, now))
    assert session.done
    ends = [a for a in emitted if isinstance(a, Done | Hangup)]
    last = [a for a in emitted if not isinstance(a, Play)][-1:]
    if connected:
        assert not ends and isinstance(last[0], Transfer)
    else:
        assert len(ends) == 1 and last == ends
        if isinstance(ends[0], Done):
            assert ends[0].path == tuple(session.path)
            assert ends[0].language in LANGS and ends[0].topic in TOPICS

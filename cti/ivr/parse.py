"""Build IVR flows: from the ``ivr.flows`` config, and the standard two-menu flow.

The config shape (YAML) of one flow, keyed by the dialled number::

    "+31247247248":
      start: hours
      nodes:
        hours:  {type: branch, by: hours, cases: {open: lang, closed: closed}}
        closed: {type: hangup, prompts: [welcome, closed], reason: closed}
        lang:   {type: menu, intro: [welcome], prompts: [language_offer],
                 each_language: true, default: guessed,
                 options: {"1": {set: {language: nl}, next: topic}, ...}}
        topic:  {type: menu, prompts: [topic_menu], default: "3",
                 options: {"1": {set: {topic: passport}, next: queue},
                           "9": crisis_team}}
        crisis_team: {type: transfer, to: crisis_team, fallback: queue}
        queue:  {type: queue}

A menu option is either a node name or ``{set: {...}, next: node, label: ...}``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from cti.ivr.graph import (
    BranchNode,
    Choice,
    Flow,
    FlowError,
    HangupNode,
    MenuNode,
    Node,
    PlayNode,
    QueueNode,
    SetNode,
    SetValues,
    TransferNode,
)

# Per node type: required keys, optional keys.
_KEYS: dict[str, tuple[set[str], set[str]]] = {
    "play": ({"prompts", "next"}, set()),
    "menu": ({"prompts", "options", "default"},
             {"intro", "each_language", "timeout_s", "retries"}),
    "set": ({"next"}, {"language", "topic", "priority", "flags"}),
    "branch": ({"by", "cases"}, {"default"}),
    "queue": (set(), {"prompts", "language", "topic", "priority"}),
    "transfer": ({"to", "fallback"}, {"prompts"}),
    "hangup": (set(), {"prompts", "reason"}),
}


def parse_flow(name: str, data: Any, *, languages: tuple[str, ...], default_language: str,
               default_topic: str, digit_timeout_s: float, max_retries: int,
               silent_retries: int | None = None, silent_skips_menus: bool = False) -> Flow:
    """A Flow from its config mapping (unchecked: run check_flow next)."""
    if not isinstance(data, Mapping):
        raise FlowError("expected a mapping with 'start' and 'nodes'")
    _keys(data, {"start", "nodes"}, set())
    nodes_data = data["nodes"]
    if not isinstance(nodes_data, Mapping) or not nodes_data:
        raise FlowError("nodes: expected a mapping of node name to node")
    nodes: dict[str, Node] = {}
    for node_name, node_data in nodes_data.items():
        try:
            nodes[str(node_name)] = _node(str(node_name), node_data)
        except FlowError as e:
            raise FlowError(f"node {str(node_name)!r}: {e}") from None
    return Flow(name=name, start=_text(data["start"], "start"), nodes=nodes,
                languages=languages, default_language=default_language,
                default_topic=default_topic, digit_timeout_s=digit_timeout_s,
                max_retries=max_retries, silent_retries=silent_retries,
                silent_skips_menus=silent_skips_menus)


def _node(name: str, data: Any) -> Node:
    if not isinstance(data, Mapping):
        raise FlowError("expected a mapping with a 'type'")
    kind = data.get("type")
    if kind not in _KEYS:
        raise FlowError(f"type: {kind!r} is not a node type{_did_you_mean(kind, _KEYS)} "
                        f"(expected one of {', '.join(_KEYS)})")
    required, optional = _KEYS[kind]
    _keys(data, required | {"type"}, optional)
    prompts = _prompts(data.get("prompts", ()), "prompts")
    if kind == "play":
        return PlayNode(name, prompts, _text(data["next"], "next"))
    if kind == "menu":
        return _menu(name, data, prompts)
    if kind == "set":
        return SetNode(name, _values(data, "set"), _text(data["next"], "next"))
    if kind == "branch":
        return _branch(name, data)
    if kind == "queue":
        values = _values(data, "queue")
        return QueueNode(name, prompts if "prompts" in data else ("please_hold",),
                         values.language, values.topic, values.priority)
    if kind == "transfer":
        return TransferNode(name, _text(data["to"], "to"), _text(data["fallback"], "fallback"),
                            prompts)
    return HangupNode(name, _text(data.get("reason", "ivr_hangup"), "reason"), prompts)


def _menu(name: str, data: Mapping[str, Any], prompts: tuple[str, ...]) -> MenuNode:
    options = data["options"]
    if not isinstance(options, Mapping) or not options:
        raise FlowError("options: expected a mapping of digit to node (or {set, next})")
    choices = []
    for digit, option in options.items():
        key = _case_key(digit)
        if isinstance(option, str):
            choices.append(Choice(key, option, label=option))
            continue
        if not isinstance(option, Mapping):
            raise FlowError(f"option {key!r}: expected a node name or {{set: ..., next: ...}}")
        try:
            _keys(option, {"next"}, {"set", "label"})
            values = _values(option.get("set") or {}, "set", whole=True)
        except FlowError as e:
            raise FlowError(f"option {key!r}: {e}") from None
        nxt = _text(option["next"], f"option {key!r}: next")
        label = str(option.get("label") or values.label() or nxt)
        choices.append(Choice(key, nxt, values, label))
    timeout = data.get("timeout_s")
    retries = data.get("retries")
    if timeout is not None and not _is_number(timeout):
        raise FlowError(f"timeout_s: expected seconds, got {timeout!r}")
    if retries is not None and (not isinstance(retries, int) or isinstance(retries, bool)):
        raise FlowError(f"retries: expected a whole number, got {retries!r}")
    return MenuNode(name, prompts, tuple(choices), _case_key(data["default"]),
                    intro=_prompts(data.get("intro", ()), "intro"),
                    each_language=bool(data.get("each_language", False)),
                    timeout_s=float(timeout) if timeout is not None else None, retries=retries)


def _branch(name: str, data: Mapping[str, Any]) -> BranchNode:
    cases = data["cases"]
    if not isinstance(cases, Mapping) or not cases:
        raise FlowError("cases: expected a mapping of value to node")
    pairs = tuple((_case_key(k), _text(v, f"cases.{_case_key(k)}")) for k, v in cases.items())
    default = data.get("default")
    return BranchNode(name, _text(data["by"], "by"), pairs,
                      _text(default, "default") if default is not None else None)


def _values(data: Any, where: str, whole: bool = False) -> SetValues:
    """language / topic / priority / flags from a set node, queue node or option."""
    if not isinstance(data, Mapping):
        raise FlowError(f"{where}: expected a mapping of language, topic, priority, flags")
    if whole:
        _keys(data, set(), {"language", "topic", "priority", "flags"}, where)
    priority = data.get("priority")
    if priority is not None and (not isinstance(priority, int) or isinstance(priority, bool)):
        raise FlowError(f"priority: expected a whole number, got {priority!r}")
    flags = data.get("flags") or {}
    if not isinstance(flags, Mapping):
        raise FlowError("flags: expected a mapping of flag name to value")
    language, topic = data.get("language"), data.get("topic")
    return SetValues(
        language=_text(language, "language") if language is not None else None,
        topic=_text(topic, "topic") if topic is not None else None,
        priority=priority,
        flags=tuple((str(k), v) for k, v in flags.items()),
    )


def _keys(data: Mapping[str, Any], required: set[str], optional: set[str],
          where: str = "") -> None:
    prefix = f"{where}: " if where else ""
    allowed = required | optional
    for key in data:
        if key not in allowed:
            raise FlowError(f"{prefix}unknown key {str(key)!r}{_did_you_mean(key, allowed)} "
                            f"(expected {', '.join(sorted(allowed))})")
    for key in sorted(required):
        if key not in data:
            raise FlowError(f"{prefix}{key}: required key is missing")


def _prompts(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise FlowError(f"{where}: expected a list of prompt keys")
    return tuple(value)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise FlowError(f"{where}: expected a name, got {value!r}")
    return value


def _case_key(value: Any) -> str:
    """YAML reads yes/no/on/off/true/false as booleans and bare digits as ints."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _did_you_mean(word: Any, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], 1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def standard_flow(languages: list[tuple[str, str]], topics: list[tuple[str, str]], *,
                  default_language: str, default_topic: str, digit_timeout_s: float = 6.0,
                  max_retries: int = 2, notice: str | None = None,
                  silent_retries: int | None = None, silent_skips_menus: bool = False) -> Flow:
    """The flow of a number with no flow of its own: hours, language, topic, queue.

    ``languages`` and ``topics`` are (digit, code) pairs in menu order.
    """
    topic_digit = next((d for d, code in topics if code == default_topic), None)
    if topic_digit is None:
        raise FlowError(f"default topic {default_topic!r} is not in the topic menu")
    nodes: dict[str, Node] = {
        "hours": BranchNode("hours", "hours", (("open", "lang"), ("closed", "closed"))),
        "closed": HangupNode("closed", "closed", ("welcome", "closed")),
        "lang": MenuNode(
            "lang", ("language_offer",),
            tuple(Choice(d, "topic", SetValues(language=code), code) for d, code in languages),
            "guessed", intro=("welcome",) + ((notice,) if notice else ()), each_language=True),
        "topic": MenuNode(
            "topic", ("topic_menu",),
            tuple(Choice(d, "queue", SetValues(topic=code), code) for d, code in topics),
            topic_digit),
        "queue": QueueNode("queue"),
    }
    return Flow(name="standard", start="hours", nodes=nodes,
                languages=tuple(code for _, code in languages),
                default_language=default_language, default_topic=default_topic,
                digit_timeout_s=digit_timeout_s, max_retries=max_retries,
                silent_retries=silent_retries, silent_skips_menus=silent_skips_menus)

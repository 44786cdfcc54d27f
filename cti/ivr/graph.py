"""IVR flows as graphs of named nodes, read from config and checked at start.

A flow belongs to a dialled number. Its nodes play prompts, offer menus, set
the call's language / topic / flags / priority, branch (on opening hours, a
flag, the caller's country or language, a plugin's answer), queue the call,
transfer it to a directory entry or a SIP URI, or hang up. Every reference is
checked when the gateway starts, and every error names the node, so a typo in
a flow stops the start instead of dropping callers at 3 a.m.

This module is pure data and validation; :mod:`cti.ivr.engine` runs a flow.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: The DTMF symbols a phone can send.
DTMF_DIGITS = frozenset("0123456789*#")

#: Prompt keys a menu plays on failed attempts, in the session's language.
RETRY_PROMPTS = ("invalid", "no_input")

#: Branch subjects that need no argument, and the fixed cases some allow.
_FIXED_CASES = {"hours": ("open", "closed"), "flag": ("true", "false")}
_SUBJECTS = ("hours", "country", "language", "topic", "flag:<name>", "plugin:<question>")


class FlowError(ValueError):
    """A flow that cannot run; the message names the node."""


@dataclass(frozen=True)
class SetValues:
    """What a set node (or a menu choice) records on the call."""

    language: str | None = None
    topic: str | None = None
    priority: int | None = None
    flags: tuple[tuple[str, Any], ...] = ()

    def label(self) -> str | None:
        return self.topic or self.language


@dataclass(frozen=True)
class Choice:
    """A menu entry: the key, what it sets, where it goes, its name in the path."""

    digit: str
    next: str
    set: SetValues = SetValues()
    label: str = ""


@dataclass(frozen=True)
class PlayNode:
    name: str
    prompts: tuple[str, ...]
    next: str


@dataclass(frozen=True)
class MenuNode:
    """``intro`` is played on the first entry only (e.g. the welcome).

    ``each_language``: the menu prompts are played once per configured
    language, the guessed one first (a language menu). ``default`` is a digit
    or ``"guessed"``: the choice that sets the language currently guessed.
    """

    name: str
    prompts: tuple[str, ...]
    choices: tuple[Choice, ...]
    default: str
    intro: tuple[str, ...] = ()
    each_language: bool = False
    timeout_s: float | None = None
    retries: int | None = None

    def lookup(self, digit: object) -> Choice | None:
        return next((c for c in self.choices if c.digit == digit), None)


@dataclass(frozen=True)
class SetNode:
    name: str
    values: SetValues
    next: str


@dataclass(frozen=True)
class BranchNode:
    """``by``: hours | country | language | topic | flag:<name> | plugin:<question>."""

    name: str
    by: str
    cases: tuple[tuple[str, str], ...]
    default: str | None = None


@dataclass(frozen=True)
class QueueNode:
    name: str
    prompts: tuple[str, ...] = ("please_hold",)
    language: str | None = None
    topic: str | None = None
    priority: int | None = None


@dataclass(frozen=True)
class TransferNode:
    """Transfer to ``to`` (a directory key or a SIP URI); ``fallback`` if it fails."""

    name: str
    to: str
    fallback: str
    prompts: tuple[str, ...] = ()


@dataclass(frozen=True)
class HangupNode:
    name: str
    reason: str = "ivr_hangup"
    prompts: tuple[str, ...] = ()


Node = PlayNode | MenuNode | SetNode | BranchNode | QueueNode | TransferNode | HangupNode


@dataclass(frozen=True)
class Flow:
    """A checked flow: nodes by name, the first node, and the menu timing."""

    name: str
    start: str
    nodes: Mapping[str, Node]
    languages: tuple[str, ...]
    default_language: str
    default_topic: str
    digit_timeout_s: float = 6.0
    max_retries: int = 2
    # A silent caller (no key yet in the call): a menu's silences before its
    # default is taken (None: max_retries, like any failure), and whether the
    # later menus are skipped with their defaults after that (a rotary phone, a
    # caller too upset to press: they reach an advisor sooner).
    silent_retries: int | None = None
    silent_skips_menus: bool = False

    def prompt_keys(self) -> dict[str, str]:
        """Every prompt key the flow may play, with the first node that plays it."""
        keys: dict[str, str] = {}
        for node in self.nodes.values():
            own = tuple(getattr(node, "intro", ())) + tuple(getattr(node, "prompts", ()))
            if isinstance(node, MenuNode):
                own += RETRY_PROMPTS
            for key in own:
                keys.setdefault(key, node.name)
        return keys


# ------------------------------------------------------------------ checking
def check_flow(flow: Flow, *, topics: Iterable[str], directory: Iterable[str] = ()) -> None:
    """Raise FlowError naming the first node that cannot run."""
    topics, directory = set(topics), set(directory)
    names = list(flow.nodes)
    if flow.start not in flow.nodes:
        raise FlowError(f"start: {flow.start!r} is not a node{_hint(flow.start, names)}")
    for node in flow.nodes.values():
        try:
            _check_node(node, flow, topics, directory)
        except FlowError as e:
            raise FlowError(f"node {node.name!r}: {e}") from None
    _check_reachable(flow)
    _check_no_silent_loop(flow)


def _check_node(node: Node, flow: Flow, topics: set[str], directory: set[str]) -> None:
    for target in _targets(node):
        if target not in flow.nodes:
            raise FlowError(f"goes to {target!r}, which is not a node"
                            f"{_hint(target, list(flow.nodes))}")
    for values in _set_values(node):
        if values.language is not None and values.language not in flow.languages:
            raise FlowError(f"language {values.language!r} is not an IVR language "
                            f"(expected one of {', '.join(flow.languages)})")
        if values.topic is not None and values.topic not in topics:
            raise FlowError(f"topic {values.topic!r} is not an IVR topic"
                            f"{_hint(values.topic, sorted(topics))}")
    if isinstance(node, MenuNode):
        _check_menu(node)
    elif isinstance(node, BranchNode):
        _check_branch(node, flow.languages, topics)
    elif isinstance(node, TransferNode) and not node.to.startswith(("sip:", "sips:")) \
            and node.to not in directory:
        raise FlowError(f"transfer target {node.to!r} is neither a directory entry"
                        f"{_hint(node.to, sorted(directory))} nor a sip: URI")


def _check_menu(node: MenuNode) -> None:
    if not node.choices:
        raise FlowError("a menu needs at least one option")
    digits = [c.digit for c in node.choices]
    for digit in digits:
        if digit not in DTMF_DIGITS:
            raise FlowError(f"option {digit!r} is not a single DTMF key (0-9, *, #)")
    if len(set(digits)) != len(digits):
        raise FlowError(f"duplicate options in {digits}")
    if node.default == "guessed":
        if not any(c.set.language for c in node.choices):
            raise FlowError("default 'guessed' needs options that set a language")
    elif node.default not in digits:
        raise FlowError(f"default {node.default!r} is not one of the options {digits} "
                        "(a caller who presses nothing must get somewhere)")
    if node.timeout_s is not None and not node.timeout_s > 0:
        raise FlowError(f"timeout_s must be > 0, got {node.timeout_s!r}")
    if node.retries is not None and node.retries < 0:
        raise FlowError(f"retries must be >= 0, got {node.retries!r}")


def _check_branch(node: BranchNode, languages: tuple[str, ...], topics: set[str]) -> None:
    subject, _, arg = node.by.partition(":")
    if subject not in ("hours", "country", "language", "topic", "flag", "plugin") or \
            (subject in ("flag", "plugin")) != bool(arg) or (subject not in ("flag", "plugin")
                                                              and arg):
        raise FlowError(f"by: {node.by!r} is not a branch subject (expected one of "
                        f"{', '.join(_SUBJECTS)})")
    known: Iterable[str] | None = _FIXED_CASES.get(subject)
    if subject == "language":
        known = languages
    elif subject == "topic":
        known = sorted(topics)
    for value, _ in node.cases:
        if known is not None and value not in known:
            raise FlowError(f"case {value!r} cannot happen when branching by {subject} "
                            f"(expected one of {', '.join(known)})")
        if subject == "country" and not (len(value) == 2 and value.isalpha()
                                         and value.isupper()):
            raise FlowError(f"case {value!r}: expected an ISO country code such as ES")
    # A caller may not have chosen a topic yet: a topic branch always needs a default.
    covered = subject != "topic" and known is not None and set(known) <= {v for v, _ in node.cases}
    if node.default is None and not covered:
        unset = " (e.g. callers who have not chosen a topic yet)" if subject == "topic" else ""
        raise FlowError(f"needs a default: some callers match no case{unset}")


def _check_reachable(flow: Flow) -> None:
    seen, todo = set(), [flow.start]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_targets(flow.nodes[name]))
    for name in flow.nodes:
        if name not in seen:
            raise FlowError(f"node {name!r}: cannot be reached from start {flow.start!r}")


def _check_no_silent_loop(flow: Flow) -> None:
    """Set and branch nodes take no time: a loop of only those would spin forever."""
    instant = {n for n, node in flow.nodes.items() if isinstance(node, SetNode | BranchNode)}
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for target in _targets(flow.nodes[name]):
            if target not in instant:
                continue
            if state.get(target) == 1:
                loop = " -> ".join([*trail[trail.index(target):], target])
                raise FlowError(f"node {target!r}: loops without playing anything ({loop})")
            if target not in state:
                visit(target, [*trail, target])
        state[name] = 2

    for name in sorted(instant):
        if name not in state:
            visit(name, [name])


def _targets(node: Node) -> list[str]:
    if isinstance(node, PlayNode | SetNode):
        return [node.next]
    if isinstance(node, MenuNode):
        return [c.next for c in node.choices]
    if isinstance(node, BranchNode):
        return [t for _, t in node.cases] + ([node.default] if node.default else [])
    if isinstance(node, TransferNode):
        return [node.fallback]
    return []


def _set_values(node: Node) -> list[SetValues]:
    if isinstance(node, SetNode):
        return [node.values]
    if isinstance(node, MenuNode):
        return [c.set for c in node.choices]
    if isinstance(node, QueueNode):
        return [SetValues(language=node.language, topic=node.topic)]
    return []


def _hint(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, 1)
    return f" (did you mean {close[0]!r}?)" if close else ""

"""A flow extended for one call by plugins: an intro first, extra menu options.

Plugins contribute per call (``cti_ivr_extend``) prompt keys to play before the
flow's first node and options to add to its menus. This module builds the
extended flow from plain values and returns a new :class:`~cti.ivr.graph.Flow`;
the original is unchanged, and without any extension it is returned as is.

It stays pure and independent of :mod:`cti.plugins`: a plugin's
``IvrExtension`` / ``MenuOption`` fit :class:`ExtensionLike` / :class:`OptionLike`
by their attributes, and :func:`extend_flow_with` takes them as they are.

Decisions:

- the intro is one new play node, the new start, going to the old start: every
  caller hears it first (closed hours included), in the guessed language;
- an option is a new choice of its menu going to a new queue node (the standard
  queue's ``please_hold``), setting the option's topic (None: the topic chosen
  so far, else the flow's default), priority and flags; the path records
  ``<menu>:<label>``;
- its prompt is appended to the menu's prompts, so it is played after them, on
  retries too. In an ``each_language`` menu (the language menu, before the caller
  chose) the menu's prompts are played once per language, so the option's
  prompt is too, after that language's own prompts: a caller who does not
  understand the guessed language still hears the option in theirs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from cti.ivr.graph import (
    DTMF_DIGITS,
    Choice,
    Flow,
    FlowError,
    MenuNode,
    Node,
    PlayNode,
    QueueNode,
    SetValues,
)

#: The name of the intro's play node (with a suffix if a flow already has one).
INTRO_NODE = "extension_intro"


class OptionLike(Protocol):
    """What an extra menu option must have (cti.plugins.api.MenuOption has it)."""

    @property
    def menu(self) -> str: ...
    @property
    def digit(self) -> str: ...
    @property
    def prompt(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def topic(self) -> str | None: ...
    @property
    def priority(self) -> int | None: ...
    @property
    def flags(self) -> Mapping[str, Any]: ...


class ExtensionLike(Protocol):
    """One plugin's extension (cti.plugins.api.IvrExtension has it)."""

    @property
    def intro(self) -> Sequence[str]: ...
    @property
    def options(self) -> Sequence[OptionLike]: ...


@dataclass(frozen=True)
class ExtraOption:
    """Pressing ``digit`` in menu ``menu`` queues the call with ``topic`` (None: as
    chosen so far), ``priority`` and ``flags``; ``prompt`` announces the option."""

    menu: str
    digit: str
    prompt: str
    label: str
    topic: str | None = None
    priority: int | None = None
    flags: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, option: OptionLike) -> ExtraOption:
        """The same option from any object with these attributes (a plugin's)."""
        return cls(option.menu, option.digit, option.prompt, option.label, option.topic,
                   option.priority, dict(option.flags))


def extend_flow(flow: Flow, intro: Sequence[str] = (), options: Sequence[ExtraOption] = (),
                *, topics: Iterable[str] | None = None) -> Flow:
    """``flow`` with ``intro`` played first and ``options`` added to their menus.

    ``topics``: when given, an option's topic must be one of them. Raises
    FlowError (a ValueError) naming the option: unknown menu, digit that is not
    a DTMF key or is already used in that menu, empty prompt, bad priority.
    """
    if not intro and not options:
        return flow
    nodes: dict[str, Node] = dict(flow.nodes)
    known = None if topics is None else set(topics)
    for option in options:
        _add_option(nodes, flow.name, option, known)
    start = flow.start
    if intro:
        start = _free_name(nodes, INTRO_NODE)
        nodes[start] = PlayNode(start, tuple(intro), flow.start)
    return replace(flow, start=start, nodes=nodes)


def extend_flow_with(flow: Flow, extensions: Iterable[ExtensionLike], *,
                     topics: Iterable[str] | None = None) -> Flow:
    """Several plugins' extensions, in order: their intros one after another."""
    extensions = list(extensions)
    intro = [key for ext in extensions for key in ext.intro]
    options = [ExtraOption.of(o) for ext in extensions for o in ext.options]
    return extend_flow(flow, intro, options, topics=topics)


def _add_option(nodes: dict[str, Node], flow_name: str, option: ExtraOption,
                topics: set[str] | None) -> None:
    menu = _check_option(nodes, flow_name, option, topics)
    label = option.label or option.prompt
    queue = _free_name(nodes, f"{menu.name}_{label}_queue")
    nodes[queue] = QueueNode(queue)  # the standard queue's prompts: please_hold
    values = SetValues(topic=option.topic, priority=option.priority,
                       flags=tuple(option.flags.items()))
    nodes[menu.name] = replace(menu, prompts=(*menu.prompts, option.prompt),
                               choices=(*menu.choices, Choice(option.digit, queue, values, label)))


def _check_option(nodes: Mapping[str, Node], flow_name: str, option: ExtraOption,
                  topics: set[str] | None) -> MenuNode:
    """The option's menu (as extended so far, so two plugins' digits clash too)."""
    where = f"IVR option {option.label or option.prompt!r} (digit {option.digit!r} " \
            f"in menu {option.menu!r})"
    menu = nodes.get(option.menu)
    if not isinstance(menu, MenuNode):
        menus = sorted(n for n, node in nodes.items() if isinstance(node, MenuNode))
        raise FlowError(f"{where}: flow {flow_name!r} has no menu {option.menu!r} "
                        f"(menus: {', '.join(menus) or 'none'})")
    if option.digit not in DTMF_DIGITS:
        raise FlowError(f"{where}: {option.digit!r} is not a single DTMF key (0-9, *, #)")
    taken = menu.lookup(option.digit)
    if taken is not None:
        raise FlowError(f"{where}: the digit is already used by option {taken.label!r}")
    if not option.prompt:
        raise FlowError(f"{where}: needs a prompt key announcing it")
    if option.priority is not None and (not isinstance(option.priority, int)
                                        or isinstance(option.priority, bool)):
        raise FlowError(f"{where}: priority must be a whole number, got {option.priority!r}")
    if topics is not None and option.topic is not None and option.topic not in topics:
        raise FlowError(f"{where}: topic {option.topic!r} is not an IVR topic")
    return menu


def _free_name(nodes: Mapping[str, Node], name: str) -> str:
    """``name``, or ``name_2``, ``name_3``... if a node already has it."""
    candidate, n = name, 1
    while candidate in nodes:
        n += 1
        candidate = f"{name}_{n}"
    return candidate

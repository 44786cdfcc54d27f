"""Pure IVR engine: DTMF menus as a state machine.

The engine takes events (start, digit, play finished, timer) together with the
current time and returns actions (play prompts, stop playing, done). It does no
I/O and owns no clock or timer: the controller plays the prompts, feeds the
DTMF digits and calls :meth:`IvrSession.on_timer` when :attr:`IvrSession.deadline`
has passed. That keeps every branch testable without SIP and lets the same
engine run under asyncio, in a replay or in a simulation.

A session runs a :class:`~cti.ivr.graph.Flow` (a graph of named nodes from
the config of the dialled number); a number without a flow of its own runs the
standard flow built from :class:`IvrConfig`: opening hours, language menu,
topic menu (in the chosen language), queue.

A caller is never hung up on: a menu that keeps failing (invalid digits or no
input) ends in its default choice rather than in a disconnect.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cti.ivr.graph import (
    DTMF_DIGITS,
    BranchNode,
    Choice,
    Flow,
    HangupNode,
    MenuNode,
    Node,
    PlayNode,
    QueueNode,
    SetNode,
    SetValues,
    TransferNode,
)
from cti.ivr.parse import standard_flow

#: Prompt keys the engine plays; each must exist for every configured language.
REQUIRED_PROMPT_KEYS: tuple[str, ...] = (
    "welcome",
    "language_offer",
    "topic_menu",
    "invalid",
    "no_input",
    "please_hold",
)


@dataclass(frozen=True)
class MenuOption:
    """One entry of a DTMF menu: the key to press and the value it selects."""

    digit: str
    value: str


@dataclass(frozen=True)
class IvrConfig:
    """The menus and their timing.

    Validated on construction (ValueError naming the problem) so a bad IVR
    config stops the gateway at start instead of misrouting callers later.
    ``max_retries`` is the number of times a menu is offered again after a
    failed attempt; the failure after the last retry selects the default.
    """

    languages: tuple[MenuOption, ...]
    topics: tuple[MenuOption, ...]
    default_language: str = "en"
    default_topic: str = "travel_advice"
    digit_timeout_s: float = 6.0
    max_retries: int = 2

    def __post_init__(self) -> None:
        # Accept lists from config loaders but store tuples (hashable, immutable).
        object.__setattr__(self, "languages", tuple(self.languages))
        object.__setattr__(self, "topics", tuple(self.topics))
        _check_menu("languages", self.languages, self.default_language)
        _check_menu("topics", self.topics, self.default_topic)
        if not self.digit_timeout_s > 0:
            raise ValueError(f"digit_timeout_s must be > 0, got {self.digit_timeout_s!r}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries!r}")

    def language_values(self) -> tuple[str, ...]:
        """The configured language codes in menu order."""
        return tuple(option.value for option in self.languages)


def _check_menu(name: str, options: tuple[MenuOption, ...], default: str) -> None:
    """Reject empty menus, non-DTMF or duplicate digits and unknown defaults."""
    if not options:
        raise ValueError(f"{name}: the menu needs at least one option")
    digits = [option.digit for option in options]
    values = [option.value for option in options]
    for digit in digits:
        if digit not in DTMF_DIGITS:
            raise ValueError(f"{name}: {digit!r} is not a single DTMF key (0-9, *, #)")
    if len(set(digits)) != len(digits):
        raise ValueError(f"{name}: duplicate digits in {digits}")
    if len(set(values)) != len(values):
        raise ValueError(f"{name}: duplicate values in {values}")
    if default not in values:
        raise ValueError(f"{name}: default {default!r} is not one of {values}")


#: The demo hotline: language menu then topic menu.
DEMO_CONFIG = IvrConfig(
    languages=(
        MenuOption("1", "nl"),
        MenuOption("2", "en"),
        MenuOption("3", "es"),
        MenuOption("4", "tr"),
    ),
    topics=(
        MenuOption("1", "passport"),
        MenuOption("2", "visa"),
        MenuOption("3", "travel_advice"),
        MenuOption("4", "digid"),
        MenuOption("9", "emergency"),
    ),
)


@dataclass(frozen=True)
class PromptRef:
    """A prompt by language and key; the controller maps it to an audio file."""

    language: str
    key: str


def required_prompts(config: IvrConfig | Flow) -> set[PromptRef]:
    """Every prompt a flow may ask for, so the controller can check at start.

    Every key is needed in every language: prompts are played in the guessed
    or chosen language, which can be any configured language.
    """
    flow = as_flow(config)
    return {PromptRef(language, key) for language in flow.languages
            for key in flow.prompt_keys()}


def as_flow(config: IvrConfig | Flow, notice: str | None = None) -> Flow:
    """A flow as is, or the standard flow of an IvrConfig."""
    if isinstance(config, Flow):
        return config
    return standard_flow(
        [(o.digit, o.value) for o in config.languages], [(o.digit, o.value) for o in config.topics],
        default_language=config.default_language, default_topic=config.default_topic,
        digit_timeout_s=config.digit_timeout_s, max_retries=config.max_retries, notice=notice)


@dataclass(frozen=True)
class Play:
    """Play ``prompts`` one after another; report the end with ``play_id``."""

    play_id: str
    prompts: tuple[PromptRef, ...]


@dataclass(frozen=True)
class StopPlay:
    """Stop whatever this session is playing (barge-in)."""


@dataclass(frozen=True)
class Done:
    """The IVR is finished: route the call with these requirements."""

    language: str
    topic: str
    path: tuple[str, ...]
    #: Set by the flow (a crisis line's queue); None: the controller decides.
    priority: int | None = None
    flags: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Transfer:
    """Connect the caller to ``target`` (directory key or SIP URI).

    The controller reports the outcome with :meth:`IvrSession.on_transfer_result`.
    """

    target: str
    node: str


@dataclass(frozen=True)
class Hangup:
    """End the call after what was played (e.g. the line is closed)."""

    reason: str


Action = Play | StopPlay | Done | Transfer | Hangup


#: Set and branch nodes chained without a prompt: more than this is a bug in
#: a flow that slipped past the checks; the caller is queued, not dropped.
MAX_INSTANT_STEPS = 64

#: Answers a plugin question for a branch node (None: no answer, take the default).
AskPlugin = Callable[[str], "str | None"]


class IvrSession:
    """One caller's walk through a flow.

    Only the play with the id issued last matters: a ``play_done`` with an
    older id (a prompt stopped by barge-in, a race in the media worker) is
    ignored. The digit timer starts when the menu prompt has finished. Digits
    pressed during a menu's prompts interrupt them (barge-in) and count;
    digits during other prompts are ignored (kept in :attr:`history`).
    """

    def __init__(
        self, config: IvrConfig | Flow, *, guessed_language: str | None = None,
        open_now: bool = True, notice: str | None = None, country: str | None = None,
        flags: Mapping[str, Any] | None = None, ask: AskPlugin | None = None,
    ) -> None:
        """``open_now``: within opening hours; ``notice``: a prompt played after the
        welcome of the standard flow (a crisis message); ``country``: the caller's
        ISO country; ``flags``: the gateway's flags (e.g. crisis); ``ask``: plugin
        answers for ``plugin:<question>`` branches."""
        self.flow = as_flow(config, notice)
        self._open = open_now
        self._country = country
        self._ask = ask
        self._gateway_flags = dict(flags or {})
        known = guessed_language in self.flow.languages
        # An unknown guess (country code of a language we do not serve) is dropped.
        self._language = guessed_language if known and guessed_language else \
            self.flow.default_language
        self._topic: str | None = None
        self._priority: int | None = None
        #: Flags set by the flow for this call (shown on the screen pop).
        self.flags: dict[str, Any] = {}
        self.path: list[str] = []
        #: Every input event, including failed attempts, for diagnostics.
        self.history: list[str] = []
        self._node: Node | None = None
        self._entered: set[str] = set()  # menus entered (their intro is played once)
        self._failures = 0
        self._silences = 0  # no-input failures at the current menu
        self._pressed = False  # any key in a menu, ever: the caller is not silent
        self._silent = False  # a menu took its default for a caller who never pressed
        self._play_seq = 0
        self._playing: str | None = None
        self._deadline: float | None = None
        self._done = False

    # -- public state -------------------------------------------------------

    @property
    def language(self) -> str:
        """The chosen language, or the guessed/default one before the choice."""
        return self._language

    @property
    def topic(self) -> str | None:
        """The chosen topic; None until a menu or set node chose one."""
        return self._topic

    @property
    def done(self) -> bool:
        return self._done

    @property
    def deadline(self) -> float | None:
        """When the controller must call :meth:`on_timer`; None when no timer runs."""
        return self._deadline

    @property
    def takes_digits(self) -> bool:
        """Whether a digit now counts (a menu); during other prompts it is ignored."""
        return not self._done and isinstance(self._node, MenuNode)

    @property
    def stage(self) -> str:
        """"idle", the current node's name, or "done"."""
        if self._done:
            return "done"
        return self._node.name if self._node is not None else "idle"

    # -- events -------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Run the flow from its start node up to the first prompt."""
        if self._node is not None or self._done:
            raise RuntimeError("IVR session already started")
        return self._run(self.flow.start)

    def on_digit(self, digit: str, now: float) -> list[Action]:
        """A DTMF digit: in a menu, barge-in on its prompt, then select or retry."""
        node = self._node
        if self._done or node is None:
            return []
        if not isinstance(node, MenuNode):
            self.history.append(f"{node.name}:ignored:{digit!s:.8}")
            return []
        actions: list[Action] = []
        if self._playing is not None:
            actions.append(StopPlay())
            self._playing = None
        self._deadline = None
        self._pressed = True
        choice = node.lookup(digit)
        if choice is None:
            self.history.append(f"{node.name}:invalid:{digit!s:.8}")
            return actions + self._fail(node, "invalid")
        self.history.append(f"{node.name}:{choice.label}")
        return actions + self._choose(node, choice, f"{node.name}:{choice.label}")

    def on_play_done(self, play_id: str, now: float) -> list[Action]:
        """The current prompt ended: wait for a digit, or go on to the next node."""
        node = self._node
        if self._done or node is None or play_id != self._playing:
            return []
        self._playing = None
        if isinstance(node, MenuNode):
            self._deadline = now + (node.timeout_s or self.flow.digit_timeout_s)
            return []
        if isinstance(node, PlayNode):
            return self._run(node.next)
        if isinstance(node, HangupNode):
            return self._hang_up(node)
        return []  # queue / transfer prompts: the controller takes over

    def on_timer(self, now: float) -> list[Action]:
        """Called at (or after) :attr:`deadline`; early or spurious calls do nothing."""
        node = self._node
        if self._done or self._deadline is None or now < self._deadline \
                or not isinstance(node, MenuNode):
            return []
        self._deadline = None
        self.history.append(f"{node.name}:timeout")
        return self._fail(node, "no_input")

    def on_transfer_result(self, connected: bool, now: float) -> list[Action]:
        """The transfer was answered (the IVR is over) or failed (go to the fallback)."""
        node = self._node
        if self._done or not isinstance(node, TransferNode):
            return []
        if connected:
            self._done = True
            return []
        self.path.append(f"{node.name}:failed")
        return [StopPlay(), *self._run(node.fallback)] if self._playing else \
            self._run(node.fallback)

    # -- running nodes ------------------------------------------------------

    def _run(self, name: str) -> list[Action]:
        """Enter ``name`` and go on through instant nodes to the next wait."""
        for _ in range(MAX_INSTANT_STEPS):
            node = self.flow.nodes[name]
            self._node = node
            if isinstance(node, SetNode):
                self._apply(node.values)
                name = node.next
            elif isinstance(node, BranchNode):
                outcome, name = self._branch(node)
                self.path.append(f"{node.name}:{outcome}")
            else:
                return self._enter(node)
        self.history.append(f"{name}:loop")
        return self._queue(QueueNode("loop"))

    def _enter(self, node: Node) -> list[Action]:
        if isinstance(node, MenuNode):
            if self._silent and self.flow.silent_skips_menus:
                choice = self._default_choice(node)
                self.history.append(f"{node.name}:skipped")
                return self._choose(node, choice, f"{node.name}:silent->{choice.label}")
            self._failures = self._silences = 0
            intro = node.intro if node.name not in self._entered else ()
            self._entered.add(node.name)
            return [self._new_play(self._refs(intro) + self._menu_prompts(node))]
        if isinstance(node, PlayNode):
            return [self._new_play(self._refs(node.prompts))]
        if isinstance(node, QueueNode):
            return self._queue(node)
        if isinstance(node, TransferNode):
            self.path.append(f"{node.name}:{node.to}")
            plays = [self._new_play(self._refs(node.prompts))] if node.prompts else []
            return [*plays, Transfer(node.to, node.name)]
        assert isinstance(node, HangupNode)
        if node.prompts:
            return [self._new_play(self._refs(node.prompts))]
        return self._hang_up(node)

    def _branch(self, node: BranchNode) -> tuple[str, str]:
        """(the outcome as recorded in the path, the node to go to)."""
        subject, _, arg = node.by.partition(":")
        value: str | None
        if subject == "hours":
            value = "open" if self._open else "closed"
        elif subject == "country":
            value = self._country
        elif subject == "language":
            value = self._language
        elif subject == "topic":
            value = self._topic
        elif subject == "flag":
            raw = self.flags.get(arg, self._gateway_flags.get(arg))
            value = "true" if raw else "false"
        else:
            value = self._ask(arg) if self._ask is not None else None
        for case, target in node.cases:
            if case == value:
                return case, target
        assert node.default is not None  # checked at start unless cases cover all
        return f"{value or 'none'}->default", node.default

    def _apply(self, values: SetValues) -> None:
        if values.language is not None:
            self._language = values.language
        if values.topic is not None:
            self._topic = values.topic
        if values.priority is not None:
            self._priority = values.priority
        self.flags.update(values.flags)

    def _fail(self, node: MenuNode, prompt_key: str) -> list[Action]:
        """A failed attempt: offer the menu again, or take its default."""
        self._failures += 1
        retries = node.retries if node.retries is not None else self.flow.max_retries
        if prompt_key == "no_input" and not self._pressed \
                and self.flow.silent_retries is not None:
            self._silences += 1
            if self._silences > min(retries, self.flow.silent_retries):
                self._silent = True
                choice = self._default_choice(node)
                return self._choose(node, choice, f"{node.name}:timeout->{choice.label}")
        if self._failures > retries:
            reason = "invalid" if prompt_key == "invalid" else "timeout"
            choice = self._default_choice(node)
            return self._choose(node, choice, f"{node.name}:{reason}->{choice.label}")
        retry = (PromptRef(self._language, prompt_key),) + self._menu_prompts(node)
        return [self._new_play(retry)]

    def _default_choice(self, node: MenuNode) -> Choice:
        if node.default == "guessed":
            setting = [c for c in node.choices if c.set.language]
            return next((c for c in setting if c.set.language == self._language), setting[0])
        choice = node.lookup(node.default)
        assert choice is not None  # checked at start
        return choice

    def _choose(self, node: MenuNode, choice: Choice, path_entry: str) -> list[Action]:
        self.path.append(path_entry)
        self._apply(choice.set)
        return self._run(choice.next)

    def _queue(self, node: QueueNode) -> list[Action]:
        """Ask the caller to hold and hand the result to the distributor."""
        self._apply(SetValues(language=node.language, topic=node.topic,
                              priority=node.priority))
        self._done = True
        self._deadline = None
        topic = self._topic or self.flow.default_topic
        plays = [self._new_play(self._refs(node.prompts))] if node.prompts else []
        return [*plays, Done(self._language, topic, tuple(self.path), self._priority,
                             tuple(self.flags.items()))]

    def _hang_up(self, node: HangupNode) -> list[Action]:
        self._done = True
        self._deadline = None
        return [Hangup(node.reason)]

    # -- prompts ------------------------------------------------------------

    def _refs(self, keys: tuple[str, ...]) -> tuple[PromptRef, ...]:
        return tuple(PromptRef(self._language, key) for key in keys)

    def _menu_prompts(self, node: MenuNode) -> tuple[PromptRef, ...]:
        if not node.each_language:
            return self._refs(node.prompts)
        # The guessed language is offered first; the digits stay those of the menu.
        order = sorted(self.flow.languages, key=lambda code: code != self._language)
        return tuple(PromptRef(code, key) for code in order for key in node.prompts)

    def _new_play(self, prompts: tuple[PromptRef, ...]) -> Play:
        self._play_seq += 1
        play = Play(f"ivr-{self._play_seq}", prompts)
        self._playing = play.play_id
        return play

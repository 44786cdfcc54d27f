"""Pure IVR engine: DTMF menus as a state machine.

The engine takes events (start, digit, play finished, timer) together with the
current time and returns actions (play prompts, stop playing, done). It does no
I/O and owns no clock or timer: the controller plays the prompts, feeds the
DTMF digits and calls :meth:`IvrSession.on_timer` when :attr:`IvrSession.deadline`
has passed. That keeps every branch testable without SIP and lets the same
engine run under asyncio, in a replay or in a simulation.

The flow is fixed for now: welcome, language menu, topic menu (in the chosen
language), done. Menus are described by :class:`_Menu` internally so a later
version can build arbitrary flows from config without changing the session API.

A caller is never hung up on: a menu that keeps failing (invalid digits or no
input) ends in its default choice rather than in a disconnect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

#: The DTMF symbols a phone can send. Anything else reaching the engine is
#: treated as an invalid choice (never an exception).
DTMF_DIGITS = frozenset("0123456789*#")

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


def required_prompts(config: IvrConfig) -> set[PromptRef]:
    """Every prompt the engine may ask for, so the controller can check at start.

    Every key is needed in every language: the welcome and retry prompts are
    played in the guessed language, which can be any configured language.
    """
    return {
        PromptRef(language, key)
        for language in config.language_values()
        for key in REQUIRED_PROMPT_KEYS
    }


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


@dataclass(frozen=True)
class Hangup:
    """End the call after what was played (e.g. the line is closed)."""

    reason: str


Action = Play | StopPlay | Done | Hangup


@dataclass(frozen=True)
class _Menu:
    """A menu step: its name in the path, options and prompts.

    ``prompts`` gives the menu prompts for the session's current language;
    ``lead_in`` is played only the first time (e.g. the welcome).
    """

    name: str
    options: tuple[MenuOption, ...]
    default: Callable[[], str]
    prompts: Callable[[], tuple[PromptRef, ...]]
    lead_in: Callable[[], tuple[PromptRef, ...]] = field(default=lambda: ())

    def lookup(self, digit: object) -> MenuOption | None:
        """The option for ``digit``, or None for anything that is not one."""
        for option in self.options:
            if option.digit == digit:
                return option
        return None


class IvrSession:
    """One caller's walk through the menus.

    Only the play with the id issued last matters: a ``play_done`` with an
    older id (a prompt stopped by barge-in, a race in the media worker) is
    ignored. The digit timer starts when the menu prompt has finished.
    """

    def __init__(
        self, config: IvrConfig, *, guessed_language: str | None = None,
        open_now: bool = True, notice: str | None = None,
    ) -> None:
        """``open_now``: False outside opening hours (welcome, "closed", hang up);
        ``notice``: a prompt key played after the welcome (e.g. a crisis message)."""
        self._config = config
        self._open = open_now
        self._notice = notice
        known = guessed_language in config.language_values()
        # An unknown guess (country code of a language we do not serve) is dropped.
        self._fallback_language = guessed_language if known else config.default_language
        self._language = self._fallback_language
        self._topic: str | None = None
        self.path: list[str] = []
        #: Every input event, including failed attempts, for diagnostics.
        self.history: list[str] = []
        self._menus = self._build_menus()
        self._menu_index = -1  # -1: not started
        self._failures = 0
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
        """The chosen topic; None until the topic menu is finished."""
        return self._topic

    @property
    def done(self) -> bool:
        return self._done

    @property
    def deadline(self) -> float | None:
        """When the controller must call :meth:`on_timer`; None when no timer runs."""
        return self._deadline

    @property
    def stage(self) -> str:
        """The current step: "idle", a menu name ("lang", "topic") or "done"."""
        if self._done:
            return "done"
        if self._menu_index < 0:
            return "idle"
        return self._menus[self._menu_index].name

    # -- events -------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Play the welcome followed by the first menu."""
        if self._menu_index >= 0:
            raise RuntimeError("IVR session already started")
        if not self._open:
            self._menu_index = 0
            self.path.append("closed")
            return [self._new_play((PromptRef(self._language, "welcome"),
                                    PromptRef(self._language, "closed")))]
        return self._enter_menu(0)

    def on_digit(self, digit: str, now: float) -> list[Action]:
        """A DTMF digit: barge-in on a playing prompt, then select or retry."""
        if self._done or self._menu_index < 0 or not self._open:
            return []
        actions: list[Action] = []
        if self._playing is not None:
            actions.append(StopPlay())
            self._playing = None
        self._deadline = None
        option = self._menu.lookup(digit)
        if option is None:
            self.history.append(f"{self._menu.name}:invalid:{digit!s:.8}")
            actions += self._fail("invalid")
        else:
            self.history.append(f"{self._menu.name}:{option.value}")
            actions += self._select(option.value, f"{self._menu.name}:{option.value}")
        return actions

    def on_play_done(self, play_id: str, now: float) -> list[Action]:
        """The current menu prompt ended: start waiting for a digit."""
        if self._done or play_id != self._playing:
            return []
        self._playing = None
        if not self._open:  # the closed message was heard: end the call
            self._done = True
            return [Hangup("closed")]
        self._deadline = now + self._config.digit_timeout_s
        return []

    def on_timer(self, now: float) -> list[Action]:
        """Called at (or after) :attr:`deadline`; early or spurious calls do nothing."""
        if self._done or self._deadline is None or now < self._deadline:
            return []
        self._deadline = None
        self.history.append(f"{self._menu.name}:timeout")
        return self._fail("no_input")

    # -- internals ----------------------------------------------------------

    @property
    def _menu(self) -> _Menu:
        return self._menus[self._menu_index]

    def _build_menus(self) -> tuple[_Menu, ...]:
        config = self._config
        return (
            _Menu(
                name="lang",
                options=config.languages,
                default=lambda: self._fallback_language,
                # The guessed language (from the caller's country) is offered first;
                # the digits stay those of the menu.
                prompts=lambda: tuple(
                    PromptRef(code, "language_offer")
                    for code in sorted(config.language_values(),
                                       key=lambda c: c != self._fallback_language)
                ),
                lead_in=lambda: (PromptRef(self._language, "welcome"),) + (
                    (PromptRef(self._language, self._notice),) if self._notice else ()),
            ),
            _Menu(
                name="topic",
                options=config.topics,
                default=lambda: config.default_topic,
                prompts=lambda: (PromptRef(self._language, "topic_menu"),),
            ),
        )

    def _new_play(self, prompts: tuple[PromptRef, ...]) -> Play:
        self._play_seq += 1
        play = Play(f"ivr-{self._play_seq}", prompts)
        self._playing = play.play_id
        return play

    def _enter_menu(self, index: int) -> list[Action]:
        self._menu_index = index
        self._failures = 0
        menu = self._menu
        return [self._new_play(menu.lead_in() + menu.prompts())]

    def _fail(self, prompt_key: str) -> list[Action]:
        """A failed attempt: offer the menu again, or take the default."""
        self._failures += 1
        if self._failures > self._config.max_retries:
            reason = "invalid" if prompt_key == "invalid" else "timeout"
            value = self._menu.default()
            return self._select(value, f"{self._menu.name}:{reason}->{value}")
        retry = (PromptRef(self._language, prompt_key),) + self._menu.prompts()
        return [self._new_play(retry)]

    def _select(self, value: str, path_entry: str) -> list[Action]:
        self.path.append(path_entry)
        if self._menu.name == "lang":
            self._language = value
        else:
            self._topic = value
        if self._menu_index + 1 < len(self._menus):
            return self._enter_menu(self._menu_index + 1)
        return self._finish()

    def _finish(self) -> list[Action]:
        """Ask the caller to hold and hand the result to the distributor."""
        assert self._topic is not None
        hold = self._new_play((PromptRef(self._language, "please_hold"),))
        self._done = True
        self._deadline = None
        return [hold, Done(self._language, self._topic, tuple(self.path))]

"""The call back dialogue with a waiting caller: a small pure state machine, driven
by the keys they press (``cti_call_digit``) and a timer for no input. No SIP, no
clock: it returns what to do (:class:`Play`, :class:`Commit`, :class:`GiveUp`).

::

    offered --1--> confirm: "we will call you back on 0 0 3 4 ... : 1 if correct,
                             or key in another number and end with #"
    confirm --1--> when:    "1 as soon as possible, 2 at a later time"
    confirm --0,2-9--> entry (the first digit of another number) --#--> confirm (read back)
    when    --1--> Commit(asap)
    when    --2--> later:   "1 in about an hour, 2 tomorrow morning at nine"
    later   --1/2--> Commit(hour / tomorrow)
    committed (after the store write) -> done: "we will call you back" (then hang up)

A wrong key or no input repeats the question (with "that is not a valid choice"
for a wrong key); after ``max_repeats`` the dialogue gives up ("please stay on the
line") and the caller keeps their place. ``*`` while keying a number goes back to
the read-back. Before the offer's 1 the dialogue takes no key (another plugin may).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from plugins.callbacks.timing import When, spoken_digits

P = "callbacks."
OFFER, NUMBER_IS, CONFIRM, WHEN, LATER = (P + "offer", P + "number_is", P + "confirm",
                                          P + "when", P + "later")
DONE, INVALID, CANCELLED = P + "done", P + "invalid", P + "cancelled"
DIGITS = tuple(f"{P}digit_{d}" for d in range(10))
#: What the customer of a call back hears when they pick up, before the advisor.
GREETING = P + "greeting"
#: Every fixed prompt of the plugin (prompts.yaml has them all, as <key> without "callbacks.").
PROMPTS = (OFFER, NUMBER_IS, CONFIRM, WHEN, LATER, DONE, INVALID, CANCELLED, *DIGITS,
           GREETING)

State = Literal["offered", "confirm", "entry", "when", "later", "committing", "done", "over"]
#: The states in which the caller is asked something (the no-input timer runs).
ASKING = ("confirm", "entry", "when", "later")
MAX_DIGITS = 18


@dataclass(frozen=True)
class Play:
    prompts: tuple[str, ...]


@dataclass(frozen=True)
class Commit:
    number: str
    when: When


@dataclass(frozen=True)
class GiveUp:
    """The dialogue is over without a request; the caller keeps waiting."""


Action = Play | Commit | GiveUp


class Dialogue:
    """One caller's dialogue. ``normalize`` turns keyed digits into an E.164 number
    (None: not a number)."""

    def __init__(self, number: str, normalize: Callable[[str], str | None], *,
                 max_repeats: int = 2) -> None:
        self.number = number
        self.normalize = normalize
        self.max_repeats = max_repeats
        self.state: State = "offered"
        self.keyed = ""
        self.repeats = 0
        #: Goes up with every question asked: a no-input timer of an older one is stale.
        self.step = 0

    @property
    def asking(self) -> bool:
        return self.state in ASKING

    # ------------------------------------------------------------ prompts
    def readback(self) -> tuple[str, ...]:
        return (NUMBER_IS, *(DIGITS[int(d)] for d in spoken_digits(self.number)), CONFIRM)

    def _question(self) -> tuple[str, ...]:
        if self.state in ("confirm", "entry"):
            return self.readback()
        return (WHEN,) if self.state == "when" else (LATER,)

    def _ask(self, state: State, prefix: tuple[str, ...] = ()) -> list[Action]:
        self.state, self.keyed = state, ""
        self.step += 1
        return [Play((*prefix, *self._question()))]

    def _again(self, wrong_key: bool) -> list[Action]:
        """The same question once more, or give up after max_repeats."""
        self.repeats += 1
        if self.repeats > self.max_repeats:
            self.state = "over"
            self.step += 1
            return [Play((CANCELLED,)), GiveUp()]
        state: State = "confirm" if self.state == "entry" else self.state
        return self._ask(state, (INVALID,) if wrong_key else ())

    # ------------------------------------------------------------ input
    def offer(self) -> list[Action]:
        self.state = "offered"
        self.step += 1
        return [Play((OFFER,))]

    def on_digit(self, digit: str) -> list[Action] | None:
        """What to do for a key; None: the dialogue does not take it."""
        s = self.state
        if s == "offered":
            if digit != "1":
                return None
            self.repeats = 0
            return self._ask("confirm")
        if s in ("committing", "done"):
            return []  # taken, nothing more to say
        if s == "over":
            return None
        if s == "confirm":
            if digit == "1":
                self.repeats = 0
                return self._ask("when")
            if digit.isdigit():
                self.state, self.keyed = "entry", digit
                self.step += 1
                return []
            return self._again(wrong_key=True)
        if s == "entry":
            if digit == "*":
                return self._ask("confirm")
            if digit == "#":
                number = self.normalize(self.keyed)
                if number is None:
                    return self._again(wrong_key=True)
                self.number = number
                self.repeats = 0
                return self._ask("confirm")
            if digit.isdigit() and len(self.keyed) < MAX_DIGITS:
                self.keyed += digit
                self.step += 1
                return []
            return self._again(wrong_key=True)
        if s == "when":
            if digit == "1":
                return self._commit("asap")
            if digit == "2":
                self.repeats = 0
                return self._ask("later")
            return self._again(wrong_key=True)
        # later
        if digit in ("1", "2"):
            return self._commit("hour" if digit == "1" else "tomorrow")
        return self._again(wrong_key=True)

    def _commit(self, when: When) -> list[Action]:
        self.state = "committing"
        self.step += 1
        return [Commit(self.number, when)]

    def on_no_input(self, step: int) -> list[Action]:
        """The no-input timer of question ``step`` fired."""
        if step != self.step or not self.asking:
            return []
        return self._again(wrong_key=False)

    def committed(self) -> list[Action]:
        """The request is in the store: "we will call you back"."""
        self.state = "done"
        self.step += 1
        return [Play((DONE,))]

    def failed(self) -> list[Action]:
        """The request could not be stored: the caller keeps waiting."""
        self.state = "over"
        self.step += 1
        return [Play((CANCELLED,)), GiveUp()]

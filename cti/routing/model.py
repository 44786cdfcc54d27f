"""The distributor's vocabulary: states, profiles, requirements, steps, actions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class AdvisorState(str, Enum):
    """Where an advisor is; the values are the strings used on the wire."""

    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RESERVED = "reserved"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    AWAY = "away"


#: The states an advisor (or supervisor) may ask for; the others are set by routing.
# The away reason of an advisor whose phone has no registered contact (set_phone).
PHONE_OFFLINE = "phone_offline"
SETTABLE_STATES = frozenset({AdvisorState.AVAILABLE, AdvisorState.AWAY, AdvisorState.LOGGED_OUT})


class CallStatus(str, Enum):
    """Where a call is inside the distributor."""

    WAITING = "waiting"
    OFFERED = "offered"
    CONNECTED = "connected"


#: Trainings a topic implies, whatever the IVR or plugins ask for.
DEFAULT_TOPIC_TRAININGS: Mapping[str, frozenset[str]] = {"emergency": frozenset({"crisis"})}

#: The level given to a skill listed without one.
DEFAULT_LEVEL = 3


def _levels(skills: Mapping[str, int] | Iterable[str]) -> dict[str, int]:
    if isinstance(skills, Mapping):
        return {str(k): int(v) for k, v in skills.items()}
    return {str(k): DEFAULT_LEVEL for k in skills}


def _expiries(trainings: Mapping[str, float | None] | Iterable[str]) -> dict[str, float | None]:
    if isinstance(trainings, Mapping):
        return {str(k): (None if v is None else float(v)) for k, v in trainings.items()}
    return {str(k): None for k in trainings}


@dataclass(init=False)
class AdvisorProfile:
    """What an advisor can handle. Replaced as a whole by ``update_advisor``.

    ``languages`` and ``topics`` map a skill to a level 1-5 (a plain iterable
    means level 3); ``trainings`` map a training to the unix time it expires
    (None: never; a plain iterable means no expiry). The constructor takes
    either form; the fields always hold the mappings.
    """

    name: str
    languages: dict[str, int]
    topics: dict[str, int]
    trainings: dict[str, float | None]

    def __init__(self, name: str, languages: Mapping[str, int] | Iterable[str],
                 topics: Mapping[str, int] | Iterable[str],
                 trainings: Mapping[str, float | None] | Iterable[str] = ()) -> None:
        self.name = name
        self.languages = _levels(languages)
        self.topics = _levels(topics)
        self.trainings = _expiries(trainings)

    def language_level(self, language: str) -> int:
        return self.languages.get(language, 0)

    def topic_level(self, topic: str) -> int:
        return self.topics.get(topic, 0)

    def valid_trainings(self, now: float) -> set[str]:
        """Trainings that count at ``now``: an expired one stops at its expiry time."""
        return {t for t, exp in self.trainings.items()
                if exp is None or now < exp}


@dataclass(frozen=True)
class Requirements:
    """What a call needs from an advisor; levels come from the escalation step.

    ``reserve``: advisors who may take the call when they speak its language
    (any level), even without its topic or trainings, after every advisor who
    fits it fully (a crisis line's reserve pool).
    """

    language: str
    topic: str
    trainings: frozenset[str] = frozenset()
    reserve: frozenset[str] = frozenset()


@dataclass(frozen=True)
class EscalationStep:
    """From ``after_s`` seconds of waiting: the minimum levels a call requires.

    ``min_topic`` 0 means any advisor with the language will do (topic not
    required). Reaching a step with ``escalate`` emits :class:`Escalated` once.
    """

    after_s: float
    min_language: int
    min_topic: int
    escalate: bool = False


#: Without configured steps: the language and the topic at any level.
DEFAULT_STEPS: tuple[EscalationStep, ...] = (EscalationStep(0.0, 1, 1),)


@dataclass(frozen=True)
class Offer:
    """Reserve ``advisor`` for ``call_id``: screen pop, then dial the advisor.

    ``trace`` (JSON-able) says why: the step, the candidates with scores, and
    why the others were excluded. It does not take part in equality.
    """

    call_id: str
    advisor: str
    trace: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class OfferRevoked:
    """An offer ended without an answer: stop ringing ``advisor``.

    ``reason`` is "timeout" (offer timeout in ``tick``) or "caller_hung_up".
    """

    call_id: str
    advisor: str
    reason: str


@dataclass(frozen=True)
class AdvisorChanged:
    """An advisor's state (or away reason) changed at ``at`` (the ``now`` of the call).

    ``at`` does not take part in equality (like ``Offer.trace``), so an action
    can be compared with ``AdvisorChanged(name, state, reason)``.
    """

    advisor: str
    state: AdvisorState
    reason: str | None
    at: float | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Escalated:
    """A waiting call reached an escalation step marked ``escalate`` (once per step)."""

    call_id: str
    step: int


@dataclass(frozen=True)
class WrapUpExpired:
    """The most wrap-up time of the topic passed before the advisor submitted the
    wrap-up of ``call_id``: they are available again, the call is not wrapped up
    (they can still wrap it up later)."""

    advisor: str
    call_id: str


Action = Offer | OfferRevoked | AdvisorChanged | Escalated | WrapUpExpired

"""Pure skills-based call distributor.

The distributor is a state machine: operations take the current time (``now``,
seconds on any monotonic clock) and return actions; it never sleeps, schedules
or does I/O. The controller executes the actions (screen pop and dial for an
:class:`Offer`, hang up the ringing advisor leg for an :class:`OfferRevoked`,
broadcast an :class:`AdvisorChanged`) and calls :meth:`Distributor.tick` at
:meth:`Distributor.next_deadline`.

Matching (this version): an advisor is eligible for a call when AVAILABLE and
the profile holds the call's language, topic and every required training. The
required trainings are the ones passed with the call plus the ones its topic
implies (``topic_trainings``, by default ``emergency`` needs ``crisis``).
Calls are served in queue order (priority high to low, then enqueue time),
each by the eligible advisor idle longest. Calls nobody can take wait.

Every change of a call or an advisor goes through one small set of private
transitions, and every public operation ends with :meth:`_dispatch`, so after
any operation no waiting call is eligible for an available advisor.
"""

from __future__ import annotations

import itertools
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
SETTABLE_STATES = frozenset({AdvisorState.AVAILABLE, AdvisorState.AWAY, AdvisorState.LOGGED_OUT})


class CallStatus(str, Enum):
    """Where a call is inside the distributor."""

    WAITING = "waiting"
    OFFERED = "offered"
    CONNECTED = "connected"


#: Trainings a topic implies, whatever the IVR or plugins ask for.
DEFAULT_TOPIC_TRAININGS: Mapping[str, frozenset[str]] = {"emergency": frozenset({"crisis"})}


@dataclass
class AdvisorProfile:
    """What an advisor can handle. Replaced as a whole by ``update_advisor``."""

    name: str
    languages: frozenset[str]
    topics: frozenset[str]
    trainings: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # Config loaders hand lists; eligibility needs sets.
        self.languages = frozenset(self.languages)
        self.topics = frozenset(self.topics)
        self.trainings = frozenset(self.trainings)


@dataclass(frozen=True)
class Requirements:
    """What a call needs from an advisor (will grow: levels, relaxation)."""

    language: str
    topic: str
    trainings: frozenset[str] = frozenset()


def is_eligible(profile: AdvisorProfile, requirements: Requirements) -> bool:
    """Skill match only (the advisor's state is checked by the distributor)."""
    return (
        requirements.language in profile.languages
        and requirements.topic in profile.topics
        and requirements.trainings <= profile.trainings
    )


@dataclass(frozen=True)
class Offer:
    """Reserve ``advisor`` for ``call_id``: screen pop, then dial the advisor."""

    call_id: str
    advisor: str


@dataclass(frozen=True)
class OfferRevoked:
    """An offer ended without an answer: stop ringing ``advisor``.

    ``reason`` is "timeout" (offer timeout in :meth:`Distributor.tick`) or
    "caller_hung_up" (the call was removed while offered).
    """

    call_id: str
    advisor: str
    reason: str


@dataclass(frozen=True)
class AdvisorChanged:
    """An advisor's state (or away reason) changed."""

    advisor: str
    state: AdvisorState
    reason: str | None


Action = Offer | OfferRevoked | AdvisorChanged


@dataclass
class _Call:
    call_id: str
    requirements: Requirements
    priority: int
    enqueued_at: float
    seq: int
    status: CallStatus = CallStatus.WAITING
    advisor: str | None = None
    offer_deadline: float | None = None
    last_failed_by: str | None = None

    @property
    def queue_key(self) -> tuple[int, float, int]:
        """Priority high to low, then longest wait; ``seq`` breaks exact ties."""
        return (-self.priority, self.enqueued_at, self.seq)


@dataclass
class _Advisor:
    profile: AdvisorProfile
    order: int
    state: AdvisorState = AdvisorState.LOGGED_OUT
    reason: str | None = None
    since: float | None = None
    call_id: str | None = None
    missed: int = 0
    wrap_until: float | None = None
    # A state asked for while busy, applied when the call (and wrap-up) ends.
    pending: tuple[AdvisorState, str | None] | None = field(default=None)


class Distributor:
    """Queues calls and offers each to the best free advisor.

    Setting a RESERVED or ON_CALL advisor away/logged out is stored as pending
    and applied once the call (and its wrap-up) is over; setting them available
    cancels the pending change. During WRAP_UP a state change applies at once
    ("available" ends the wrap-up early).
    """

    def __init__(
        self,
        advisors: Iterable[AdvisorProfile],
        *,
        offer_timeout_s: float = 20.0,
        wrap_up_s: float = 0.0,
        max_missed: int = 1,
        topic_trainings: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        if not offer_timeout_s > 0:
            raise ValueError(f"offer_timeout_s must be > 0, got {offer_timeout_s!r}")
        if wrap_up_s < 0:
            raise ValueError(f"wrap_up_s must be >= 0, got {wrap_up_s!r}")
        if max_missed < 1:
            raise ValueError(f"max_missed must be >= 1, got {max_missed!r}")
        self.offer_timeout_s = offer_timeout_s
        self.wrap_up_s = wrap_up_s
        self.max_missed = max_missed
        self._topic_trainings = dict(
            DEFAULT_TOPIC_TRAININGS if topic_trainings is None else topic_trainings
        )
        self._advisors: dict[str, _Advisor] = {}
        self._calls: dict[str, _Call] = {}
        self._seq = itertools.count()
        self._now = 0.0
        for profile in advisors:
            self.add_advisor(profile)

    # -- advisors -----------------------------------------------------------

    def add_advisor(self, profile: AdvisorProfile) -> None:
        """Register a new advisor, LOGGED_OUT until they set themselves available."""
        if profile.name in self._advisors:
            raise ValueError(f"advisor {profile.name!r} already exists")
        self._advisors[profile.name] = _Advisor(profile, order=len(self._advisors))

    def update_advisor(self, profile: AdvisorProfile, now: float | None = None) -> list[Action]:
        """Replace an advisor's skills; they count from the next decision.

        With ``now`` the distributor decides at once (the new skills may fit a
        waiting call); without it the next operation or tick does. A standing
        offer is kept even if the advisor no longer fits the call.
        """
        self._advisor(profile.name).profile = profile
        return [] if now is None else self._dispatch(self._clock(now))

    def set_state(
        self,
        advisor: str,
        state: AdvisorState | str,
        now: float,
        reason: str | None = None,
    ) -> list[Action]:
        """Advisor-requested state: "available", "away" or "logged_out"."""
        adv = self._advisor(advisor)
        target = AdvisorState(state)
        if target not in SETTABLE_STATES:
            raise ValueError(f"state {target.value!r} cannot be set from outside")
        now = self._clock(now)
        reason = None if target is AdvisorState.AVAILABLE else reason
        if adv.state in (AdvisorState.RESERVED, AdvisorState.ON_CALL):
            adv.pending = None if target is AdvisorState.AVAILABLE else (target, reason)
            return []
        adv.pending = None
        adv.wrap_until = None
        if target is AdvisorState.AVAILABLE:
            adv.missed = 0
        if (adv.state, adv.reason) == (target, reason):
            return []
        return [self._change(adv, target, reason, now), *self._dispatch(now)]

    # -- calls --------------------------------------------------------------

    def add_call(
        self,
        call_id: str,
        *,
        language: str,
        topic: str,
        priority: int = 0,
        trainings: Iterable[str] = (),
        now: float,
    ) -> list[Action]:
        """Queue a call; it may be offered at once."""
        if call_id in self._calls:
            raise ValueError(f"call {call_id!r} is already queued")
        now = self._clock(now)
        needed = frozenset(trainings) | self._topic_trainings.get(topic, frozenset())
        requirements = Requirements(language, topic, needed)
        self._calls[call_id] = _Call(call_id, requirements, priority, now, next(self._seq))
        return self._dispatch(now)

    def remove_call(self, call_id: str, now: float) -> list[Action]:
        """The caller hung up (waiting, offered or connected). Unknown ids: []."""
        return self._drop(call_id, self._clock(now), "caller_hung_up")

    def call_ended(self, call_id: str, now: float) -> list[Action]:
        """The conversation is over. Same as :meth:`remove_call` for a call not connected."""
        return self._drop(call_id, self._clock(now), "caller_hung_up")

    def offer_accepted(
        self, call_id: str, now: float, *, advisor: str | None = None
    ) -> list[Action]:
        """The advisor answered. ``advisor`` guards against a late answer to a
        stale offer: KeyError when the call is not offered (to that advisor)."""
        call = self._offered_call(call_id, advisor)
        now = self._clock(now)
        adv = self._advisors[call.advisor or ""]
        call.status = CallStatus.CONNECTED
        call.offer_deadline = None
        adv.missed = 0
        return [self._change(adv, AdvisorState.ON_CALL, None, now)]

    def offer_failed(
        self,
        call_id: str,
        now: float,
        reason: str = "no_answer",
        *,
        advisor: str | None = None,
    ) -> list[Action]:
        """No answer, rejected, busy or unreachable: requeue and try the next advisor."""
        call = self._offered_call(call_id, advisor)
        now = self._clock(now)
        return [*self._fail_offer(call, now, reason), *self._dispatch(now)]

    def tick(self, now: float) -> list[Action]:
        """Expire offers (as "no_answer" misses) and wrap-ups due at ``now``."""
        now = self._clock(now)
        actions: list[Action] = []
        due = [
            call
            for call in self._calls.values()
            if call.offer_deadline is not None and call.offer_deadline <= now
        ]
        for call in sorted(due, key=lambda c: (c.offer_deadline, c.queue_key)):
            actions.append(OfferRevoked(call.call_id, call.advisor or "", "timeout"))
            actions += self._fail_offer(call, now, "no_answer")
        for adv in self._advisors.values():
            if adv.wrap_until is not None and adv.wrap_until <= now:
                actions += self._settle(adv, now)
        return actions + self._dispatch(now)

    def next_deadline(self) -> float | None:
        """The earliest offer timeout or wrap-up end, or None."""
        times = [c.offer_deadline for c in self._calls.values() if c.offer_deadline is not None]
        times += [a.wrap_until for a in self._advisors.values() if a.wrap_until is not None]
        return min(times, default=None)

    # -- queries ------------------------------------------------------------

    def advisor_state(self, name: str) -> AdvisorState:
        return self._advisor(name).state

    def advisor_reason(self, name: str) -> str | None:
        return self._advisor(name).reason

    def advisor_call(self, name: str) -> str | None:
        """The call offered to or connected with this advisor."""
        return self._advisor(name).call_id

    def advisor_names(self) -> list[str]:
        return list(self._advisors)

    def call_status(self, call_id: str) -> CallStatus:
        return self._call(call_id).status

    def waiting_calls(self) -> list[str]:
        """Waiting calls (not offered, not connected) in queue order."""
        return [call.call_id for call in self._waiting()]

    def position(self, call_id: str) -> int | None:
        """1-based rank among waiting calls with the same requirements; None if
        the call is offered or connected."""
        call = self._call(call_id)
        if call.status is not CallStatus.WAITING:
            return None
        rivals = [c for c in self._waiting() if c.requirements == call.requirements]
        return rivals.index(call) + 1

    def offered_to(self, call_id: str) -> str | None:
        call = self._call(call_id)
        return call.advisor if call.status is CallStatus.OFFERED else None

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """JSON-able picture for supervisors; waited times at ``now`` (default:
        the latest time seen)."""
        now = self._now if now is None else now
        return {
            "now": now,
            "advisors": [self._advisor_view(adv) for adv in self._advisors.values()],
            "calls": [self._call_view(call, now) for call in self._ordered_calls()],
            "waiting": self.waiting_calls(),
        }

    # -- internals: lookups -------------------------------------------------

    def _clock(self, now: float) -> float:
        self._now = max(self._now, now)
        return now

    def _advisor(self, name: str) -> _Advisor:
        try:
            return self._advisors[name]
        except KeyError:
            raise KeyError(f"unknown advisor {name!r}") from None

    def _call(self, call_id: str) -> _Call:
        try:
            return self._calls[call_id]
        except KeyError:
            raise KeyError(f"unknown call {call_id!r}") from None

    def _offered_call(self, call_id: str, advisor: str | None) -> _Call:
        call = self._call(call_id)
        if call.status is not CallStatus.OFFERED:
            raise KeyError(f"call {call_id!r} has no pending offer (it is {call.status.value})")
        if advisor is not None and call.advisor != advisor:
            raise KeyError(f"call {call_id!r} is offered to {call.advisor!r}, not {advisor!r}")
        return call

    def _waiting(self) -> list[_Call]:
        waiting = [c for c in self._calls.values() if c.status is CallStatus.WAITING]
        return sorted(waiting, key=lambda c: c.queue_key)

    def _ordered_calls(self) -> list[_Call]:
        return sorted(self._calls.values(), key=lambda c: c.queue_key)

    # -- internals: transitions ---------------------------------------------

    def _change(
        self, adv: _Advisor, state: AdvisorState, reason: str | None, now: float
    ) -> AdvisorChanged:
        """The one place an advisor's state changes, so each change is reported."""
        adv.state, adv.reason, adv.since = state, reason, now
        return AdvisorChanged(adv.profile.name, state, reason)

    def _settle(self, adv: _Advisor, now: float, missed_reason: str | None = None) -> list[Action]:
        """Free an advisor: the pending state, AWAY after too many misses, or AVAILABLE."""
        adv.call_id = None
        adv.wrap_until = None
        if adv.pending is not None:
            state, reason = adv.pending
            adv.pending = None
        elif missed_reason is not None and adv.missed >= self.max_missed:
            state, reason = AdvisorState.AWAY, missed_reason
            adv.missed = 0
        else:
            state, reason = AdvisorState.AVAILABLE, None
        return [self._change(adv, state, reason, now)]

    def _fail_offer(self, call: _Call, now: float, reason: str) -> list[Action]:
        """Back to its place in the queue (original enqueue time kept)."""
        adv = self._advisors[call.advisor or ""]
        call.status = CallStatus.WAITING
        call.advisor = None
        call.offer_deadline = None
        call.last_failed_by = adv.profile.name
        adv.missed += 1
        return self._settle(adv, now, missed_reason=reason)

    def _drop(self, call_id: str, now: float, reason: str) -> list[Action]:
        """Forget a call whatever its status, freeing its advisor."""
        call = self._calls.pop(call_id, None)
        if call is None or call.advisor is None:
            return []
        adv = self._advisors[call.advisor]
        actions: list[Action] = []
        if call.status is CallStatus.OFFERED:
            actions.append(OfferRevoked(call_id, adv.profile.name, reason))
            actions += self._settle(adv, now)
        elif self.wrap_up_s > 0:
            adv.call_id = None
            adv.wrap_until = now + self.wrap_up_s
            actions.append(self._change(adv, AdvisorState.WRAP_UP, None, now))
        else:
            actions += self._settle(adv, now)
        return actions + self._dispatch(now)

    def _dispatch(self, now: float) -> list[Action]:
        """Offer waiting calls, in queue order, to the eligible advisor idle longest.

        Greedy in queue order keeps the fairness rule: an advisor only gets a
        call when every better call either got someone or cannot use them.
        """
        free = [a for a in self._advisors.values() if a.state is AdvisorState.AVAILABLE]
        actions: list[Action] = []
        for call in self._waiting():
            if not free:
                break
            adv = self._choose(call, free)
            if adv is not None:
                free.remove(adv)
                actions += self._offer(call, adv, now)
        return actions

    def _choose(self, call: _Call, free: list[_Advisor]) -> _Advisor | None:
        """Longest idle eligible advisor, avoiding the one who just missed this call."""
        eligible = [a for a in free if is_eligible(a.profile, call.requirements)]
        others = [a for a in eligible if a.profile.name != call.last_failed_by]
        candidates = others or eligible
        if not candidates:
            return None
        return min(candidates, key=lambda a: (a.since if a.since is not None else 0.0, a.order))

    def _offer(self, call: _Call, adv: _Advisor, now: float) -> list[Action]:
        call.status = CallStatus.OFFERED
        call.advisor = adv.profile.name
        call.offer_deadline = now + self.offer_timeout_s
        adv.call_id = call.call_id
        changed = self._change(adv, AdvisorState.RESERVED, None, now)
        return [Offer(call.call_id, adv.profile.name), changed]

    # -- internals: views ---------------------------------------------------

    def _advisor_view(self, adv: _Advisor) -> dict[str, Any]:
        profile = adv.profile
        return {
            "name": profile.name,
            "state": adv.state.value,
            "reason": adv.reason,
            "since": adv.since,
            "call_id": adv.call_id,
            "pending": None if adv.pending is None else adv.pending[0].value,
            "languages": sorted(profile.languages),
            "topics": sorted(profile.topics),
            "trainings": sorted(profile.trainings),
        }

    def _call_view(self, call: _Call, now: float) -> dict[str, Any]:
        req = call.requirements
        return {
            "call_id": call.call_id,
            "status": call.status.value,
            "language": req.language,
            "topic": req.topic,
            "trainings": sorted(req.trainings),
            "priority": call.priority,
            "enqueued_at": call.enqueued_at,
            "waited_s": max(0.0, now - call.enqueued_at),
            "advisor": call.advisor,
            "position": self.position(call.call_id),
        }

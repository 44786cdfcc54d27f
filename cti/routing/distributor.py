"""Pure skills-based call distributor.

A state machine: operations take the current time (``now``, seconds) and return
actions; it never sleeps, schedules or does I/O. The controller executes the
actions and calls :meth:`Distributor.tick` at :meth:`Distributor.next_deadline`.

Matching: an advisor may take a call when AVAILABLE and their skills meet the
call's current escalation step (language level, topic level or any topic,
required trainings not expired at ``now``); a preferred advisor has the call to
themself for ``preferred_wait_s`` while they are logged in and their skills fit
it (a logged-out or unfit preferred advisor releases it at once). Order of calls: priority plus aging
(``aging_per_s`` points per second waited), then the longest wait; a call added
``at_head`` goes before every call not yet connected of the same or a lower
priority. Choice of advisor: the configured strategy.

Reserve pools: a call may name advisors (``reserve``) who may take it when they
speak its language, even without its topic or trainings. They rank after every
advisor who fits the call fully: a call picks a full fit first, and an advisor
who frees up and could take a call only from its reserve leaves it to a free
advisor who fits it fully and has no better call. Otherwise a reserve fit counts
like a full one for the order of calls: an advisor takes the best-keyed call
they may take, fully or from its reserve.

Speed: waiting calls live in (language, topic) buckets sorted by a
time-invariant key, available advisors are indexed by language, and timers are
heaps; an event touches the calls and advisors it concerns, never all calls x
all advisors. After every operation no waiting call is eligible for an
available advisor ("dirty" calls and advisors are re-examined in _dispatch).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cti.routing.consult import ConsultMixin
from cti.routing.matching import (
    best_advisor_for,
    best_call_for,
    full_fit_taker,
)
from cti.routing.model import (
    DEFAULT_STEPS,
    DEFAULT_TOPIC_TRAININGS,
    PHONE_OFFLINE,
    SETTABLE_STATES,
    Action,
    AdvisorChanged,
    AdvisorProfile,
    AdvisorState,
    CallStatus,
    Escalated,
    EscalationStep,
    Offer,
    OfferRevoked,
    Requirements,
    WrapUpExpired,
)
from cti.routing.queue import Key, Timer, Timers, WaitingCalls, queue_key
from cti.routing.records import _Advisor, _Call
from cti.routing.trace import build_trace
from cti.routing.views import expected_wait, snapshot_view

STRATEGIES = ("best_match", "longest_idle", "least_talk_time", "round_robin")
DEFAULT_HANDLE_S = 180.0  # expected handle time before any call was measured
HANDLE_WINDOW = 100  # ended calls in the rolling average handle time


class Distributor(ConsultMixin):
    """Queues calls and offers each to the best free advisor.

    Setting a RESERVED or ON_CALL advisor away/logged out is stored as pending
    and applied once the call (and its wrap-up) is over; setting them available
    cancels the pending change. During WRAP_UP a state change applies at once.
    """

    def __init__(
        self,
        advisors: Iterable[AdvisorProfile],
        *,
        offer_timeout_s: float = 20.0,
        wrap_up_s: float | Mapping[str, float] = 0.0,
        max_missed: int = 1,
        topic_trainings: Mapping[str, frozenset[str]] | None = None,
        strategy: str = "best_match",
        escalation: Mapping[str, Sequence[EscalationStep]] | None = None,
        aging_per_s: float = 0.0,
        preferred_wait_s: float = 60.0,
    ) -> None:
        wraps = wrap_up_s.values() if isinstance(wrap_up_s, Mapping) else [wrap_up_s]
        if not offer_timeout_s > 0:
            raise ValueError(f"offer_timeout_s must be > 0, got {offer_timeout_s!r}")
        if any(w < 0 for w in wraps):
            raise ValueError(f"wrap_up_s must be >= 0, got {wrap_up_s!r}")
        if max_missed < 1:
            raise ValueError(f"max_missed must be >= 1, got {max_missed!r}")
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        self.offer_timeout_s = offer_timeout_s
        self.wrap_up_s = wrap_up_s
        self.max_missed = max_missed
        self.strategy = strategy
        self.aging_per_s = aging_per_s
        self.preferred_wait_s = preferred_wait_s
        self._escalation = {k: tuple(v) for k, v in (escalation or {}).items()}
        self._topic_trainings = dict(
            DEFAULT_TOPIC_TRAININGS if topic_trainings is None else topic_trainings)
        self._advisors: dict[str, _Advisor] = {}
        self._by_language: dict[str, set[str]] = {}  # every advisor, by language
        self._available: dict[str, set[str]] = {}  # AVAILABLE advisors, by language
        self._calls: dict[str, _Call] = {}
        self._waiting = WaitingCalls()
        self._timers = Timers(self._stale)
        self._dirty_calls: set[str] = set()
        self._dirty_advisors: set[str] = set()
        self._missed_advisors: set[str] = set()  # freed by a miss: they pick last
        self._handle_times: deque[float] = deque(maxlen=HANDLE_WINDOW)
        self._held: dict[str, set[str]] = {}  # preferred advisor -> calls that prefer them
        self._seq = itertools.count()
        self._heads = itertools.count()  # calls put at the head: a later one goes first
        self._offers = itertools.count()
        self._now = 0.0
        for profile in advisors:
            self.add_advisor(profile)

    # -- advisors -----------------------------------------------------------

    def add_advisor(self, profile: AdvisorProfile) -> None:
        """Register a new advisor, LOGGED_OUT until they set themselves available."""
        if profile.name in self._advisors:
            raise ValueError(f"advisor {profile.name!r} already exists")
        self._advisors[profile.name] = _Advisor(profile, order=len(self._advisors))
        self._index_languages(profile, add=True)

    def remove_advisor(self, name: str, now: float) -> list[Action]:
        """Forget an advisor (removed by an admin). Refused (ValueError) while they
        are reserved for, or on, a call: that call is theirs to finish. Calls that
        preferred them wait for anyone now; a running wrap-up just ends."""
        adv = self._advisor(name)
        if adv.state in (AdvisorState.RESERVED, AdvisorState.ON_CALL):
            raise ValueError(f"advisor {name!r} is {adv.state.value}: remove them after "
                             "the call")
        now = self._clock(now)
        actions: list[Action] = []
        if adv.state is not AdvisorState.LOGGED_OUT:
            actions.append(self._change(adv, AdvisorState.LOGGED_OUT, None, now))
        self._index_languages(adv.profile, add=False)
        del self._advisors[name]
        self._dirty_advisors.discard(name)
        self._missed_advisors.discard(name)
        for call_id in self._held.pop(name, set()):
            call = self._calls[call_id]
            call.preferred, call.direct, call.preferred_until = None, False, 0.0
            self._dirty_calls.add(call_id)
        return actions + self._dispatch(now)

    def update_advisor(self, profile: AdvisorProfile, now: float | None = None) -> list[Action]:
        """Replace an advisor's skills and trainings; they count from the next decision."""
        adv = self._advisor(profile.name)
        available = adv.state is AdvisorState.AVAILABLE
        self._set_available(adv, False)
        self._index_languages(adv.profile, add=False)
        adv.profile = profile
        self._index_languages(profile, add=True)
        self._set_available(adv, available)
        self._dirty_advisors.add(adv.name)
        self._dirty_calls.update(self._held.get(adv.name, ()))
        return [] if now is None else self._dispatch(self._clock(now))

    def set_state(
        self, advisor: str, state: AdvisorState | str, now: float, reason: str | None = None,
    ) -> list[Action]:
        """Advisor-requested state: "available", "away" or "logged_out"."""
        adv = self._advisor(advisor)
        target = AdvisorState(state)
        if target not in SETTABLE_STATES:
            raise ValueError(f"state {target.value!r} cannot be set from outside")
        now = self._clock(now)
        reason = None if target is AdvisorState.AVAILABLE else reason
        if target is AdvisorState.AVAILABLE and adv.phone_offline:
            target, reason = AdvisorState.AWAY, PHONE_OFFLINE  # back when the phone is
        if adv.state in (AdvisorState.RESERVED, AdvisorState.ON_CALL):
            adv.pending = None if target is AdvisorState.AVAILABLE else (target, reason)
            return []
        adv.pending = None
        adv.wrap_until = adv.wrap_call = None
        if target is AdvisorState.AVAILABLE:
            adv.missed = 0
        if (adv.state, adv.reason) == (target, reason):
            return []
        return [self._change(adv, target, reason, now), *self._dispatch(now)]

    def wrap_up_of(self, advisor: str) -> tuple[float, str] | None:
        """(latest end, call id) of the advisor's running wrap-up, or None."""
        adv = self._advisor(advisor)
        if adv.state is not AdvisorState.WRAP_UP or adv.wrap_until is None:
            return None
        return adv.wrap_until, adv.wrap_call or ""
    def set_phone(self, advisor: str, online: bool, now: float) -> list[Action]:
        """The advisor's phone registered (any contact) or lost its last contact.

        Offline, an advisor who would be AVAILABLE is AWAY ``phone_offline``
        instead (now, or when their call or wrap-up ends, or when they set
        themselves available); back online, an advisor away for that reason only
        is AVAILABLE again: the state they chose. Other states are left alone.
        """
        adv = self._advisor(advisor)
        if adv.phone_offline == (not online):
            return []
        adv.phone_offline = not online
        now = self._clock(now)
        if not online and adv.state is AdvisorState.AVAILABLE:
            return [self._change(adv, AdvisorState.AWAY, PHONE_OFFLINE, now)]
        if online and (adv.state, adv.reason) == (AdvisorState.AWAY, PHONE_OFFLINE):
            return [self._change(adv, AdvisorState.AVAILABLE, None, now), *self._dispatch(now)]
        return []

    def reset_day(self, now: float | None = None) -> None:
        """Start a new day for the least-talk-time strategy (talk seconds back to 0).

        A call connected across the reset counts from ``now`` (when given).
        """
        for adv in self._advisors.values():
            adv.talk_s = 0.0
        if now is not None:
            self._clock(now)
            for call in self._calls.values():
                if call.accepted_at is not None and call.accepted_at < now:
                    call.accepted_at = now

    # -- calls --------------------------------------------------------------

    def add_call(
        self, call_id: str, *, language: str, topic: str, priority: int = 0,
        trainings: Iterable[str] = (), reserve: Iterable[str] = (),
        preferred_advisor: str | None = None, now: float,
        enqueued_at: float | None = None, direct: bool = False, at_head: bool = False,
    ) -> list[Action]:
        """Queue a call; it may be offered at once.

        ``enqueued_at`` (default ``now``): when the caller started waiting; a call
        moved to another queue keeps its place in time. ``trainings``: needed on
        top of the topic's own. ``reserve``: advisors who may take it with its
        language only, after every advisor who fits it fully. ``at_head``: ahead
        of every call not yet connected (waiting or ringing) whose priority is the
        same or lower, e.g. a caller back from a failed overflow transfer; calls
        of a higher priority stay ahead, and so does a ringing call that comes back.
        """
        if call_id in self._calls:
            raise ValueError(f"call {call_id!r} is already queued")
        now = self._clock(now)
        enq = now if enqueued_at is None else min(enqueued_at, now)
        needed = Requirements(language, topic, self._trainings_for(topic, trainings),
                              frozenset(reserve))
        seq = next(self._seq)
        steps = self._escalation.get(topic) or self._escalation.get("default") or DEFAULT_STEPS
        call = _Call(call_id, needed, priority, enq, seq, self._key(priority, enq, seq),
                     steps, preferred_advisor, direct=direct and preferred_advisor is not None,
                     head=at_head)
        if at_head:
            call.key = self._head_key(call)
        if preferred_advisor in self._advisors:
            call.preferred_until = now + self.preferred_wait_s
            self._push_timer(call.preferred_until, "step", call_id)
            self._held.setdefault(preferred_advisor, set()).add(call_id)
        for step in steps[1:]:
            self._push_timer(max(now, enq + step.after_s), "step", call_id)
        self._calls[call_id] = call
        self._enqueue(call)
        return [*self._escalate(call, now), *self._dispatch(now)]

    def update_call(
        self, call_id: str, now: float, *, priority: int | None = None,
        trainings: Iterable[str] | None = None, reserve: Iterable[str] | None = None,
    ) -> list[Action]:
        """Change what a call needs, or its priority (None: unchanged).

        ``trainings`` replaces those asked for (the topic's own stay required),
        ``reserve`` replaces the pool. A waiting call keeps its place in time (its
        enqueue time; one put at the head stays at the head of its new priority)
        and may be offered at once. An offered or connected call is changed on
        its record only: a ringing advisor keeps the offer, and the new needs
        count if the offer fails and the call waits again (a plugin's change may
        race with an offer, so this is not an error). Unknown ids: KeyError.
        """
        call = self._call(call_id)
        now = self._clock(now)
        waiting = call.status is CallStatus.WAITING
        if waiting:
            self._dequeue(call)
        req = call.requirements
        call.requirements = Requirements(
            req.language, req.topic,
            req.trainings if trainings is None else self._trainings_for(req.topic, trainings),
            req.reserve if reserve is None else frozenset(reserve))
        if priority is not None and priority != call.priority:
            call.priority = priority
            call.key = self._head_key(call) if call.head else \
                self._key(priority, call.enqueued_at, call.seq)
        if not waiting:
            return []
        self._enqueue(call)  # re-examined as a dirty call: it may fit someone now
        return self._dispatch(now)

    def remove_call(self, call_id: str, now: float) -> list[Action]:
        """The caller hung up (waiting, offered or connected). Unknown ids: []."""
        return self._drop(call_id, self._clock(now), "caller_hung_up")

    def call_ended(self, call_id: str, now: float) -> list[Action]:
        """The conversation is over (same as remove_call for a call not connected)."""
        return self._drop(call_id, self._clock(now), "caller_hung_up")

    def offer_accepted(
        self, call_id: str, now: float, *, advisor: str | None = None
    ) -> list[Action]:
        """The advisor answered. ``advisor`` guards against a late answer to a stale offer."""
        call = self._offered_call(call_id, advisor)
        now = self._clock(now)
        adv = self._advisors[call.advisor or ""]
        call.status, call.offer_deadline, call.accepted_at = CallStatus.CONNECTED, None, now
        adv.missed = 0
        return [self._change(adv, AdvisorState.ON_CALL, None, now)]

    def offer_failed(
        self, call_id: str, now: float, reason: str = "no_answer", *, advisor: str | None = None,
    ) -> list[Action]:
        """No answer, rejected, busy or unreachable: back to the head of its place."""
        call = self._offered_call(call_id, advisor)
        now = self._clock(now)
        return [*self._fail_offer(call, now, reason), *self._dispatch(now)]

    def tick(self, now: float) -> list[Action]:
        """Offer timeouts, wrap-up ends and escalation steps due at ``now``."""
        now = self._clock(now)
        actions: list[Action] = []
        for _, _, kind, ident in self._timers.due(now):
            actions += self._fire(kind, ident, now)
        return actions + self._dispatch(now)

    def next_deadline(self) -> float | None:
        """The earliest offer timeout, wrap-up end or escalation step, or None."""
        return self._timers.next_at()

    # -- queries ------------------------------------------------------------

    def advisor_state(self, name: str) -> AdvisorState:
        return self._advisor(name).state

    def advisor_reason(self, name: str) -> str | None:
        return self._advisor(name).reason

    def advisor_call(self, name: str) -> str | None:
        return self._advisor(name).call_id

    def advisor_names(self) -> list[str]:
        return list(self._advisors)

    def advisor_profile(self, name: str) -> AdvisorProfile:
        return self._advisor(name).profile

    def has_call(self, call_id: str) -> bool:
        return call_id in self._calls

    def call_status(self, call_id: str) -> CallStatus:
        return self._call(call_id).status

    def waiting_calls(self) -> list[str]:
        """Waiting calls (not offered, not connected) in queue order."""
        return self._waiting.in_order()

    def position(self, call_id: str) -> int | None:
        """1-based rank among waiting calls of the same language and topic."""
        call = self._call(call_id)
        if call.status is not CallStatus.WAITING:
            return None
        return self._waiting.position(call)

    def expected_wait_s(self, call_id: str, now: float | None = None) -> float | None:
        """position x average handle time / advisors able to take it (logged in).

        The handle time is the mean talk + wrap-up of the last 100 calls (180 s
        before any). None when no logged-in advisor can take the call now.
        """
        pos = self.position(call_id)
        if pos is None:
            return None
        return expected_wait(self, self._calls[call_id], pos, self._now if now is None else now)

    def offered_to(self, call_id: str) -> str | None:
        call = self._call(call_id)
        return call.advisor if call.status is CallStatus.OFFERED else None

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """JSON-able picture for supervisors (waited times at ``now``)."""
        return snapshot_view(self, self._now if now is None else now)

    def avg_handle_s(self) -> float:
        """Mean talk + wrap-up of the last 100 ended calls (180 s before any)."""
        if not self._handle_times:
            return DEFAULT_HANDLE_S
        return sum(self._handle_times) / len(self._handle_times)

    # -- internals: lookups and indexes -------------------------------------

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

    def _trainings_for(self, topic: str, trainings: Iterable[str]) -> frozenset[str]:
        """Asked-for trainings plus the topic's own (which nobody can waive)."""
        return frozenset(trainings) | self._topic_trainings.get(topic, frozenset())

    def _key(self, priority: int, enqueued_at: float, seq: int) -> Key:
        return queue_key(self.aging_per_s, priority, enqueued_at, seq)

    def _head_key(self, call: _Call) -> Key:
        """A key ahead of every call not yet connected of the same or a lower priority
        (the call's own key if that is ahead already, through aging or its wait)."""
        normal = self._key(call.priority, call.enqueued_at, call.seq)
        rivals = [c.key for c in self._calls.values() if c is not call
                  and c.status is not CallStatus.CONNECTED and c.priority <= call.priority]
        if not rivals:
            return normal
        first = min(rivals)
        # Same first parts as the best rival, a negative last part: just before it
        # (normal seqs are >= 0; each head is more negative, so the latest goes first).
        return min(normal, (first[0], first[1], -1 - next(self._heads)))

    def _index_languages(self, profile: AdvisorProfile, add: bool) -> None:
        for lang in profile.languages:
            names = self._by_language.setdefault(lang, set())
            names.add(profile.name) if add else names.discard(profile.name)

    def _set_available(self, adv: _Advisor, available: bool) -> None:
        for lang in adv.profile.languages:
            names = self._available.setdefault(lang, set())
            names.add(adv.name) if available else names.discard(adv.name)

    def _enqueue(self, call: _Call) -> None:
        self._waiting.add(call)
        self._dirty_calls.add(call.call_id)

    def _dequeue(self, call: _Call) -> None:
        self._waiting.remove(call)

    def _push_timer(self, at: float, kind: str, ident: str) -> None:
        self._timers.push(at, kind, ident)

    def _stale(self, timer: Timer) -> bool:
        at, _, kind, ident = timer
        if kind == "offer":
            call = self._calls.get(ident)
            return call is None or call.offer_deadline != at
        if kind == "wrap":  # (an advisor removed meanwhile has no wrap-up left)
            adv = self._advisors.get(ident)
            return adv is None or adv.wrap_until != at
        # A step timer stays while the call rings an advisor: the offer may fail and
        # the call wait on (next_deadline() once dropped it then, and the step was lost).
        call = self._calls.get(ident)
        return call is None or call.status is CallStatus.CONNECTED

    def _fire(self, kind: str, ident: str, now: float) -> list[Action]:
        if kind == "offer":
            call = self._calls[ident]
            return [OfferRevoked(call.call_id, call.advisor or "", "timeout"),
                    *self._fail_offer(call, now, "no_answer")]
        if kind == "wrap":
            adv = self._advisors[ident]
            expired = [WrapUpExpired(adv.name, adv.wrap_call)] if adv.wrap_call else []
            return [*expired, *self._settle(adv, now)]
        call = self._calls[ident]  # an escalation step (or the preferred wait) passed
        if call.status is not CallStatus.WAITING:
            return []  # ringing: a failed offer re-examines the call at its step then
        self._dirty_calls.add(ident)
        return self._escalate(call, now)

    def _escalate(self, call: _Call, now: float) -> list[Action]:
        """Escalated once per step marked ``escalate``, when a waiting call is in it.

        A step reached while the call was ringing an advisor counts when the
        call is back in the queue; a clock jump over several steps reports the
        last one only.
        """
        index, step = call.step(now)
        if step.escalate and index not in call.escalated:
            call.escalated.add(index)
            return [Escalated(call.call_id, index)]
        return []

    # -- internals: transitions ---------------------------------------------

    def _change(
        self, adv: _Advisor, state: AdvisorState, reason: str | None, now: float
    ) -> AdvisorChanged:
        """The one place an advisor's state changes, so each change is reported."""
        if state is AdvisorState.AVAILABLE and adv.phone_offline:
            # Never offered a call on a phone that is gone; set_phone() undoes it.
            state, reason = AdvisorState.AWAY, PHONE_OFFLINE
        self._set_available(adv, state is AdvisorState.AVAILABLE)
        if state is AdvisorState.AVAILABLE:
            self._dirty_advisors.add(adv.name)
        adv.state, adv.reason, adv.since = state, reason, now
        if state is AdvisorState.LOGGED_OUT:
            self._dirty_calls.update(self._held.get(adv.name, ()))
        return AdvisorChanged(adv.name, state, reason, now)

    def _settle(self, adv: _Advisor, now: float, missed_reason: str | None = None) -> list[Action]:
        """Free an advisor: the pending state, AWAY after too many misses, or AVAILABLE."""
        adv.call_id = None
        adv.wrap_until = adv.wrap_call = None
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
        """Back to its place in the queue (its original key kept: the head of its place)."""
        adv = self._advisors[call.advisor or ""]
        call.status, call.advisor, call.offer_deadline = CallStatus.WAITING, None, None
        call.last_failed_by = adv.name
        self._enqueue(call)
        adv.missed += 1
        actions = self._settle(adv, now, missed_reason=reason)
        if adv.state is AdvisorState.AVAILABLE:
            self._dirty_advisors.discard(adv.name)
            self._missed_advisors.add(adv.name)
        return [*actions, *self._escalate(call, now)]

    def _wrap_up_for(self, topic: str) -> float:
        w = self.wrap_up_s
        return float(w.get(topic, w.get("default", 0.0))) if isinstance(w, Mapping) else w

    def _drop(self, call_id: str, now: float, reason: str) -> list[Action]:
        """Forget a call whatever its status, freeing its advisor."""
        call = self._calls.pop(call_id, None)
        if call is None:
            return []
        self._dirty_calls.discard(call_id)
        if call.preferred in self._held:
            self._held[call.preferred].discard(call_id)
        if call.status is CallStatus.WAITING:
            self._dequeue(call)
            return []
        adv = self._advisors[call.advisor or ""]
        actions: list[Action] = []
        if call.status is CallStatus.OFFERED:
            actions.append(OfferRevoked(call_id, adv.name, reason))
            actions += self._settle(adv, now)
        else:
            talk = now - (call.accepted_at or now)
            wrap = self._wrap_up_for(call.requirements.topic)
            adv.talk_s += talk
            self._handle_times.append(talk + wrap)
            if wrap > 0:
                adv.call_id = None
                adv.wrap_until, adv.wrap_call = now + wrap, call_id
                self._push_timer(adv.wrap_until, "wrap", adv.name)
                actions.append(self._change(adv, AdvisorState.WRAP_UP, None, now))
            else:
                actions += self._settle(adv, now)
        return actions + self._dispatch(now)

    # -- internals: decisions -----------------------------------------------

    def _dispatch(self, now: float) -> list[Action]:
        """Re-examine what changed, in three phases:

        1. each freed advisor takes the waiting call with the best key (one
           they may take only from its reserve pool goes to a free full fit
           whose best call it is, if there is one, and they look again);
        2. each new, relaxed or returned call (best key first) takes its best
           free advisor by the strategy, advisors who just missed an offer
           left out, so a missed call goes to someone else when anyone can;
        3. the advisors who just missed an offer take their best call (the
           missed one again only if nobody took it in phase 2).

        Each phase keeps "an advisor gets no call while a better-keyed call it
        may take waits", and afterwards no waiting call fits a free advisor.
        """
        actions = self._advisors_pick(self._dirty_advisors, now)
        calls = sorted((self._calls[c] for c in self._dirty_calls if c in self._calls),
                       key=lambda c: c.key)
        self._dirty_calls.clear()
        for call in calls:
            if call.status is CallStatus.WAITING:
                adv = best_advisor_for(self, call, now)
                if adv is not None:
                    actions += self._offer(call, adv, now, trigger="call_waiting")
        return actions + self._advisors_pick(self._missed_advisors, now)

    def _advisors_pick(self, names: set[str], now: float) -> list[Action]:
        """Each of these advisors still available takes their best call (longest idle first)."""
        advisors = sorted((self._advisors[n] for n in names),
                          key=lambda a: (a.since if a.since is not None else 0.0, a.order))
        names.clear()
        actions: list[Action] = []
        for adv in advisors:
            # Each turn offers one call, to this advisor or to a full fit (then retry).
            while adv.state is AdvisorState.AVAILABLE:
                call = best_call_for(self, adv, now)
                if call is None:
                    break
                taker = full_fit_taker(self, adv, call, now) or adv
                actions += self._offer(call, taker, now, trigger="advisor_free")
        return actions

    def _offer(self, call: _Call, adv: _Advisor, now: float, trigger: str) -> list[Action]:
        index, step = call.step(now)
        trace = build_trace(self, call, adv, index, step, now, trigger)
        self._dequeue(call)
        call.status, call.advisor = CallStatus.OFFERED, adv.name
        call.offer_deadline = now + self.offer_timeout_s
        self._push_timer(call.offer_deadline, "offer", call.call_id)
        adv.call_id = call.call_id
        adv.last_offer = next(self._offers)
        changed = self._change(adv, AdvisorState.RESERVED, None, now)
        return [Offer(call.call_id, adv.name, trace), changed]

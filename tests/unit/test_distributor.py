"""Tests of the pure distributor: one unit test per rule, then a hypothesis
stateful test driving random operation sequences and checking the invariants.

The stateful model is deliberately independent of the implementation:
eligibility and queue order are recomputed from what the test fed in, and the
distributor's state is read only through its public queries and snapshot.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from cti.routing import (
    Action,
    AdvisorChanged,
    AdvisorProfile,
    AdvisorState,
    CallStatus,
    Distributor,
    Offer,
    OfferRevoked,
    Requirements,
    WrapUpExpired,
    is_eligible,
)

AVAILABLE = AdvisorState.AVAILABLE
AWAY = AdvisorState.AWAY
RESERVED = AdvisorState.RESERVED
ON_CALL = AdvisorState.ON_CALL
WRAP_UP = AdvisorState.WRAP_UP
LOGGED_OUT = AdvisorState.LOGGED_OUT


def profile(
    name: str, langs: str = "en", topics: str = "visa", trainings: str = ""
) -> AdvisorProfile:
    return AdvisorProfile(
        name, frozenset(langs.split()), frozenset(topics.split()), frozenset(trainings.split())
    )


def offers(actions: list) -> list[Offer]:
    return [a for a in actions if isinstance(a, Offer)]


def make(*profiles: AdvisorProfile, available: bool = True, **kwargs: float) -> Distributor:
    dist = Distributor(profiles, **kwargs)  # type: ignore[arg-type]
    if available:
        for i, p in enumerate(profiles):
            dist.set_state(p.name, AVAILABLE, now=float(i) / 100)
    return dist


def test_new_advisors_are_logged_out() -> None:
    dist = Distributor([profile("ann")])
    assert dist.advisor_state("ann") is LOGGED_OUT
    assert dist.add_call("c1", language="en", topic="visa", now=0.0) == []
    assert dist.waiting_calls() == ["c1"]


def test_offer_to_eligible_advisor_and_accept() -> None:
    dist = make(profile("ann"))
    actions = dist.add_call("c1", language="en", topic="visa", now=1.0)
    assert actions == [Offer("c1", "ann"), AdvisorChanged("ann", RESERVED, None)]
    assert dist.offered_to("c1") == "ann" and dist.waiting_calls() == []
    assert dist.position("c1") is None
    assert dist.offer_accepted("c1", 2.0) == [AdvisorChanged("ann", ON_CALL, None)]
    assert dist.call_status("c1") is CallStatus.CONNECTED
    assert dist.offered_to("c1") is None


def test_language_and_topic_must_both_match() -> None:
    dist = make(profile("ann", "en", "visa"), profile("bob", "es", "passport"))
    assert dist.add_call("c1", language="en", topic="passport", now=1.0) == []
    assert dist.add_call("c2", language="es", topic="visa", now=1.0) == []
    assert offers(dist.add_call("c3", language="es", topic="passport", now=1.0)) == [
        Offer("c3", "bob")
    ]


def test_emergency_needs_crisis_training() -> None:
    dist = make(
        profile("ann", topics="emergency"), profile("bob", topics="emergency", trainings="crisis")
    )
    assert offers(dist.add_call("c1", language="en", topic="emergency", now=1.0)) == [
        Offer("c1", "bob")
    ]
    assert dist.add_call("c2", language="en", topic="emergency", now=2.0) == []


def test_explicit_trainings_and_topic_training_map() -> None:
    dist = make(profile("ann"), profile("bob", trainings="digid"), topic_trainings={})
    assert offers(
        dist.add_call("c1", language="en", topic="visa", trainings=["digid"], now=5.0)
    ) == [Offer("c1", "bob")]
    assert is_eligible(profile("x", topics="emergency"), Requirements("en", "emergency"))


def test_longest_idle_advisor_is_chosen() -> None:
    dist = make(profile("ann"), profile("bob"), available=False)
    dist.set_state("bob", AVAILABLE, 1.0)
    dist.set_state("ann", AVAILABLE, 2.0)
    assert offers(dist.add_call("c1", language="en", topic="visa", now=3.0)) == [Offer("c1", "bob")]


def test_free_advisor_takes_highest_priority_then_longest_wait() -> None:
    dist = make(profile("ann"), available=False)
    dist.add_call("old", language="en", topic="visa", now=1.0)
    dist.add_call("new", language="en", topic="visa", now=2.0)
    dist.add_call("vip", language="en", topic="visa", priority=5, now=3.0)
    assert dist.waiting_calls() == ["vip", "old", "new"]
    assert offers(dist.set_state("ann", AVAILABLE, 4.0)) == [Offer("vip", "ann")]
    dist.offer_accepted("vip", 5.0)
    assert offers(dist.call_ended("vip", 6.0)) == [Offer("old", "ann")]


def test_free_advisor_skips_calls_it_cannot_take() -> None:
    dist = make(profile("ann", "en es"), available=False)
    dist.add_call("tr", language="tr", topic="visa", priority=9, now=1.0)
    dist.add_call("es", language="es", topic="visa", now=2.0)
    assert offers(dist.set_state("ann", AVAILABLE, 3.0)) == [Offer("es", "ann")]
    assert dist.waiting_calls() == ["tr"]


def test_position_among_calls_with_same_requirements() -> None:
    dist = make(available=False)
    dist.add_call("a", language="en", topic="visa", now=1.0)
    dist.add_call("b", language="es", topic="visa", now=2.0)
    dist.add_call("c", language="en", topic="visa", now=3.0)
    dist.add_call("d", language="en", topic="visa", priority=1, now=4.0)
    assert [dist.position(c) for c in "abcd"] == [2, 1, 3, 1]


def test_remove_waiting_call() -> None:
    dist = make(available=False)
    dist.add_call("a", language="en", topic="visa", now=1.0)
    assert dist.remove_call("a", 2.0) == []
    assert dist.waiting_calls() == []
    assert dist.remove_call("a", 3.0) == []  # idempotent
    assert dist.call_ended("never", 3.0) == []


def test_remove_offered_call_frees_advisor_for_next_call() -> None:
    dist = make(profile("ann"))
    dist.add_call("a", language="en", topic="visa", now=1.0)
    dist.add_call("b", language="en", topic="visa", now=2.0)
    actions = dist.remove_call("a", 3.0)
    assert actions == [
        OfferRevoked("a", "ann", "caller_hung_up"),
        AdvisorChanged("ann", AVAILABLE, None),
        Offer("b", "ann"),
        AdvisorChanged("ann", RESERVED, None),
    ]


def test_offer_failed_requeues_at_head_and_sets_advisor_away() -> None:
    dist = make(profile("ann"), available=False)
    dist.set_state("ann", AVAILABLE, 0.5)
    dist.add_call("a", language="en", topic="visa", now=1.0)
    dist.add_call("b", language="en", topic="visa", now=2.0)
    actions = dist.offer_failed("a", 3.0)
    assert actions == [AdvisorChanged("ann", AWAY, "no_answer")]
    assert dist.waiting_calls() == ["a", "b"]
    assert dist.snapshot()["calls"][0]["enqueued_at"] == 1.0


def test_offer_failed_tries_another_advisor_not_the_same_one() -> None:
    dist = make(profile("ann"), profile("bob"), max_missed=3)
    dist.add_call("a", language="en", topic="visa", now=1.0)
    assert dist.offered_to("a") == "ann"
    actions = dist.offer_failed("a", 2.0, reason="rejected")
    assert AdvisorChanged("ann", AVAILABLE, None) in actions
    assert offers(actions) == [Offer("a", "bob")]


def test_same_advisor_again_when_nobody_else_can() -> None:
    dist = make(profile("ann"), max_missed=2)
    dist.add_call("a", language="en", topic="visa", now=1.0)
    assert offers(dist.offer_failed("a", 2.0)) == [Offer("a", "ann")]
    actions = dist.offer_failed("a", 3.0, reason="unreachable")
    assert actions == [AdvisorChanged("ann", AWAY, "unreachable")]  # 2 consecutive misses


def test_accept_resets_missed_count() -> None:
    dist = make(profile("ann"), max_missed=2)
    dist.add_call("a", language="en", topic="visa", now=1.0)
    dist.offer_failed("a", 2.0)  # miss 1, re-offered to ann
    dist.offer_accepted("a", 3.0)
    dist.call_ended("a", 4.0)
    dist.add_call("b", language="en", topic="visa", now=5.0)
    assert AdvisorChanged("ann", AVAILABLE, None) in dist.offer_failed("b", 6.0)


def test_offer_timeout_in_tick() -> None:
    dist = make(profile("ann"), profile("bob"), offer_timeout_s=10.0)
    dist.add_call("a", language="en", topic="visa", now=1.0)
    assert dist.next_deadline() == 11.0
    assert dist.tick(10.9) == []
    actions = dist.tick(11.0)
    assert actions == [
        OfferRevoked("a", "ann", "timeout"),
        AdvisorChanged("ann", AWAY, "no_answer"),
        Offer("a", "bob"),
        AdvisorChanged("bob", RESERVED, None),
    ]
    assert dist.next_deadline() == 21.0


def test_wrap_up_then_available_via_tick() -> None:
    dist = make(profile("ann"), wrap_up_s=30.0)
    dist.add_call("a", language="en", topic="visa", now=1.0)
    dist.offer_accepted("a", 2.0)
    dist.add_call("b", language="en", topic="visa", now=3.0)
    assert dist.call_ended("a", 10.0) == [AdvisorChanged("ann", WRAP_UP, None)]
    assert dist.next_deadline() == 40.0
    assert dist.tick(39.0) == []
    assert dist.tick(40.0) == [
        WrapUpExpired("ann", "a"),  # the most wrap-up time passed: not wrapped up
        AdvisorChanged("ann", AVAILABLE, None),
        Offer("b", "ann"),
        AdvisorChanged("ann", RESERVED, None),
    ]


def test_available_during_wrap_up_ends_it_early() -> None:
    dist = make(profile("ann"), wrap_up_s=30.0)
    dist.add_call("a", language="en", topic="visa", now=1.0)
    dist.offer_accepted("a", 2.0)
    dist.call_ended("a", 3.0)
    assert dist.set_state("ann", "available", 4.0) == [AdvisorChanged("ann", AVAILABLE, None)]
    assert dist.next_deadline() is None


def test_away_while_on_call_is_pending_until_the_call_ends() -> None:
    dist = make(profile("ann"))
    dist.add_call("a", language="en", topic="visa", now=1.0)
    dist.offer_accepted("a", 2.0)
    assert dist.set_state("ann", AWAY, 3.0, reason="lunch") == []
    assert dist.advisor_state("ann") is ON_CALL
    assert dist.snapshot()["advisors"][0]["pending"] == "away"
    dist.add_call("b", language="en", topic="visa", now=4.0)
    assert dist.call_ended("a", 5.0) == [AdvisorChanged("ann", AWAY, "lunch")]
    assert dist.waiting_calls() == ["b"]


def test_pending_applies_after_wrap_up_and_available_cancels_it() -> None:
    dist = make(profile("ann"), wrap_up_s=5.0)
    dist.add_call("a", language="en", topic="visa", now=1.0)
    dist.set_state("ann", LOGGED_OUT, 1.5)  # while reserved
    dist.offer_accepted("a", 2.0)
    dist.call_ended("a", 3.0)
    assert dist.tick(8.0) == [WrapUpExpired("ann", "a"), AdvisorChanged("ann", LOGGED_OUT, None)]
    dist.set_state("ann", AVAILABLE, 9.0)
    dist.add_call("b", language="en", topic="visa", now=10.0)
    dist.set_state("ann", AWAY, 11.0)
    dist.set_state("ann", AVAILABLE, 12.0)  # changed their mind
    assert dist.offer_failed("b", 13.0) == [AdvisorChanged("ann", AWAY, "no_answer")]


def test_pending_state_wins_over_no_answer() -> None:
    dist = make(profile("ann"))
    dist.add_call("a", language="en", topic="visa", now=1.0)
    dist.set_state("ann", LOGGED_OUT, 2.0, reason="shift_end")
    assert dist.offer_failed("a", 3.0) == [AdvisorChanged("ann", LOGGED_OUT, "shift_end")]


def test_set_state_no_change_emits_nothing_and_reason_change_does() -> None:
    dist = make(profile("ann"))
    assert dist.set_state("ann", AVAILABLE, 1.0) == []
    assert dist.set_state("ann", AWAY, 2.0, reason="break") == [
        AdvisorChanged("ann", AWAY, "break")
    ]
    assert dist.set_state("ann", AWAY, 3.0, reason="break") == []
    assert dist.set_state("ann", AWAY, 4.0, reason="coaching") == [
        AdvisorChanged("ann", AWAY, "coaching")
    ]


def test_set_state_rejects_routing_states_and_unknown_names() -> None:
    dist = make(profile("ann"))
    with pytest.raises(ValueError):
        dist.set_state("ann", ON_CALL, 1.0)
    with pytest.raises(ValueError):
        dist.set_state("ann", "sleeping", 1.0)
    with pytest.raises(KeyError, match="unknown advisor 'zed'"):
        dist.set_state("zed", AVAILABLE, 1.0)
    with pytest.raises(KeyError):
        dist.advisor_state("zed")


def test_unknown_or_stale_call_ids_raise_key_error() -> None:
    dist = make(profile("ann"), profile("bob"))
    for call in (
        lambda: dist.offer_accepted("x", 1.0),
        lambda: dist.offer_failed("x", 1.0),
        lambda: dist.position("x"),
        lambda: dist.offered_to("x"),
    ):
        with pytest.raises(KeyError, match="unknown call 'x'"):
            call()
    dist.add_call("a", language="en", topic="visa", now=1.0)
    with pytest.raises(KeyError, match="offered to 'ann', not 'bob'"):
        dist.offer_accepted("a", 2.0, advisor="bob")
    dist.offer_accepted("a", 2.0, advisor="ann")
    with pytest.raises(KeyError, match="no pending offer"):
        dist.offer_failed("a", 3.0)


def test_duplicate_call_id_is_rejected() -> None:
    dist = make(available=False)
    dist.add_call("a", language="en", topic="visa", now=1.0)
    with pytest.raises(ValueError):
        dist.add_call("a", language="en", topic="visa", now=2.0)


def test_remove_connected_call_is_call_ended() -> None:
    dist = make(profile("ann"))
    dist.add_call("a", language="en", topic="visa", now=1.0)
    dist.offer_accepted("a", 2.0)
    assert dist.remove_call("a", 3.0) == [AdvisorChanged("ann", AVAILABLE, None)]


def test_update_advisor_takes_effect_on_next_decision() -> None:
    dist = make(profile("ann"))
    dist.add_call("a", language="es", topic="visa", now=1.0)
    assert dist.update_advisor(profile("ann", "en es")) == []
    assert offers(dist.tick(2.0)) == [Offer("a", "ann")]
    dist2 = make(profile("ann"))
    dist2.add_call("a", language="es", topic="visa", now=1.0)
    assert offers(dist2.update_advisor(profile("ann", "es"), now=2.0)) == [Offer("a", "ann")]
    with pytest.raises(KeyError):
        dist2.update_advisor(profile("zed"))


def test_snapshot_is_json_and_complete() -> None:
    dist = make(profile("ann"), profile("bob", "es"))
    dist.add_call("a", language="en", topic="visa", now=1.0)
    dist.add_call("b", language="tr", topic="visa", priority=2, now=2.0)
    snap = json.loads(json.dumps(dist.snapshot(now=12.0)))
    assert snap["waiting"] == ["b"]
    states = {a["name"]: a["state"] for a in snap["advisors"]}
    assert states == {"ann": "reserved", "bob": "available"}
    calls = {c["call_id"]: c for c in snap["calls"]}
    assert calls["b"]["waited_s"] == 10.0 and calls["b"]["language"] == "tr"
    assert calls["a"]["status"] == "offered" and calls["a"]["advisor"] == "ann"


def test_constructor_validation() -> None:
    with pytest.raises(ValueError):
        Distributor([profile("a"), profile("a")])
    with pytest.raises(ValueError):
        Distributor([], max_missed=0)
    with pytest.raises(ValueError):
        Distributor([], offer_timeout_s=0)


def test_no_immediate_retry_with_same_advisor_even_on_idle_tie() -> None:
    """Idle order alone would pick ann again here (same times, ann listed first)."""
    dist = make(profile("ann"), profile("bob"), available=False, max_missed=2)
    dist.set_state("ann", AVAILABLE, 0.0)
    dist.set_state("bob", AVAILABLE, 0.0)
    dist.add_call("a", language="en", topic="visa", now=0.0)
    assert dist.offered_to("a") == "ann"
    assert offers(dist.offer_failed("a", 0.0)) == [Offer("a", "bob")]
    assert dist.advisor_state("ann") is AVAILABLE


# -- stateful invariants ------------------------------------------------------

NAMES = ("ann", "bob", "cem", "dia")
LANGS = ("en", "es")
TOPICS = ("visa", "emergency")
SETTABLE = (AdvisorState.AVAILABLE, AdvisorState.AWAY, AdvisorState.LOGGED_OUT)

subsets = st.sets(st.sampled_from(LANGS), min_size=1).map(frozenset)
topic_sets = st.sets(st.sampled_from(TOPICS), min_size=1).map(frozenset)
training_sets = st.sampled_from([frozenset(), frozenset({"crisis"})])
reserve_sets = st.frozensets(st.sampled_from(NAMES), max_size=2)


def profiles_strategy(name: str) -> st.SearchStrategy[AdvisorProfile]:
    return st.builds(AdvisorProfile, st.just(name), subsets, topic_sets, training_sets)


def eligible(profile: AdvisorProfile, language: str, topic: str) -> bool:
    """The documented rule, written again independently of the module."""
    crisis_ok = topic != "emergency" or "crisis" in profile.trainings
    return language in profile.languages and topic in profile.topics and crisis_ok


class DistributorMachine(RuleBasedStateMachine):
    #: The distributor's aging_per_s (priority points per second waited).
    AGING = 0.0

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.next_id = 0  # calls are c0, c1, ...
        # call -> (language, topic, queue key: lower first)
        self.live: dict[str, tuple[str, str, tuple[float, float, int]]] = {}
        self.enqueued: dict[str, float] = {}
        self.priority: dict[str, int] = {}
        self.trainings: dict[str, frozenset[str]] = {}  # asked for, beyond the topic's
        self.reserve: dict[str, frozenset[str]] = {}
        self.heads: set[str] = set()
        self.head_ids = itertools.count()
        self.gone: list[str] = []
        self.settled = True

    @initialize(
        profiles=st.tuples(*(profiles_strategy(n) for n in NAMES)),
        wrap_up=st.sampled_from([0.0, 5.0]),
        max_missed=st.integers(1, 3),
    )
    def setup(self, profiles: tuple[AdvisorProfile, ...], wrap_up: float, max_missed: int) -> None:
        self.profiles = {p.name: p for p in profiles}
        self.dist = Distributor(
            profiles, offer_timeout_s=10.0, wrap_up_s=wrap_up, max_missed=max_missed
        )

    # -- helpers ------------------------------------------------------------

    def view(self) -> dict[str, Any]:
        return self.dist.snapshot(self.now)

    def calls_with(self, status: str) -> list[str]:
        return sorted(c["call_id"] for c in self.view()["calls"] if c["status"] == status)

    def advisor_states(self) -> dict[str, tuple[str, str | None]]:
        return {a["name"]: (a["state"], a["reason"]) for a in self.view()["advisors"]}

    def apply(self, operation: Any, *, settles: bool = False, single: bool = False
              ) -> list[Action]:
        """Run one operation and check the per-step properties of its actions.

        ``settles``: the operation always ends with a routing decision, so after
        it no waiting call may fit an available advisor. Only an
        update_advisor without ``now`` leaves the distributor unsettled, and
        operations that change nothing (unknown id, same state) keep it so.
        ``single``: one event (not a tick freeing several advisors at once): a
        call given to its reserve pool had no free advisor fitting it fully.
        """
        before = self.advisor_states()
        was_settled = self.settled
        actions = operation()
        self.check_actions(before, actions)
        if single and was_settled:
            self.check_reserve_came_last(before, actions)
        self.settled = settles or self.settled
        return actions

    def check_reserve_came_last(self, before: dict[str, tuple[str, str | None]],
                                actions: list[Action]) -> None:
        free_before = [n for n, (state, _) in before.items() if state == "available"]
        for offer in (a for a in actions if isinstance(a, Offer)):
            if self.full_fits(offer.advisor, offer.call_id):
                continue
            trained = [n for n in free_before if self.full_fits(n, offer.call_id)]
            assert not trained, f"{offer.call_id} went to reserve {offer.advisor}, not {trained}"

    def check_actions(
        self, before: dict[str, tuple[str, str | None]], actions: list[Action]
    ) -> None:
        after = self.advisor_states()
        last_change: dict[str, AdvisorChanged] = {}
        for action in actions:
            if isinstance(action, AdvisorChanged):
                last_change[action.advisor] = action
        for name in NAMES:
            if name in last_change:
                change = last_change[name]
                assert after[name] == (change.state.value, change.reason)
            else:
                assert after[name] == before[name], f"{name} changed silently"
        offered = [a for a in actions if isinstance(a, Offer)]
        assert len({o.advisor for o in offered}) == len(offered), "two offers to one advisor"
        assert len({o.call_id for o in offered}) == len(offered), "one call offered twice"
        waiting = self.dist.waiting_calls()
        for offer in offered:
            self.check_offer(offer, waiting)

    def check_offer(self, offer: Offer, waiting: list[str]) -> None:
        assert self.dist.offered_to(offer.call_id) == offer.advisor
        assert self.dist.advisor_state(offer.advisor) is AdvisorState.RESERVED
        key = self.live[offer.call_id][2]
        assert self.fits(offer.advisor, offer.call_id)
        from_reserve = not self.full_fits(offer.advisor, offer.call_id)
        assert offer.trace["from_reserve"] is from_reserve
        for other in waiting:
            if self.live[other][2] < key:
                assert not self.fits(offer.advisor, other), (
                    f"{offer.advisor} got {offer.call_id} while better {other} waits"
                )

    def fits(self, name: str, call_id: str) -> bool:
        """May this advisor take this call now, fully or from its reserve pool?"""
        fit = self.skills_fit(name, call_id) or self.reserve_fits(name, call_id)
        return fit and not self.held(name, call_id)

    def full_fits(self, name: str, call_id: str) -> bool:
        return self.skills_fit(name, call_id) and not self.held(name, call_id)

    def skills_fit(self, name: str, call_id: str) -> bool:
        """Do this advisor's skills fit the call now (the model's own rule)?"""
        language, topic, _ = self.live[call_id]
        profile = self.profiles[name]
        return eligible(profile, language, topic) and self.trainings[call_id] <= set(
            profile.trainings)

    def reserve_fits(self, name: str, call_id: str) -> bool:
        """In the call's reserve pool and speaking its language (any level)."""
        return name in self.reserve[call_id] and \
            self.live[call_id][0] in self.profiles[name].languages

    def held(self, name: str, call_id: str) -> bool:
        """Kept for another (preferred) advisor."""
        return False

    def forget(self, call_id: str) -> None:
        if self.live.pop(call_id, None) is not None:
            self.gone.append(call_id)

    def normal_key(self, call_id: str) -> tuple[float, float, int]:
        enq = self.enqueued[call_id]
        return (self.AGING * enq - self.priority[call_id], enq, int(call_id[1:]))

    def head_key(self, call_id: str) -> tuple[float, float, int]:
        """Ahead of every call not connected of the same or a lower priority."""
        normal = self.normal_key(call_id)
        pending = set(self.dist.waiting_calls()) | set(self.calls_with("offered"))
        rivals = [self.live[c][2] for c in pending if c != call_id
                  and self.priority[c] <= self.priority[call_id]]
        if not rivals:
            return normal
        first = min(rivals)
        return min(normal, (first[0], first[1], -1 - next(self.head_ids)))

    def peek_id(self) -> int:
        """The number of the next call id (ids are c0, c1, ...)."""
        return self.next_id

    def new_call(self, language: str, topic: str, priority: int, trainings: frozenset[str],
                 reserve: frozenset[str], at_head: bool, **extra: Any) -> str:
        """Add a call to the model and the distributor."""
        call_id = f"c{self.next_id}"
        self.next_id += 1
        self.enqueued[call_id], self.priority[call_id] = self.now, priority
        self.trainings[call_id], self.reserve[call_id] = trainings, reserve
        self.live[call_id] = (language, topic, self.normal_key(call_id))
        if at_head:
            self.heads.add(call_id)
            self.live[call_id] = (language, topic, self.head_key(call_id))
        self.apply(
            lambda: self.dist.add_call(
                call_id, language=language, topic=topic, priority=priority, now=self.now,
                trainings=trainings, reserve=reserve, at_head=at_head, **extra,
            ),
            settles=True, single=True,
        )
        if at_head:
            self.check_at_head(call_id)
        return call_id

    def check_at_head(self, call_id: str) -> None:
        waiting = self.dist.waiting_calls()
        if call_id not in waiting:
            return
        mine = waiting.index(call_id)
        for i, other in enumerate(waiting):
            if other != call_id and self.priority[other] <= self.priority[call_id]:
                assert mine < i, f"{call_id} put at the head but behind {other}"

    # -- rules --------------------------------------------------------------

    @rule(
        language=st.sampled_from(LANGS), topic=st.sampled_from(TOPICS),
        priority=st.integers(0, 2), trainings=training_sets, reserve=reserve_sets,
        at_head=st.booleans(),
    )
    def add_call(self, language: str, topic: str, priority: int, trainings: frozenset[str],
                 reserve: frozenset[str], at_head: bool) -> None:
        self.new_call(language, topic, priority, trainings, reserve, at_head)

    @precondition(lambda self: bool(self.live))
    @rule(
        data=st.data(), priority=st.none() | st.integers(0, 2),
        trainings=st.none() | training_sets, reserve=st.none() | reserve_sets,
    )
    def update_call(self, data: st.DataObject, priority: int | None,
                    trainings: frozenset[str] | None, reserve: frozenset[str] | None) -> None:
        """New needs or priority for a call in any state: a waiting one keeps its place."""
        call_id = data.draw(st.sampled_from(sorted(self.live)))
        waiting = call_id in self.dist.waiting_calls()
        if trainings is not None:
            self.trainings[call_id] = trainings
        if reserve is not None:
            self.reserve[call_id] = reserve
        moved = priority is not None and priority != self.priority[call_id]
        if priority is not None and moved:
            self.priority[call_id] = priority
            language, topic, _ = self.live[call_id]
            key = self.head_key(call_id) if call_id in self.heads else self.normal_key(call_id)
            self.live[call_id] = (language, topic, key)
        actions = self.apply(
            lambda: self.dist.update_call(call_id, self.now, priority=priority,
                                          trainings=trainings, reserve=reserve),
            settles=waiting, single=True,
        )
        if not waiting:
            assert actions == []
        elif moved and call_id in self.heads:  # placed at the head of its new priority
            self.check_at_head(call_id)

    @rule(data=st.data(), ended=st.booleans())
    def hang_up(self, data: st.DataObject, ended: bool) -> None:
        """remove_call / call_ended of a live call, an old one or an unknown one."""
        pool = sorted(self.live) + self.gone + ["nope"]
        call_id = data.draw(st.sampled_from(pool))
        operation = self.dist.call_ended if ended else self.dist.remove_call
        actions = self.apply(lambda: operation(call_id, self.now), single=True)
        if call_id not in self.live:
            assert actions == []
        self.forget(call_id)

    @precondition(lambda self: bool(self.calls_with("offered")))
    @rule(data=st.data())
    def accept(self, data: st.DataObject) -> None:
        call_id = data.draw(st.sampled_from(self.calls_with("offered")))
        advisor = self.dist.offered_to(call_id)
        self.apply(lambda: self.dist.offer_accepted(call_id, self.now, advisor=advisor))
        assert self.dist.advisor_state(advisor or "") is AdvisorState.ON_CALL

    @precondition(lambda self: bool(self.calls_with("offered")))
    @rule(data=st.data(), reason=st.sampled_from(["no_answer", "rejected", "unreachable"]))
    def fail(self, data: st.DataObject, reason: str) -> None:
        call_id = data.draw(st.sampled_from(self.calls_with("offered")))
        advisor = self.dist.offered_to(call_id)
        was_settled = self.settled
        available_before = {n for n, (s, _) in self.advisor_states().items() if s == "available"}
        actions = self.apply(
            lambda: self.dist.offer_failed(call_id, self.now, reason), settles=True, single=True
        )
        if was_settled and Offer(call_id, advisor or "") in actions:
            others = [n for n in available_before if self.fits(n, call_id)]
            assert not others, f"{call_id} offered to {advisor} again while {others} were free"

    @precondition(lambda self: bool(self.calls_with("connected")))
    @rule(data=st.data())
    def end(self, data: st.DataObject) -> None:
        call_id = data.draw(st.sampled_from(self.calls_with("connected")))
        self.apply(lambda: self.dist.call_ended(call_id, self.now), single=True)
        self.forget(call_id)

    @rule(
        name=st.sampled_from(NAMES),
        state=st.sampled_from(SETTABLE),
        reason=st.sampled_from([None, "break"]),
    )
    def set_state(self, name: str, state: AdvisorState, reason: str | None) -> None:
        self.apply(lambda: self.dist.set_state(name, state, self.now, reason), single=True)

    @rule(dt=st.sampled_from([0.0, 0.5, 3.0, 5.0, 10.0, 30.0]))
    def tick(self, dt: float) -> None:
        deadline = self.dist.next_deadline()
        self.now += dt
        actions = self.apply(lambda: self.dist.tick(self.now), settles=True)
        for revoked in (a for a in actions if isinstance(a, OfferRevoked)):
            assert revoked.reason == "timeout"
        if deadline is None or deadline > self.now:
            assert not any(isinstance(a, OfferRevoked) for a in actions)

    @rule(data=st.data(), decide_now=st.booleans())
    def update_advisor(self, data: st.DataObject, decide_now: bool) -> None:
        name = data.draw(st.sampled_from(NAMES))
        profile = data.draw(profiles_strategy(name))
        self.profiles[name] = profile
        now = self.now if decide_now else None
        self.apply(lambda: self.dist.update_advisor(profile, now), settles=decide_now)
        self.settled = decide_now

    # -- invariants ---------------------------------------------------------

    @invariant()
    def no_call_lost_or_duplicated(self) -> None:
        waiting = self.dist.waiting_calls()
        offered = self.calls_with("offered")
        connected = self.calls_with("connected")
        everything = waiting + offered + connected
        assert len(everything) == len(set(everything)), "a call is in two places"
        assert set(everything) == set(self.live), "a call was lost or invented"

    @invariant()
    def queue_order_is_priority_then_enqueue_time(self) -> None:
        waiting = self.dist.waiting_calls()
        assert waiting == sorted(waiting, key=lambda c: self.live[c][2])

    @invariant()
    def advisors_hold_at_most_one_call(self) -> None:
        calls = [c for c in self.view()["calls"] if c["advisor"] is not None]
        holders = [c["advisor"] for c in calls]
        assert len(holders) == len(set(holders)), "an advisor holds two calls"
        by_advisor = {c["advisor"]: c["status"] for c in calls}
        for name in NAMES:
            state = self.dist.advisor_state(name)
            expected = {AdvisorState.RESERVED: "offered", AdvisorState.ON_CALL: "connected"}
            assert by_advisor.get(name) == expected.get(state), (name, state, by_advisor)

    @invariant()
    def nobody_idles_while_a_fitting_call_waits(self) -> None:
        if not self.settled:
            return
        free = [n for n in NAMES if self.dist.advisor_state(n) is AdvisorState.AVAILABLE]
        for call_id in self.dist.waiting_calls():
            assert not [n for n in free if self.fits(n, call_id)]

    @invariant()
    def deadlines_are_consistent(self) -> None:
        deadline = self.dist.next_deadline()
        busy = self.calls_with("offered") or any(
            self.dist.advisor_state(n) is AdvisorState.WRAP_UP for n in NAMES
        )
        assert (deadline is not None) == bool(busy)


DistributorMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestDistributorInvariants = DistributorMachine.TestCase

"""Reserve pools, requirement changes that keep the place, calls put at the head.

A crisis call needs the crisis training; its reserve pool names advisors who may
take it with the caller's language only, after every advisor who fits it fully.
"""

from __future__ import annotations

import json

import pytest

from cti.routing import (
    AdvisorChanged,
    AdvisorState,
    CallStatus,
    Distributor,
    EscalationStep,
    Offer,
    reserve_fit,
)
from tests.unit.test_routing_rules import adv, make, offers

AVAILABLE = AdvisorState.AVAILABLE
TRAINED = adv("tia", {"en": 3}, {"emergency": 3}, {"crisis": None})
RESERVE = adv("rex", {"en": 1}, {"visa": 3})  # no crisis training, no emergency topic


def crisis(d: Distributor, call_id: str = "c", now: float = 1.0, **kw: object) -> list:
    return d.add_call(call_id, language="en", topic="emergency", reserve={"rex"},
                      now=now, **kw)  # type: ignore[arg-type]


# -- reserve pools -------------------------------------------------------------


def test_the_reserve_takes_a_crisis_call_nobody_trained_is_free_for() -> None:
    d = make(RESERVE)
    (o,) = offers(crisis(d))
    assert o.advisor == "rex"
    assert o.trace["from_reserve"] is True and o.trace["reserve_pool"] == ["rex"]
    assert o.trace["candidates"][0]["reserve"] is True
    assert json.loads(json.dumps(o.trace))["chosen"] == "rex"


def test_without_the_pool_the_call_waits() -> None:
    d = make(RESERVE)
    assert d.add_call("c", language="en", topic="emergency", now=1) == []
    assert d.waiting_calls() == ["c"]


def test_a_full_fit_goes_first_even_if_the_reserve_idles_longer() -> None:
    d = make(RESERVE, TRAINED)  # rex idles longest
    (o,) = offers(crisis(d))
    assert o.advisor == "tia" and o.trace["from_reserve"] is False
    assert [(c["advisor"], c["reserve"]) for c in o.trace["candidates"]] == \
        [("tia", False), ("rex", True)]


def test_the_reserve_must_speak_the_language_at_any_level() -> None:
    d = make(adv("rex", {"es": 5}, {"emergency": 5}))
    assert offers(crisis(d)) == []
    assert not reserve_fit(adv("rex", {"es": 5}, {}), d._calls["c"].requirements)
    # Level 1 is enough although the step asks for 3: the reserve ignores the step.
    steps = {"default": [EscalationStep(0, 3, 3)]}
    d = make(adv("rex", {"en": 1}, {}), escalation=steps)
    assert [o.advisor for o in offers(crisis(d))] == ["rex"]


def test_an_advisor_freed_later_takes_the_waiting_crisis_call_from_the_reserve() -> None:
    d = make(RESERVE)
    d.add_call("v", language="en", topic="visa", now=1)
    d.offer_accepted("v", 2)
    assert crisis(d, now=3) == []  # rex is busy: the call waits
    actions = d.call_ended("v", 10)
    assert offers(actions) == [Offer("c", "rex")]
    assert offers(actions)[0].trace["trigger"] == "advisor_free"


def test_the_reserve_takes_the_better_keyed_crisis_call_before_its_own_topic() -> None:
    """Calls are served in key order: a reserve takes the crisis caller (higher
    priority, or waiting longer) before a call of its own topic."""
    d = make(RESERVE)
    d.set_state("rex", "away", 1)
    d.add_call("v", language="en", topic="visa", now=2)
    crisis(d, now=3, priority=10)
    assert offers(d.set_state("rex", AVAILABLE, 4)) == [Offer("c", "rex")]


def test_freed_together_the_trained_advisor_gets_the_crisis_call() -> None:
    """Two wrap-ups end in one tick; the reserve (idle first) leaves the crisis call
    to the trained colleague and takes the visa call it fits fully."""
    both = adv("rex", {"en": 1}, {"visa": 3})
    d = make(both, adv("tia", {"en": 3}, {"emergency": 3, "visa": 3}, {"crisis": None}),
             wrap_up_s=5.0)
    for cid in ("a", "b"):
        d.add_call(cid, language="en", topic="visa", now=1)
        d.offer_accepted(cid, 1)
    d.call_ended("a", 2)  # rex wraps up until 7
    d.call_ended("b", 2)  # tia too
    crisis(d, now=3, priority=10)
    d.add_call("v", language="en", topic="visa", now=4)
    got = {o.call_id: o.advisor for o in offers(d.tick(7))}
    assert got == {"c": "tia", "v": "rex"}


def test_a_call_kept_for_its_preferred_advisor_is_kept_from_the_reserve() -> None:
    d = make(RESERVE, TRAINED)
    d.set_state("tia", "away", 1)
    assert crisis(d, preferred_advisor="tia") == []
    assert d.waiting_calls() == ["c"]


def test_expected_wait_counts_the_reserve() -> None:
    d = make(RESERVE)
    d.set_state("rex", "away", 1)
    crisis(d, now=2)
    assert d.expected_wait_s("c", 2) == 180.0


# -- update_call -----------------------------------------------------------------


def test_update_call_adds_a_reserve_and_the_call_is_offered_at_once() -> None:
    d = make(RESERVE)
    assert d.add_call("c", language="en", topic="emergency", now=1) == []
    actions = d.update_call("c", 5, reserve={"rex"})
    assert actions == [Offer("c", "rex"), AdvisorChanged("rex", AdvisorState.RESERVED, None)]


def test_update_call_priority_keeps_the_place_in_time() -> None:
    d = Distributor([adv("ann", {"en": 3}, {"visa": 3})])
    for i, cid in enumerate(("a", "b", "c")):
        d.add_call(cid, language="en", topic="visa", now=float(i))
    assert d.update_call("c", 10, priority=1) == []
    assert d.waiting_calls() == ["c", "a", "b"]
    view = {c["call_id"]: c for c in d.snapshot(10)["calls"]}
    assert view["c"]["enqueued_at"] == 2.0 and view["c"]["priority"] == 1
    d.update_call("c", 11, priority=0)  # back among equals: by its enqueue time again
    assert d.waiting_calls() == ["a", "b", "c"]


def test_update_call_trainings_replace_the_asked_ones_not_the_topics() -> None:
    d = Distributor([adv("ann", {"en": 3}, {"visa": 3, "emergency": 3})])
    d.add_call("v", language="en", topic="visa", trainings={"digid"}, now=1)
    d.add_call("e", language="en", topic="emergency", now=1)
    d.update_call("v", 2, trainings=())
    d.update_call("e", 2, trainings=())
    assert d._calls["v"].requirements.trainings == frozenset()
    assert d._calls["e"].requirements.trainings == {"crisis"}
    assert offers(d.set_state("ann", AVAILABLE, 3)) == [Offer("v", "ann")]


def test_update_call_on_a_ringing_call_counts_if_the_offer_fails() -> None:
    d = make(adv("ann", {"en": 3}, {"visa": 3}), RESERVE, max_missed=2)
    (o,) = offers(d.add_call("c", language="en", topic="visa", now=1))
    assert o.advisor == "ann"
    # Ann keeps ringing (no revoke); if she misses, the crisis needs apply.
    assert d.update_call("c", 2, trainings={"crisis"}) == []
    assert d.offered_to("c") == "ann"
    assert offers(d.offer_failed("c", 3)) == []  # nobody trained, no reserve
    assert d.waiting_calls() == ["c"]
    assert offers(d.update_call("c", 4, reserve={"rex"})) == [Offer("c", "rex")]


def test_update_call_on_a_connected_call_is_recorded_only() -> None:
    d = make(adv("ann", {"en": 3}, {"visa": 3}))
    d.add_call("c", language="en", topic="visa", now=1)
    d.offer_accepted("c", 2)
    assert d.update_call("c", 3, priority=5, reserve={"rex"}) == []
    assert d.call_status("c") is CallStatus.CONNECTED
    (view,) = d.snapshot(3)["calls"]
    assert view["priority"] == 5 and view["reserve"] == ["rex"]
    with pytest.raises(KeyError):
        d.update_call("nope", 3, priority=1)


# -- at_head -------------------------------------------------------------------


def queue(d: Distributor, *calls: tuple[str, int], now: float = 0.0) -> None:
    for i, (cid, prio) in enumerate(calls):
        d.add_call(cid, language="en", topic="visa", priority=prio, now=now + i)


def test_at_head_goes_before_the_same_and_lower_priority_not_higher() -> None:
    d = Distributor([adv("ann", {"en": 3}, {"visa": 3})])
    queue(d, ("low", 0), ("same", 1), ("high", 2))
    d.add_call("back", language="en", topic="visa", priority=1, at_head=True, now=10)
    assert d.waiting_calls() == ["high", "back", "same", "low"]
    assert d.position("back") == 2
    (view,) = [c for c in d.snapshot(10)["calls"] if c["call_id"] == "back"]
    assert view["at_head"] is True and view["waited_s"] == 0.0


def test_a_later_head_goes_first_and_aging_is_respected() -> None:
    d = Distributor([adv("ann", {"en": 3}, {"visa": 3})], aging_per_s=1.0)
    queue(d, ("old", 0), ("new", 0))  # old aged ahead
    d.add_call("h1", language="en", topic="visa", at_head=True, now=50)
    d.add_call("h2", language="en", topic="visa", at_head=True, now=60)
    assert d.waiting_calls() == ["h2", "h1", "old", "new"]
    assert offers(d.set_state("ann", AVAILABLE, 61)) == [Offer("h2", "ann")]


def test_at_head_with_an_earlier_enqueue_time_keeps_its_own_place() -> None:
    d = Distributor([adv("ann", {"en": 3}, {"visa": 3})])
    queue(d, ("a", 0), ("b", 0), now=10)
    d.add_call("x", language="en", topic="visa", at_head=True, enqueued_at=1, now=20)
    assert d.waiting_calls() == ["x", "a", "b"]


def test_at_head_stays_at_the_head_of_its_new_priority() -> None:
    d = Distributor([adv("ann", {"en": 3}, {"visa": 3})])
    queue(d, ("a", 0), ("b", 2))
    d.add_call("h", language="en", topic="visa", at_head=True, now=5)
    assert d.waiting_calls() == ["b", "h", "a"]
    d.update_call("h", 6, priority=2)
    assert d.waiting_calls() == ["h", "b", "a"]


def test_at_head_goes_before_a_ringing_call_that_comes_back() -> None:
    d = make(adv("ann", {"en": 3}, {"visa": 3}), max_missed=3)
    d.add_call("r", language="en", topic="visa", now=1)  # rings ann
    d.add_call("h", language="en", topic="visa", at_head=True, now=2)
    d.offer_failed("r", 3)  # ann is free again and takes the head call
    assert d.offered_to("h") == "ann" and d.waiting_calls() == ["r"]

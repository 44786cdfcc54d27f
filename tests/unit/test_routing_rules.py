"""The distributor's issue-3 rules: levels, expiry, steps, strategies, aging, traces, waits."""

from __future__ import annotations

import json

import pytest

from cti.routing import (
    AdvisorChanged,
    AdvisorProfile,
    AdvisorState,
    Distributor,
    Escalated,
    EscalationStep,
    Offer,
)

AVAILABLE = AdvisorState.AVAILABLE
STEPS = {"default": [
    EscalationStep(0, 3, 3),
    EscalationStep(30, 2, 1),
    EscalationStep(90, 1, 0, escalate=True),
]}


def adv(name: str, langs: dict, topics: dict, trainings: dict | None = None) -> AdvisorProfile:
    return AdvisorProfile(name, langs, topics, trainings or {})


def offers(actions: list) -> list[Offer]:
    return [a for a in actions if isinstance(a, Offer)]


def make(*profiles: AdvisorProfile, **kw) -> Distributor:  # noqa: ANN003
    d = Distributor(profiles, **kw)
    for i, p in enumerate(profiles):
        d.set_state(p.name, AVAILABLE, now=i / 100)
    return d


def test_levels_must_meet_the_first_step() -> None:
    d = make(adv("weak", {"es": 2}, {"visa": 5}), escalation=STEPS)
    assert d.add_call("c", language="es", topic="visa", now=1) == []
    d2 = make(adv("ok", {"es": 3}, {"visa": 3}), escalation=STEPS)
    assert offers(d2.add_call("c", language="es", topic="visa", now=1)) == [Offer("c", "ok")]


def test_steps_relax_over_time_and_escalate_once() -> None:
    d = make(adv("weak", {"es": 1}, {"passport": 1}), escalation=STEPS)
    d.add_call("c", language="es", topic="visa", now=0)
    assert d.next_deadline() == 30
    assert d.tick(30) == []  # language 1 < 2 still
    assert d.next_deadline() == 90
    actions = d.tick(90)
    assert Escalated("c", 2) in actions
    assert offers(actions) == [Offer("c", "weak")]  # any topic, language >= 1
    trace = offers(actions)[0].trace
    assert trace["step"] == {"index": 2, "after_s": 90, "min_language": 1, "min_topic": 0}
    d.set_state("weak", "available", 95)  # no-op: reserved; the call is not re-escalated
    d.offer_failed("c", 100)
    assert not [a for a in d.tick(200) if isinstance(a, Escalated)]


def test_training_expires_at_its_expiry_time_without_reload() -> None:
    d = make(adv("dalia", {"en": 5}, {"emergency": 5}, {"crisis": 100.0}))
    assert offers(d.add_call("a", language="en", topic="emergency", now=99.9)) == \
        [Offer("a", "dalia")]
    d.offer_accepted("a", 99.95)
    d.call_ended("a", 99.99)
    assert d.advisor_state("dalia") is AVAILABLE
    assert d.add_call("b", language="en", topic="emergency", now=100.0) == []
    assert d.waiting_calls() == ["b"]


@pytest.mark.parametrize(("strategy", "winner"), [
    ("best_match", "expert"), ("longest_idle", "idle"), ("least_talk_time", "fresh"),
])
def test_strategies(strategy: str, winner: str) -> None:
    profiles = [adv("idle", {"en": 3}, {"visa": 3}), adv("expert", {"en": 5}, {"visa": 5}),
                adv("fresh", {"en": 3}, {"visa": 3})]
    d = Distributor(profiles, strategy=strategy)
    d.set_state("idle", AVAILABLE, 0)
    d.set_state("expert", AVAILABLE, 1)
    # give idle and expert talk time today; fresh has none
    for name, t in (("idle", 2), ("expert", 3)):
        d.set_state("fresh", "away", t)
        d.add_call(f"x{name}", language="en", topic="visa", now=t)
        assert d.offered_to(f"x{name}") in ("idle", "expert")
        d.offer_accepted(f"x{name}", t)
        d.call_ended(f"x{name}", t + 60)
    d.set_state("idle", AVAILABLE, 100)
    d.set_state("expert", AVAILABLE, 200)
    d.set_state("fresh", AVAILABLE, 300)
    if strategy == "longest_idle":
        d.set_state("idle", "away", 301)
        d.set_state("idle", AVAILABLE, 0)  # idle since the earliest time
    got = offers(d.add_call("c", language="en", topic="visa", now=400))
    assert got == [Offer("c", winner)]


def test_round_robin_rotates() -> None:
    d = make(adv("a", {"en": 3}, {"visa": 3}), adv("b", {"en": 3}, {"visa": 3}),
             strategy="round_robin")
    seen = []
    for i in range(4):
        (o,) = offers(d.add_call(f"c{i}", language="en", topic="visa", now=10 + i))
        seen.append(o.advisor)
        d.offer_accepted(o.call_id, 10 + i)
        d.call_ended(o.call_id, 10.5 + i)
    assert seen == ["a", "b", "a", "b"]


def test_aging_lets_an_old_low_priority_call_overtake() -> None:
    d = Distributor([adv("ann", {"en": 3}, {"visa": 3})], aging_per_s=1 / 60)
    d.add_call("old", language="en", topic="visa", priority=0, now=0)
    d.add_call("new", language="en", topic="visa", priority=10, now=700)  # 11.7 min later
    assert d.waiting_calls() == ["old", "new"]
    assert offers(d.set_state("ann", AVAILABLE, 701)) == [Offer("old", "ann")]
    d2 = Distributor([adv("ann", {"en": 3}, {"visa": 3})], aging_per_s=1 / 60)
    d2.add_call("old", language="en", topic="visa", priority=0, now=0)
    d2.add_call("new", language="en", topic="visa", priority=10, now=500)  # 8.3 min later
    assert offers(d2.set_state("ann", AVAILABLE, 501)) == [Offer("new", "ann")]


def test_preferred_advisor_first_then_anyone() -> None:
    d = make(adv("other", {"en": 3}, {"visa": 3}), adv("pref", {"en": 3}, {"visa": 3}),
             preferred_wait_s=60)
    d.set_state("pref", "away", 1)
    assert d.add_call("c", language="en", topic="visa", preferred_advisor="pref", now=2) == []
    assert offers(d.set_state("pref", AVAILABLE, 3)) == [Offer("c", "pref")]
    d.offer_failed("c", 4)
    assert d.advisor_state("pref") is AdvisorState.AWAY
    actions = d.tick(62)
    assert offers(actions) == [Offer("c", "other")]


def test_per_topic_wrap_up() -> None:
    d = make(adv("ann", {"en": 3}, {"visa": 3, "emergency": 3}, {"crisis": None}),
             wrap_up_s={"default": 5, "emergency": 30})
    for cid, topic, until in (("v", "visa", 5), ("e", "emergency", 30)):
        d.add_call(cid, language="en", topic=topic, now=100)
        d.offer_accepted(cid, 100)
        changed = d.call_ended(cid, 100)
        assert AdvisorChanged("ann", AdvisorState.WRAP_UP, None) in changed
        assert d.next_deadline() == 100 + until
        d.tick(100 + until)
        assert d.advisor_state("ann") is AVAILABLE


def test_misses_set_away_after_max_missed() -> None:
    d = make(adv("ann", {"en": 3}, {"visa": 3}), max_missed=2, offer_timeout_s=10)
    d.add_call("a", language="en", topic="visa", now=0)
    d.tick(10)  # miss 1: the call comes back to ann (nobody else)
    assert d.offered_to("a") == "ann"
    d.tick(20)  # miss 2
    assert d.advisor_state("ann") is AdvisorState.AWAY
    assert d.advisor_reason("ann") == "no_answer"
    assert d.waiting_calls() == ["a"]


def test_trace_names_the_excluded_and_why() -> None:
    d = make(adv("sofia", {"es": 5}, {"visa": 4}), adv("michel", {"es": 3}, {"passport": 4}),
             adv("weak", {"es": 2}, {"visa": 5}), adv("emre", {"tr": 5}, {"visa": 3}),
             escalation=STEPS)
    d.set_state("weak", "away", 1, reason="break")
    (o,) = offers(d.add_call("c", language="es", topic="visa", now=5))
    assert o.advisor == "sofia"
    t = json.loads(json.dumps(o.trace))
    assert t["chosen"] == "sofia" and t["strategy"] == "best_match"
    assert [c["advisor"] for c in t["candidates"]] == ["sofia"]
    assert t["excluded"]["michel"] == "no topic visa"
    assert t["excluded"]["weak"] == "language level 2 < 3"
    assert t["excluded_counts"]["wrong language"] == 1


def test_position_and_expected_wait_use_measured_handle_times() -> None:
    d2 = make(adv("a", {"en": 3}, {"visa": 3}), adv("b", {"en": 3}, {"visa": 3}))
    for i in range(4):
        d2.add_call(f"c{i}", language="en", topic="visa", now=i)
    assert [d2.position(f"c{i}") for i in range(4)] == [None, None, 1, 2]
    assert d2.expected_wait_s("c3") == 2 * 180 / 2  # default handle time, 2 advisors
    d2.offer_accepted("c0", 10)
    d2.call_ended("c0", 70)  # 60 s talk measured -> c2 offered to the freed advisor
    assert d2.position("c3") == 1
    assert d2.expected_wait_s("c3") == 1 * 60 / 2


def test_live_skill_edit_takes_effect_on_the_next_decision() -> None:
    d = make(adv("ann", {"en": 3}, {"visa": 3}))
    d.add_call("c", language="tr", topic="visa", now=1)
    assert d.waiting_calls() == ["c"]
    actions = d.update_advisor(adv("ann", {"en": 3, "tr": 4}, {"visa": 3}), now=2)
    assert offers(actions) == [Offer("c", "ann")]


def test_a_moved_call_keeps_its_place_in_time() -> None:
    d = Distributor([adv("ann", {"en": 3}, {"visa": 3, "passport": 3})])
    d.add_call("new", language="en", topic="visa", now=50)
    d.add_call("moved", language="en", topic="visa", now=60, enqueued_at=10)
    assert d.waiting_calls() == ["moved", "new"]
    assert offers(d.set_state("ann", AVAILABLE, 61)) == [Offer("moved", "ann")]

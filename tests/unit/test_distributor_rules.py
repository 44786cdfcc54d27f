"""One test per routing rule of the levelled distributor (issue: skills, levels,
trainings with expiry, escalation steps, strategies, aging, preferred advisor,
traces, position and expected wait, live edits)."""

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
    OfferRevoked,
)
from tests.unit.test_routing_rules import STEPS, adv, make, offers

AVAILABLE = AdvisorState.AVAILABLE
AWAY = AdvisorState.AWAY

# -- profiles, levels, trainings ------------------------------------------------


def test_plain_iterables_mean_level_3_and_no_expiry() -> None:
    p = AdvisorProfile("ann", ["en", "es"], {"visa"}, ("crisis",))
    assert p.languages == {"en": 3, "es": 3} and p.topics == {"visa": 3}
    assert p.trainings == {"crisis": None}
    assert p.valid_trainings(1e12) == {"crisis"}
    assert AdvisorProfile("bob", ["en"], ["visa"]).trainings == {}


def test_minimum_levels_of_the_first_step_and_the_exclusion_reasons() -> None:
    d = make(adv("low_lang", {"es": 2}, {"visa": 5}), adv("low_topic", {"es": 5}, {"visa": 1}),
             escalation=STEPS)
    # nobody meets language >= 3 and topic >= 3
    assert d.add_call("ok", language="es", topic="visa", now=0) == []
    assert d.add_call("x", language="es", topic="visa", now=0) == []
    assert d.waiting_calls() == ["ok", "x"]
    good = make(adv("good", {"es": 3}, {"visa": 3}), escalation=STEPS)
    assert offers(good.add_call("c", language="es", topic="visa", now=0)) == [Offer("c", "good")]


def test_training_counts_until_just_before_its_expiry_and_not_at_it() -> None:
    crisis = {"crisis": 50.0}
    d = make(adv("ann", {"en": 3}, {"emergency": 3}, crisis))
    assert offers(d.add_call("a", language="en", topic="emergency", now=49.999)) == \
        [Offer("a", "ann")]
    d.remove_call("a", 49.999)
    assert d.add_call("b", language="en", topic="emergency", now=50.0) == []
    assert d.advisor_profile("ann").valid_trainings(50.0) == set()
    # a new expiry by a live edit makes it count again
    assert offers(d.update_advisor(adv("ann", {"en": 3}, {"emergency": 3}, {"crisis": None}),
                                   now=51.0)) == [Offer("b", "ann")]


def test_explicit_training_requirement_and_expired_vs_missing_in_trace() -> None:
    d = make(adv("exp", {"en": 3}, {"visa": 3}, {"digid": 10.0}),
             adv("none", {"en": 3}, {"visa": 3}),
             adv("ok", {"en": 3}, {"visa": 3}, {"digid": None}))
    (o,) = offers(d.add_call("c", language="en", topic="visa", trainings=["digid"], now=20))
    assert o.advisor == "ok"
    assert o.trace["excluded"] == {"exp": "training digid expired",
                                   "none": "missing training digid"}
    assert o.trace["requirements"]["trainings"] == ["digid"]


# -- advisor states ---------------------------------------------------------


def test_advisor_changed_carries_the_time() -> None:
    d = Distributor([adv("ann", {"en": 3}, {"visa": 3})])
    (changed,) = d.set_state("ann", "away", 12.5, reason="break")
    assert changed == AdvisorChanged("ann", AWAY, "break")
    assert changed.at == 12.5
    assert d.advisor_reason("ann") == "break"


def test_wrap_up_per_topic_with_default() -> None:
    d = make(adv("ann", {"en": 3}, {"visa": 3, "passport": 3}),
             wrap_up_s={"default": 10, "visa": 45})
    d.add_call("v", language="en", topic="visa", now=1)
    d.offer_accepted("v", 2)
    assert d.call_ended("v", 3) == [AdvisorChanged("ann", AdvisorState.WRAP_UP, None)]
    assert d.next_deadline() == 48
    d.tick(48)
    d.add_call("p", language="en", topic="passport", now=50)
    d.offer_accepted("p", 51)
    d.call_ended("p", 52)
    assert d.next_deadline() == 62  # "default"


# -- escalation ---------------------------------------------------------------


def test_next_deadline_includes_the_next_step_change() -> None:
    d = make(adv("ann", {"es": 2}, {"visa": 1}), escalation=STEPS)
    d.add_call("c", language="es", topic="visa", now=5)
    assert d.next_deadline() == 35
    assert offers(d.tick(35)) == [Offer("c", "ann")]  # language >= 2, topic >= 1


def test_escalated_once_even_with_clock_jumps_and_requeues() -> None:
    d = make(adv("ann", {"en": 1}, {"visa": 1}), escalation=STEPS, offer_timeout_s=10)
    d.set_state("ann", "away", 1)
    d.add_call("c", language="en", topic="visa", now=0)
    first = d.tick(500)  # jumps over two steps at once
    assert [a for a in first if isinstance(a, Escalated)] == [Escalated("c", 2)]
    d.set_state("ann", AVAILABLE, 501)
    d.tick(511)  # offer times out, call back in the queue: no second Escalated
    assert not [a for a in d.tick(1000) if isinstance(a, Escalated)]


def test_step_reached_while_ringing_is_reported_when_the_call_is_back() -> None:
    d = make(adv("ann", {"en": 3}, {"visa": 3}), escalation=STEPS, offer_timeout_s=100)
    d.add_call("c", language="en", topic="visa", now=0)
    assert d.offered_to("c") == "ann"
    assert not [a for a in d.tick(95) if isinstance(a, Escalated)]
    assert Escalated("c", 2) in d.offer_failed("c", 96)


def test_first_step_may_escalate_at_once() -> None:
    d = Distributor([], escalation={"emergency": [EscalationStep(0, 1, 0, escalate=True)]})
    assert d.add_call("c", language="en", topic="emergency", now=0) == [Escalated("c", 0)]
    assert d.add_call("v", language="en", topic="visa", now=0) == []  # default steps


# -- strategies -----------------------------------------------------------------


def test_best_match_uses_levels_then_longest_idle() -> None:
    d = make(adv("b3", {"en": 3}, {"visa": 3}), adv("a5", {"en": 5}, {"visa": 4}),
             adv("c5", {"en": 4}, {"visa": 5}))
    (o,) = offers(d.add_call("c", language="en", topic="visa", now=1))
    assert o.advisor == "a5"  # score 9 ties with c5, a5 idle longer
    assert [(c["advisor"], c["score"]) for c in o.trace["candidates"]] == \
        [("a5", 9), ("c5", 9), ("b3", 6)]


def test_least_talk_time_counts_from_answer_to_end_and_resets_daily() -> None:
    d = make(adv("ann", {"en": 3}, {"visa": 3}), adv("bob", {"en": 3}, {"visa": 3}),
             strategy="least_talk_time")
    d.add_call("x", language="en", topic="visa", now=1)  # ann (idle longest)
    d.offer_accepted("x", 11)
    d.call_ended("x", 71)  # 60 s talk
    assert d.snapshot()["advisors"][0]["talk_s"] == 60
    d.set_state("bob", "away", 72)
    d.set_state("bob", AVAILABLE, 73)  # ann is now idle longer, but talked more
    assert offers(d.add_call("y", language="en", topic="visa", now=80)) == [Offer("y", "bob")]
    d.remove_call("y", 81)
    d.reset_day(90)
    assert [a["talk_s"] for a in d.snapshot()["advisors"]] == [0, 0]
    d.set_state("bob", "away", 91)
    d.set_state("bob", AVAILABLE, 92)
    assert offers(d.add_call("z", language="en", topic="visa", now=93)) == [Offer("z", "ann")]


def test_longest_idle_ignores_levels() -> None:
    d = make(adv("idle", {"en": 1}, {"visa": 1}), adv("star", {"en": 5}, {"visa": 5}),
             strategy="longest_idle")
    assert offers(d.add_call("c", language="en", topic="visa", now=5)) == [Offer("c", "idle")]


def test_unknown_strategy_is_rejected() -> None:
    with pytest.raises(ValueError):
        Distributor([], strategy="random")


# -- aging and starvation -------------------------------------------------------


def test_aging_prevents_starvation_under_a_stream_of_high_priority_calls() -> None:
    """One advisor, a priority-5 call every 10 s, each handled in 10 s: without
    aging the priority-0 call waits forever; with aging it is served once its
    wait outweighs 5 points (5 / 0.05 = 100 s)."""
    def served_at(aging: float) -> float | None:
        d = make(adv("ann", {"en": 3}, {"visa": 3}), aging_per_s=aging)
        d.set_state("ann", "away", 0.5)
        d.add_call("low", language="en", topic="visa", priority=0, now=1)
        d.add_call("h0", language="en", topic="visa", priority=5, now=1)
        (o,) = offers(d.set_state("ann", AVAILABLE, 1))
        t = 1.0
        for i in range(1, 40):
            assert o.call_id != "low"
            d.offer_accepted(o.call_id, t)
            t += 10
            d.add_call(f"h{i}", language="en", topic="visa", priority=5, now=t)
            (o,) = offers(d.call_ended(o.call_id, t))
            if o.call_id == "low":
                return t
        return None

    assert served_at(0.0) is None
    served = served_at(0.05)
    assert served is not None and served <= 1 + 100 + 20


# -- preferred advisor ------------------------------------------------------------


def test_preferred_advisor_gets_it_first_even_if_others_idle_longer() -> None:
    d = make(adv("other", {"en": 5}, {"visa": 5}), adv("pref", {"en": 3}, {"visa": 3}))
    (o,) = offers(d.add_call("c", language="en", topic="visa", preferred_advisor="pref", now=1))
    assert o.advisor == "pref"
    assert o.trace["excluded"]["other"] == "kept for preferred advisor pref"


def test_preferred_not_eligible_or_logged_out_means_normal_routing() -> None:
    d = make(adv("other", {"en": 3}, {"visa": 3}), adv("pref", {"fr": 3}, {"visa": 3}))
    assert offers(d.add_call("c", language="en", topic="visa", preferred_advisor="pref",
                             now=1)) == [Offer("c", "other")]
    d2 = make(adv("other", {"en": 3}, {"visa": 3}), adv("pref", {"en": 3}, {"visa": 3}),
              preferred_wait_s=60)
    d2.set_state("pref", "away", 0.5, reason="break")
    assert d2.add_call("c", language="en", topic="visa", preferred_advisor="pref", now=1) == []
    assert d2.next_deadline() == 61
    actions = d2.set_state("pref", "logged_out", 2)
    assert offers(actions) == [Offer("c", "other")]  # no point holding it any longer


# -- offers and misses ------------------------------------------------------------


def test_misses_count_consecutively_and_next_advisor_is_tried() -> None:
    d = make(adv("ann", {"en": 3}, {"visa": 3}), adv("bob", {"en": 3}, {"visa": 3}),
             max_missed=2, offer_timeout_s=10)
    d.add_call("a", language="en", topic="visa", now=1)
    actions = d.tick(11)
    assert actions[0] == OfferRevoked("a", "ann", "timeout")
    assert offers(actions) == [Offer("a", "bob")]
    assert d.advisor_state("ann") is AVAILABLE  # 1 miss < 2
    d.add_call("b", language="en", topic="visa", now=12)
    assert d.offered_to("b") == "ann"
    d.offer_failed("b", 13, reason="rejected")
    assert (d.advisor_state("ann"), d.advisor_reason("ann")) == (AWAY, "rejected")


def test_failed_call_goes_back_to_the_head_of_its_place() -> None:
    d = make(adv("ann", {"en": 3}, {"visa": 3}), max_missed=5)
    d.add_call("a", language="en", topic="visa", now=1)
    d.add_call("b", language="en", topic="visa", now=2)
    d.set_state("ann", "away", 2.5)  # pending while reserved
    d.offer_failed("a", 3)
    assert d.waiting_calls() == ["a", "b"] and d.position("a") == 1


# -- traces -------------------------------------------------------------------------


def test_trace_states_and_skills_as_reasons() -> None:
    d = make(
        adv("chosen", {"en": 4}, {"visa": 4}),
        adv("busy", {"en": 5}, {"visa": 5}), adv("res", {"en": 5}, {"visa": 5}),
        adv("brk", {"en": 5}, {"visa": 5}), adv("out", {"en": 5}, {"visa": 5}),
        adv("lowtopic", {"en": 5}, {"visa": 1}), adv("notopic", {"en": 5}, {"passport": 5}),
        adv("french", {"fr": 5}, {"visa": 5}),
        escalation=STEPS,
    )
    d.add_call("b1", language="en", topic="visa", now=1)  # -> busy (best match, idle longer)
    d.add_call("r1", language="en", topic="visa", now=1)  # -> res
    assert (d.offered_to("b1"), d.offered_to("r1")) == ("busy", "res")
    d.offer_accepted("b1", 2)
    d.set_state("brk", "away", 2, reason="break")
    d.set_state("out", "logged_out", 2)
    (o,) = offers(d.add_call("c", language="en", topic="visa", now=3))
    t = json.loads(json.dumps(o.trace))
    assert o.advisor == "chosen"
    assert t["excluded"] == {
        "busy": "busy (on_call)", "res": "reserved", "brk": "away (break)",
        "out": "logged out", "lowtopic": "topic level 1 < 3", "notopic": "no topic visa",
    }
    assert t["excluded_counts"]["wrong language"] == 1
    assert t["step"] == {"index": 0, "after_s": 0, "min_language": 3, "min_topic": 3}
    assert t["strategy"] == "best_match" and t["trigger"] == "call_waiting"
    assert t["requirements"] == {"language": "en", "topic": "visa", "trainings": []}
    assert t["from_reserve"] is False


def test_trace_is_summarised_with_many_advisors() -> None:
    profiles = [adv(f"a{i:03d}", {"en": 1 + i % 5}, {"visa": 1 + i % 5}) for i in range(200)]
    d = make(*profiles, escalation=STEPS)
    (o,) = offers(d.add_call("c", language="en", topic="visa", now=10))
    t = o.trace
    assert len(t["candidates"]) == 10
    scores = [c["score"] for c in t["candidates"]]
    assert scores == sorted(scores, reverse=True) and scores[0] == 10
    assert len(t["excluded"]) == 50
    assert sum(t["excluded_counts"].values()) + 1 + 119 == 200  # 120 fit, 1 chosen
    assert t["excluded_counts"]["language level 1 < 3"] == 40


def test_advisor_who_just_missed_is_named_in_the_trace() -> None:
    d = make(adv("ann", {"en": 3}, {"visa": 3}), adv("bob", {"en": 3}, {"visa": 3}),
             max_missed=3)
    d.add_call("a", language="en", topic="visa", now=1)
    (o,) = offers(d.offer_failed("a", 2))
    assert o.advisor == "bob"
    assert o.trace["excluded"]["ann"] == "missed this call just before"


# -- position and expected wait ----------------------------------------------------


def test_expected_wait_counts_logged_in_eligible_advisors_only() -> None:
    d = make(adv("a", {"en": 3}, {"visa": 3}), adv("b", {"en": 3}, {"visa": 3}),
             adv("c", {"en": 3}, {"visa": 3}), adv("fr", {"fr": 3}, {"visa": 3}))
    for i in range(3):
        d.add_call(f"x{i}", language="en", topic="visa", now=1)
    d.add_call("w", language="en", topic="visa", now=2)
    assert d.position("w") == 1
    assert d.expected_wait_s("w") == 180 / 3  # busy advisors still count, fr does not
    d.set_state("c", "logged_out", 3)  # pending until its call ends
    d.remove_call("x2", 4)  # c logs out; w goes to ... nobody free
    assert d.advisor_state("c") is AdvisorState.LOGGED_OUT
    assert d.expected_wait_s("w") == 180 / 2
    d.add_call("es", language="es", topic="visa", now=5)
    assert d.position("es") == 1 and d.expected_wait_s("es") is None


def test_snapshot_is_extended_and_json() -> None:
    d = make(adv("ann", {"en": 3}, {"visa": 3}, {"crisis": 10.0}))
    d.set_state("ann", "away", 1, reason="break")
    d.add_call("c", language="en", topic="visa", preferred_advisor="ann", now=2)
    snap = json.loads(json.dumps(d.snapshot(now=20)))
    assert snap["strategy"] == "best_match" and snap["avg_handle_s"] == 180
    (a,) = snap["advisors"]
    assert a["training_expiry"] == {"crisis": 10.0} and a["valid_trainings"] == []
    (c,) = snap["calls"]
    assert c["preferred_advisor"] == "ann" and c["position"] == 1
    assert snap["queues"] == [{"language": "en", "topic": "visa", "waiting": 1,
                               "longest_wait_s": 18.0}]


# -- live edits ----------------------------------------------------------------------


def test_live_edit_removes_a_skill_for_the_next_decision() -> None:
    d = make(adv("ann", {"en": 3, "es": 3}, {"visa": 3}), escalation=STEPS)
    d.set_state("ann", "away", 1)
    d.add_call("c", language="es", topic="visa", now=2)
    d.update_advisor(adv("ann", {"en": 3}, {"visa": 3}), now=3)
    assert d.set_state("ann", AVAILABLE, 4) == [AdvisorChanged("ann", AVAILABLE, None)]
    assert d.waiting_calls() == ["c"]
    assert offers(d.update_advisor(adv("ann", {"en": 3, "es": 1}, {"visa": 3}), now=5)) == []
    assert offers(d.update_advisor(adv("ann", {"es": 3}, {"visa": 4}), now=6)) == \
        [Offer("c", "ann")]


def test_a_direct_transfer_reaches_the_named_advisor_whatever_their_topic_level() -> None:
    # "low" speaks Spanish but lacks the topic; a colleague transfers to them by name.
    d = make(adv("low", {"es": 3}, {"passport": 3}), escalation=STEPS)
    assert d.add_call("plain", language="es", topic="visa", preferred_advisor="low",
                      now=0) == []  # preferred only: skills still count
    assert offers(d.add_call("named", language="es", topic="visa", preferred_advisor="low",
                             direct=True, now=0)) == [Offer("named", "low")]
    # a named advisor who does not speak the caller's language is not offered the call
    d2 = make(adv("dutch", {"nl": 5}, {"visa": 5}), escalation=STEPS)
    assert d2.add_call("c", language="es", topic="visa", preferred_advisor="dutch",
                       direct=True, now=0) == []


def test_a_step_due_while_the_call_rings_is_not_lost_when_the_offer_fails() -> None:
    # Found by the levelled state machine: next_deadline() used to drop the step
    # timer of a ringing call, so after a missed offer the call skipped that step.
    # ann's topic level fits only from the second step; bob fits at once and his
    # phone would ring past that step
    d = make(adv("ann", {"en": 4}, {"visa": 1}), adv("bob", {"en": 3}, {"visa": 3}),
             escalation=STEPS, max_missed=1, offer_timeout_s=60)
    assert offers(d.add_call("c", language="en", topic="visa", now=1)) == [Offer("c", "bob")]
    assert d.next_deadline() is not None
    d.offer_failed("c", 1, reason="no_answer")  # bob goes away
    second = 1 + STEPS["default"][1].after_s
    assert d.next_deadline() == second
    assert offers(d.tick(second)) == [Offer("c", "ann")]


def test_a_consulted_colleague_is_reserved_then_takes_the_call_over() -> None:
    d = make(adv("ann", {"es": 5}, {"visa": 5}), adv("bob", {"es": 4}, {"visa": 4}),
             escalation=STEPS, wrap_up_s=0)
    assert offers(d.add_call("c", language="es", topic="visa", now=1)) == [Offer("c", "ann")]
    d.offer_accepted("c", 1)
    assert d.pick_advisor("es", "visa", 2) == "bob"
    d.reserve_for_consult("bob", "c", 2)
    assert d.pick_advisor("es", "visa", 2) is None
    # a new caller is not offered to bob while he is consulted
    assert d.add_call("d", language="es", topic="visa", now=3) == []
    # ann hands the caller over and is free for the next caller ...
    assert offers(d.call_ended("c", 4)) == [Offer("d", "ann")]
    d.take_over("c", "bob", language="es", topic="visa", now=4)  # ... bob has it
    assert d.advisor_state("bob") is AdvisorState.ON_CALL
    assert d.advisor_call("bob") == "c"
    d.call_ended("c", 10)
    assert d.advisor_state("bob") is AVAILABLE


def test_a_cancelled_consult_frees_the_colleague() -> None:
    d = make(adv("bob", {"es": 4}, {"visa": 4}), escalation=STEPS)
    d.reserve_for_consult("bob", "c", 1)
    assert d.advisor_state("bob") is AdvisorState.RESERVED
    assert d.advisor_reason("bob") == "consult"
    d.add_call("w", language="es", topic="visa", now=2)  # waits: bob is consulted
    assert offers(d.release_consult("bob", 3)) == [Offer("w", "bob")]
    with pytest.raises(ValueError, match="not available"):
        d.reserve_for_consult("bob", "x", 4)

"""The distributor's invariants with everything on: levels, escalation steps,
aging, expiring trainings, preferred advisors, skill edits and clock jumps.

Same random operations as DistributorMachine (plus its invariants); the model
recomputes eligibility independently: the step the wait has reached, trainings
valid at ``now`` (an expiry counts from that very instant), and the hold of a
call for its preferred advisor. Queue order is the aging key
``priority - aging_per_s * enqueued_at`` (higher first), then enqueue time.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, rule

from cti.routing import (
    Action,
    AdvisorProfile,
    AdvisorState,
    Distributor,
    Escalated,
    EscalationStep,
)
from tests.unit.test_distributor import (
    LANGS,
    NAMES,
    TOPICS,
    reserve_sets,
    training_sets,
)
from tests.unit.test_distributor_levels import LevelledMachine

STEPS = (EscalationStep(0, 3, 3), EscalationStep(10, 2, 1), EscalationStep(30, 1, 0, True))
AGING = 0.1  # priority points per second waited: 20 s of wait outrank 2 points
PREFERRED_WAIT = 15.0
levels = st.integers(1, 5)
trainings = st.sampled_from([{}, {"crisis": None}, {"crisis": 10.0}, {"crisis": 30.0}])


def expiring(name: str) -> st.SearchStrategy[AdvisorProfile]:
    return st.builds(
        AdvisorProfile, st.just(name),
        st.dictionaries(st.sampled_from(LANGS), levels, min_size=1),
        st.dictionaries(st.sampled_from(TOPICS), levels, min_size=1),
        trainings,
    )


class AgingMachine(LevelledMachine):
    AGING = AGING

    @initialize(
        profiles=st.tuples(*(expiring(n) for n in NAMES)),
        wrap_up=st.sampled_from([0.0, 5.0, {"default": 2.0, "emergency": 8.0}]),
        max_missed=st.integers(1, 3),
        strategy=st.sampled_from(["best_match", "longest_idle", "least_talk_time",
                                  "round_robin"]),
    )
    def setup(  # type: ignore[override]
        self, profiles: tuple[AdvisorProfile, ...], wrap_up: float, max_missed: int,
        strategy: str,
    ) -> None:
        self.profiles = {p.name: p for p in profiles}
        self.preferred: dict[str, str | None] = {}
        self.escalations: set[tuple[str, int]] = set()
        self.dist = Distributor(
            profiles, offer_timeout_s=10.0, wrap_up_s=wrap_up, max_missed=max_missed,
            escalation={"default": STEPS}, aging_per_s=AGING, strategy=strategy,
            preferred_wait_s=PREFERRED_WAIT,
        )

    # -- the model's rule ---------------------------------------------------

    def skills_fit(self, name: str, call_id: str) -> bool:
        language, topic, _ = self.live[call_id]
        step = [s for s in STEPS if s.after_s <= self.now - self.enqueued[call_id]][-1]
        p = self.profiles[name]
        lang_ok = p.languages.get(language, 0) >= step.min_language
        topic_ok = step.min_topic == 0 or p.topics.get(topic, 0) >= step.min_topic
        valid = {t for t, exp in p.trainings.items() if exp is None or self.now < exp}
        needed = self.trainings[call_id] | ({"crisis"} if topic == "emergency" else set())
        return lang_ok and topic_ok and needed <= valid

    def held(self, name: str, call_id: str) -> bool:
        """Kept for its preferred advisor (the reserve pool included)."""
        pref = self.preferred.get(call_id)
        return (
            pref is not None and pref != name
            and self.now < self.enqueued[call_id] + PREFERRED_WAIT
            and self.dist.advisor_state(pref) is not AdvisorState.LOGGED_OUT
            and self.skills_fit(pref, call_id)
        )

    def check_actions(self, before: dict, actions: list[Action]) -> None:
        super().check_actions(before, actions)
        for action in actions:
            if isinstance(action, Escalated):
                key = (action.call_id, action.step)
                assert key not in self.escalations, f"escalated twice: {key}"
                self.escalations.add(key)
                assert STEPS[action.step].escalate
                enqueued = self.enqueued[action.call_id]
                assert self.now - enqueued >= STEPS[action.step].after_s

    # -- extra rules ----------------------------------------------------------

    @rule(
        language=st.sampled_from(LANGS), topic=st.sampled_from(TOPICS),
        priority=st.integers(0, 2), trainings=training_sets, reserve=reserve_sets,
        at_head=st.booleans(), preferred=st.sampled_from([None, *NAMES]),
    )
    def add_call(  # type: ignore[override]
        self, language: str, topic: str, priority: int, trainings: frozenset[str],
        reserve: frozenset[str], at_head: bool, preferred: str | None,
    ) -> None:
        # The model must know the preference before the call is routed.
        self.preferred[f"c{self.peek_id()}"] = preferred
        self.new_call(language, topic, priority, trainings, reserve, at_head,
                      preferred_advisor=preferred)

    @rule(dt=st.sampled_from([1.0, 7.0, 15.0, 100.0]))
    def clock_jump(self, dt: float) -> None:
        """Time passes without a tick (no timer fired), then the tick catches up."""
        self.now += dt
        self.settled = False
        self.apply(lambda: self.dist.tick(self.now), settles=True)

    @rule(data=st.data())
    def edit_skills(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(NAMES))
        profile = data.draw(expiring(name))
        self.profiles[name] = profile
        self.apply(lambda: self.dist.update_advisor(profile, self.now), settles=True)

    @invariant()
    def escalated_steps_are_known(self) -> None:
        view = {c["call_id"]: c for c in self.view()["calls"]}
        for call_id, step in self.escalations:
            if call_id in view:
                assert step in view[call_id]["escalated"]


AgingMachine.TestCase.settings = settings(
    max_examples=120, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestAgingInvariants = AgingMachine.TestCase

"""The distributor's invariants again, with skill levels and escalation steps over time.

Same random operations as DistributorMachine; eligibility now depends on levels
and on the step the call's wait has reached, written here independently.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant

from cti.routing import AdvisorProfile, AdvisorState, Distributor, EscalationStep
from tests.unit.test_distributor import LANGS, NAMES, TOPICS, DistributorMachine

STEPS = (EscalationStep(0, 3, 3), EscalationStep(10, 2, 1), EscalationStep(30, 1, 0, True))
levels = st.integers(1, 5)


def levelled(name: str) -> st.SearchStrategy[AdvisorProfile]:
    return st.builds(
        AdvisorProfile, st.just(name),
        st.dictionaries(st.sampled_from(LANGS), levels, min_size=1),
        st.dictionaries(st.sampled_from(TOPICS), levels, min_size=1),
        st.sampled_from([{}, {"crisis": None}]),
    )


class LevelledMachine(DistributorMachine):
    @initialize(
        profiles=st.tuples(*(levelled(n) for n in NAMES)),
        wrap_up=st.sampled_from([0.0, 5.0]),
        max_missed=st.integers(1, 3),
    )
    def setup(self, profiles: tuple[AdvisorProfile, ...], wrap_up: float, max_missed: int) -> None:
        self.profiles = {p.name: p for p in profiles}
        self.dist = Distributor(profiles, offer_timeout_s=10.0, wrap_up_s=wrap_up,
                                max_missed=max_missed, escalation={"default": STEPS})

    def skills_fit(self, name: str, call_id: str) -> bool:
        language, topic, _ = self.live[call_id]
        step = [s for s in STEPS if s.after_s <= self.now - self.enqueued[call_id]][-1]
        p = self.profiles[name]
        lang_ok = p.languages.get(language, 0) >= step.min_language
        topic_ok = step.min_topic == 0 or p.topics.get(topic, 0) >= step.min_topic
        needed = self.trainings[call_id] | ({"crisis"} if topic == "emergency" else set())
        return lang_ok and topic_ok and needed <= set(p.trainings)

    @invariant()
    def deadlines_are_consistent(self) -> None:
        busy = self.calls_with("offered") or any(
            self.dist.advisor_state(n) is AdvisorState.WRAP_UP for n in NAMES)
        if busy:
            assert self.dist.next_deadline() is not None


LevelledMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLevelledInvariants = LevelledMachine.TestCase

"""The distributor's internal records of one call and one advisor (mutable)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cti.routing.eligibility import step_index
from cti.routing.model import AdvisorProfile, AdvisorState, CallStatus, EscalationStep, Requirements


@dataclass
class _Call:
    call_id: str
    requirements: Requirements
    priority: int
    enqueued_at: float
    seq: int
    key: tuple[float, float, int]
    steps: Sequence[EscalationStep]
    preferred: str | None = None
    preferred_until: float = 0.0
    # A colleague transferred the call to ``preferred`` by name: their language is
    # enough, topic levels and trainings do not hold them back.
    direct: bool = False
    # Put at the head of the queue (add_call(at_head=True)): a new priority keeps it there.
    head: bool = False
    status: CallStatus = CallStatus.WAITING
    advisor: str | None = None
    offer_deadline: float | None = None
    accepted_at: float | None = None
    last_failed_by: str | None = None
    escalated: set[int] = field(default_factory=set)

    @property
    def bucket(self) -> tuple[str, str]:
        return (self.requirements.language, self.requirements.topic)

    def step(self, now: float) -> tuple[int, EscalationStep]:
        i = step_index(self.steps, now - self.enqueued_at)
        return i, self.steps[i]


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
    wrap_call: str | None = None  # the call whose wrap-up runs until wrap_until
    talk_s: float = 0.0  # talk time "today" (reset_day)
    last_offer: int = -1  # round robin
    pending: tuple[AdvisorState, str | None] | None = None
    phone_offline: bool = False  # no registered contact: never AVAILABLE (set_phone)

    @property
    def name(self) -> str:
        return self.profile.name

"""Pure skills-based distributor (no I/O, no asyncio)."""

from cti.routing.distributor import STRATEGIES, Distributor
from cti.routing.eligibility import (
    is_eligible,
    match_score,
    reserve_fit,
    skill_gap,
    step_index,
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

RoutingAction = Action

__all__ = [
    "DEFAULT_STEPS",
    "DEFAULT_TOPIC_TRAININGS",
    "PHONE_OFFLINE",
    "SETTABLE_STATES",
    "STRATEGIES",
    "Action",
    "AdvisorChanged",
    "AdvisorProfile",
    "AdvisorState",
    "CallStatus",
    "Distributor",
    "EscalationStep",
    "Escalated",
    "Offer",
    "OfferRevoked",
    "Requirements",
    "RoutingAction",
    "WrapUpExpired",
    "is_eligible",
    "match_score",
    "reserve_fit",
    "skill_gap",
    "step_index",
]

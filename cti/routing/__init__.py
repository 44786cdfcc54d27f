"""Pure skills-based distributor (no I/O, no asyncio)."""

from cti.routing.distributor import (
    DEFAULT_TOPIC_TRAININGS,
    SETTABLE_STATES,
    Action,
    AdvisorChanged,
    AdvisorProfile,
    AdvisorState,
    CallStatus,
    Distributor,
    Offer,
    OfferRevoked,
    Requirements,
    is_eligible,
)

RoutingAction = Action

__all__ = [
    "DEFAULT_TOPIC_TRAININGS",
    "SETTABLE_STATES",
    "Action",
    "AdvisorChanged",
    "AdvisorProfile",
    "AdvisorState",
    "CallStatus",
    "Distributor",
    "Offer",
    "OfferRevoked",
    "Requirements",
    "RoutingAction",
    "is_eligible",
]

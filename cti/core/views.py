"""Read-only views of the controller's state, for plugins, the API and tests.

A view is a frozen copy taken at one moment: a plugin may keep it, but it does
not change when the call does (ask ``services.calls.get(call_id)`` again). The
controller's own mutable objects never leave it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

#: Kinds of work the distributor routes: "inbound" (a caller), "callback" and
#: "outbound" (the gateway calls the customer: call backs, campaigns); later "chat".
WorkKind = str


def frozen_mapping(d: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only copy (a view's flags do not change with the call's)."""
    return MappingProxyType(dict(d))


@dataclass(frozen=True)
class CallView:
    """One customer call as a plugin sees it.

    ``state``: incoming → ivr → queued → offered → connected → ended; from the IVR
    or a transfer also transferring → transferred. Times are unix seconds.
    """

    call_id: str
    kind: WorkKind
    state: str
    caller_number: str
    caller_country: str | None
    #: The caller's IANA time zone when their number has one (None: several, unknown).
    caller_timezone: str | None
    dialled: str
    language: str | None
    topic: str | None
    priority: int
    trainings: frozenset[str]
    reserve: frozenset[str]
    flags: Mapping[str, Any]
    ivr_path: tuple[str, ...]
    advisor: str | None
    worker: str
    held: bool
    started_at: float
    queued_at: float | None
    answered_at: float | None
    ended_at: float | None
    end_reason: str | None
    #: Work that calls the customer out (call back, campaign): when they picked up,
    #: and the SIP status their leg ended with (404: no such number, 486: busy ...).
    reached_at: float | None = None
    customer_end_code: int | None = None

    def waited_s(self, now: float) -> float:
        """Seconds waited for an advisor (until answered, else until ``now``)."""
        start = self.queued_at or self.started_at
        end = self.answered_at or now
        return round(max(0.0, end - start), 1)


@dataclass(frozen=True)
class AdvisorView:
    """An advisor: state (available, reserved, on_call, wrap_up, away, logged_out),
    skills with levels, trainings, and the call they hold if any."""

    name: str
    display_name: str
    state: str
    reason: str | None
    call_id: str | None
    languages: Mapping[str, int]
    topics: Mapping[str, int]
    trainings: frozenset[str]


@dataclass(frozen=True)
class QueueView:
    """Calls waiting for an advisor, best first (priority, then waiting time)."""

    waiting: tuple[CallView, ...] = field(default=())

    def by_topic(self, topic: str) -> tuple[CallView, ...]:
        return tuple(c for c in self.waiting if c.topic == topic)

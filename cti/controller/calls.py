"""Customer calls as the controller sees them, keyed by our own UUID."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from cti.core.numbers import country_of, zones_of
from cti.core.views import CallView, frozen_mapping
from cti.store.db import CallRecord

_URI_USER = re.compile(r"sips?:([^@;>]+)@", re.IGNORECASE)


def sip_user(header_value: str) -> str:
    """The user part of a From/To header or URI ('' if there is none)."""
    m = _URI_USER.search(header_value or "")
    return m.group(1) if m else ""


def caller_country(number: str) -> str | None:
    """ISO country of an E.164-ish number ('+34…' or '0034…'), None if unknown."""
    return country_of(number)


def caller_timezone(number: str) -> str | None:
    """The IANA time zone of a number, when its country or area has exactly one
    (several zones, the US or Russia: the caller's local time is not known)."""
    zones = zones_of(number)
    return zones[0] if len(zones) == 1 else None


def local_time(zone: str | None, now: float) -> str | None:
    """``now`` in ``zone`` as ISO 8601 with its offset (e.g. 2026-11-29T14:05+03:00)."""
    if zone is None:
        return None
    return datetime.fromtimestamp(now, ZoneInfo(zone)).isoformat(timespec="minutes")


@dataclass
class Leg:
    leg_id: str
    worker: str
    # customer | advisor | external | consult_advisor | consult_target | join | join_in
    # | monitor (a supervisor's or coach's phone: cti.controller.monitor)
    role: str
    peer: str  # number or advisor name
    state: str = "new"
    sip_call_id: str | None = None  # as the worker saw it; lets the edge end the dialog
    created_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    end_code: int | None = None
    # The worker's RTP figures as the leg ended (cti/controller/quality.py).
    quality: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "leg": self.leg_id, "worker": self.worker, "role": self.role, "peer": self.peer,
            "state": self.state, "sip_call_id": self.sip_call_id, "created_at": self.created_at, "ended_at": self.ended_at,
            "end_code": self.end_code, "quality": self.quality,
        }


@dataclass
class Call:
    """One customer call: the customer leg, and the advisor legs tried or bridged."""

    worker: str
    customer: Leg
    caller_number: str
    dialled: str
    call_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    caller_country: str | None = None
    # incoming → ivr → queued → offered → connected → ended; from the IVR also
    # transferring → transferred (to a directory entry) → ended
    state: str = "incoming"
    language: str | None = None
    topic: str | None = None
    ivr_path: list[str] = field(default_factory=list)
    priority: int = 0
    # Beyond language and topic (plugins, cti_call_routing): trainings needed and
    # the advisors who may take the call without its skills.
    trainings: set[str] = field(default_factory=set)
    reserve: set[str] = field(default_factory=set)
    # The kind of work: "inbound" (a caller), "callback" or "outbound" (the gateway
    # calls the customer out: cti.controller.callback); later "chat".
    kind: str = "inbound"
    flags: dict[str, Any] = field(default_factory=dict)
    advisor: str | None = None
    advisor_leg: Leg | None = None
    external_leg: Leg | None = None  # a transfer target (IVR or blind transfer)
    held: bool = False  # the advisor put the caller on hold (music)
    held_at: float | None = None  # since when (while held)
    consult: Any = None  # cti.controller.consult.Consult while one runs
    transfer_by: str | None = None  # who transferred the call (advisor, supervisor)
    # If a blind transfer is not answered: back in the queue where the caller was
    # ("queue"), at its head ("queue_head", a plugin's overflow) or hang up.
    transfer_fallback: str = "queue"
    accepted_in_client_at: float | None = None  # "accept" pressed in a CTI client
    hold_play_id: str | None = None  # the "please hold" prompt; music follows it
    # A plugin's announcement the bridge to the advisor waits for (recording consent).
    bridge_after_play: str | None = None
    announcements: int = 0
    offer_id: int | None = None  # the open offer's row in the store (decision trace)
    legs: list[Leg] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    queued_at: float | None = None
    offered_at: float | None = None
    answered_at: float | None = None
    # A call back: the call it was asked in, and when the customer picked up.
    origin_call_id: str | None = None
    reached_at: float | None = None
    greeting: tuple[str, ...] = ()  # a call back: prompt keys played before the bridge
    ended_at: float | None = None
    end_reason: str | None = None

    def __post_init__(self) -> None:
        self.legs.append(self.customer)
        if self.caller_country is None:
            self.caller_country = caller_country(self.caller_number)

    def waited_s(self, now: float | None = None) -> float:
        start = self.queued_at or self.started_at
        end = self.answered_at or now or time.time()
        return round(max(0.0, end - start), 1)

    def to_record(self) -> CallRecord:
        return CallRecord(
            call_id=self.call_id, started_at=self.started_at,
            caller_number=self.caller_number, caller_country=self.caller_country,
            dialled=self.dialled, language=self.language, topic=self.topic,
            ivr_path=list(self.ivr_path), priority=self.priority, advisor=self.advisor,
            worker=self.worker, queued_at=self.queued_at, offered_at=self.offered_at,
            answered_at=self.answered_at, ended_at=self.ended_at, end_reason=self.end_reason,
            legs=[leg.as_dict() for leg in self.legs], kind=self.kind,
            origin_call_id=self.origin_call_id,
        )


class CallRegistry:
    """Active calls by call id and by (worker, leg id)."""

    def __init__(self) -> None:
        self._calls: dict[str, Call] = {}
        self._by_leg: dict[tuple[str, str], Call] = {}

    def add(self, call: Call) -> None:
        self._calls[call.call_id] = call
        self.bind_leg(call, call.customer)

    def bind_leg(self, call: Call, leg: Leg) -> None:
        self._by_leg[(leg.worker, leg.leg_id)] = call

    def by_leg(self, worker: str, leg_id: str) -> Call | None:
        return self._by_leg.get((worker, leg_id))

    def get(self, call_id: str) -> Call | None:
        return self._calls.get(call_id)

    def on_worker(self, worker: str) -> list[Call]:
        return [c for c in self._calls.values() if c.worker == worker]

    def place(self, call: Call, worker: str) -> None:
        """Put a call not on a worker yet (a call back) and its legs on ``worker``."""
        for leg in call.legs:
            if not leg.worker:
                self._by_leg.pop((leg.worker, leg.leg_id), None)
                leg.worker = worker
                self.bind_leg(call, leg)
        call.worker = worker

    def remove(self, call: Call) -> None:
        self._calls.pop(call.call_id, None)
        for leg in call.legs:
            self._by_leg.pop((leg.worker, leg.leg_id), None)

    def all(self) -> list[Call]:
        return list(self._calls.values())

    def __len__(self) -> int:
        return len(self._calls)


def call_view(call: Call) -> CallView:
    """A frozen copy of the controller's call."""
    return CallView(
        call_id=call.call_id, kind=call.kind, state=call.state,
        caller_number=call.caller_number, caller_country=call.caller_country,
        caller_timezone=caller_timezone(call.caller_number), dialled=call.dialled,
        language=call.language, topic=call.topic,
        priority=call.priority, trainings=frozenset(call.trainings),
        reserve=frozenset(call.reserve), flags=frozen_mapping(call.flags),
        ivr_path=tuple(call.ivr_path), advisor=call.advisor, worker=call.worker,
        held=call.held, started_at=call.started_at, queued_at=call.queued_at,
        answered_at=call.answered_at, ended_at=call.ended_at, end_reason=call.end_reason,
        reached_at=call.reached_at, customer_end_code=call.customer.end_code,
    )

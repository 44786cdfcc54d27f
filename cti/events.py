"""The one event schema (docs/events.md) and the bus it flows on.

The same event dicts go to in-process listeners (pyee), to plugins (the
`cti_event` hook) and over the WebSocket. Every event gets a sequence number;
the bus keeps the last events so a reconnecting client gets what it missed.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import jsonschema
from pyee.asyncio import AsyncIOEventEmitter

SCHEMA_VERSION = 1

EVENT_TYPES = frozenset(
    {
        "call.incoming",
        "ivr.prompt",
        "ivr.input",
        "ivr.done",
        "ivr.flag",
        "call.queued",
        "call.escalated",
        "call.max_wait",
        "call.transferring",
        "call.transferred",
        "call.transfer_failed",
        "call.held",
        "call.consult",
        "call.wrap_up",
        "call.not_wrapped_up",
        "call.offered",
        "call.connected",
        "call.reached",
        "call.bridged",
        "call.recording",
        "call.monitor",
        "call.quality",
        "call.ended",
        "agent.state",
        "agent.recovery",
    }
)

Event = dict[str, Any]

_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


class EventTypes:
    """The event types a gateway publishes: the core's and those plugins declare.

    A plugin's types come with the JSON schema of their ``data``; the bus refuses
    a type nobody declared, so a typo cannot reach clients unnoticed.
    """

    def __init__(self) -> None:
        self._owner: dict[str, str] = dict.fromkeys(EVENT_TYPES, "core")
        self.schemas: dict[str, dict[str, Any]] = {}

    def declare(self, owner: str, type_: str, schema: dict[str, Any]) -> None:
        if not _TYPE_NAME.match(type_):
            raise ValueError(f"event type {type_!r}: expected dotted lower-case words "
                             "(e.g. 'crisis.started')")
        if type_ in self._owner and self._owner[type_] != owner:
            raise ValueError(f"event type {type_!r} is already declared by "
                             f"{self._owner[type_]}")
        try:  # a broken schema is the plugin's bug: say so at start, not at publish
            jsonschema.Draft202012Validator.check_schema(dict(schema))
        except jsonschema.SchemaError as e:
            raise ValueError(f"event type {type_!r}: not a valid JSON schema: {e.message}"
                             ) from None
        self._owner[type_] = owner
        self.schemas[type_] = dict(schema)

    def owner(self, type_: str) -> str | None:
        return self._owner.get(type_)

    def __contains__(self, type_: object) -> bool:
        return type_ in self._owner

    def of(self, owner: str) -> list[str]:
        return sorted(t for t, o in self._owner.items() if o == owner)


def make_event(
    type_: str,
    data: dict[str, Any],
    *,
    call_id: str | None = None,
    advisor: str | None = None,
) -> Event:
    """Build an event without its sequence number (the bus assigns it; it also
    checks the type is declared)."""
    return {
        "v": SCHEMA_VERSION,
        "seq": 0,
        "type": type_,
        "ts": round(time.time(), 3),
        "call_id": call_id,
        "advisor": advisor,
        "data": data,
    }


def visible_to(event: Event, user: str, role: str) -> bool:
    """Advisors see their own events; supervisors and admins see everything."""
    return role in ("supervisor", "admin") or event.get("advisor") == user


class EventBus:
    """Numbered events, a replay buffer, pyee for in-process listeners.

    The replay buffer holds what a client that lost its WebSocket for a moment
    needs to catch up: at most ``replay`` events and none older than
    ``replay_s`` seconds (a client gone longer reloads its snapshot; it says so
    from ``replay_complete``). The age bound keeps a quiet gateway from carrying
    thousands of stale events, the count bound keeps a crisis from growing it.
    """

    def __init__(self, replay: int = 10_000, types: EventTypes | None = None, *,
                 replay_s: float = 300.0, clock: Callable[[], float] = time.time) -> None:
        self.types = types or EventTypes()
        self._seq = 0
        self._recent: deque[Event] = deque(maxlen=replay)
        self._replay_s = replay_s
        self._clock = clock
        self.emitter = AsyncIOEventEmitter()
        self._subscribers: set[Callable[[Event], None]] = set()

    @property
    def last_seq(self) -> int:
        return self._seq

    def publish(self, event: Event) -> Event:
        if event["type"] not in self.types:
            raise ValueError(f"unknown event type {event['type']!r}")
        self._seq += 1
        event["seq"] = self._seq
        self._forget_old()
        self._recent.append(event)
        for sub in list(self._subscribers):
            sub(event)
        self.emitter.emit(event["type"], event)
        self.emitter.emit("event", event)
        return event

    def since(self, seq: int) -> list[Event]:
        """Events after `seq` still in the buffer, oldest first."""
        self._forget_old()
        if not self._recent:
            return []
        # Numbers in the buffer are consecutive: slice instead of scanning it all.
        skip = max(0, seq - self._recent[0]["seq"] + 1)
        return list(itertools.islice(self._recent, skip, None))

    def oldest_seq(self) -> int:
        self._forget_old()
        return self._recent[0]["seq"] if self._recent else self._seq + 1

    def _forget_old(self) -> None:
        oldest = self._clock() - self._replay_s
        while self._recent and self._recent[0].get("ts", oldest) < oldest:
            self._recent.popleft()

    def subscribe(self, fn: Callable[[Event], None]) -> Callable[[], None]:
        """Call fn synchronously for every event; returns the unsubscribe function."""
        self._subscribers.add(fn)
        return lambda: self._subscribers.discard(fn)

    async def wait_for(
        self, predicate: Callable[[Event], bool], timeout: float
    ) -> Event:
        """Wait for the next event matching predicate (used by tests and flows)."""
        fut: asyncio.Future[Event] = asyncio.get_running_loop().create_future()

        def check(ev: Event) -> None:
            if not fut.done() and predicate(ev):
                fut.set_result(ev)

        unsub = self.subscribe(check)
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            unsub()

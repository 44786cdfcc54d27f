"""The callbacks plugin's tables: every request (one pending per number) and its
attempts. Durable: pending requests survive a restart of cti serve."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cti.plugins.api import Migration, PluginStore

MIGRATIONS = (
    Migration(1, """
        CREATE TABLE {prefix}requests (
            callback_id    INTEGER PRIMARY KEY AUTOINCREMENT,
            number         TEXT NOT NULL,
            status         TEXT NOT NULL,      -- scheduled, queued, connected, unreached, cancelled
            language       TEXT NOT NULL,
            topic          TEXT NOT NULL,
            priority       INTEGER NOT NULL DEFAULT 0,
            trainings      TEXT NOT NULL DEFAULT '[]',
            reserve        TEXT NOT NULL DEFAULT '[]',
            ivr_path       TEXT NOT NULL DEFAULT '[]',
            dialled        TEXT NOT NULL DEFAULT '',
            enqueued_at    REAL NOT NULL,      -- the original caller's place in time
            requested_at   REAL NOT NULL,
            due_at         REAL NOT NULL,      -- when it is (next) tried
            zone           TEXT NOT NULL,      -- the callee's IANA zone
            attempts       INTEGER NOT NULL DEFAULT 0,
            call_id        TEXT,               -- the call back queued now (status queued)
            origin_call_id TEXT,
            advisor        TEXT,               -- the advisor of the last attempt
            updated_at     REAL NOT NULL
        )"""),
    Migration(2, "CREATE INDEX {prefix}requests_pending ON {prefix}requests (status, number)"),
    Migration(3, """
        CREATE TABLE {prefix}attempts (
            callback_id INTEGER NOT NULL,
            call_id     TEXT NOT NULL PRIMARY KEY,
            advisor     TEXT,
            ended_at    REAL NOT NULL,
            end_reason  TEXT NOT NULL
        )"""),
    Migration(4, "CREATE INDEX {prefix}attempts_advisor ON {prefix}attempts (advisor)"),
)

PENDING = ("scheduled", "queued")


@dataclass
class Request:
    """A call back request."""

    callback_id: int
    number: str
    status: str
    language: str
    topic: str
    priority: int
    enqueued_at: float
    requested_at: float
    due_at: float
    zone: str
    updated_at: float
    trainings: list[str] = field(default_factory=list)
    reserve: list[str] = field(default_factory=list)
    ivr_path: list[str] = field(default_factory=list)
    dialled: str = ""
    attempts: int = 0
    call_id: str | None = None
    origin_call_id: str | None = None
    advisor: str | None = None

    @property
    def pending(self) -> bool:
        return self.status in PENDING

    def out(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in (
            "callback_id", "number", "status", "language", "topic", "priority",
            "enqueued_at", "requested_at", "due_at", "zone", "attempts", "call_id",
            "origin_call_id", "advisor", "updated_at")}


_COLUMNS = ("number", "status", "language", "topic", "priority", "trainings", "reserve",
            "ivr_path", "dialled", "enqueued_at", "requested_at", "due_at", "zone",
            "attempts", "call_id", "origin_call_id", "advisor", "updated_at")
_JSON = ("trainings", "reserve", "ivr_path")
#: The order of pending call backs: the distributor's (priority, then place in time).
ORDER = "priority DESC, enqueued_at ASC, callback_id ASC"


class RequestRepository:
    def __init__(self, store: PluginStore) -> None:
        self._store = store
        self._t = f"{store.prefix}requests"
        self._a = f"{store.prefix}attempts"

    def _values(self, r: Request) -> list[Any]:
        return [json.dumps(getattr(r, c)) if c in _JSON else getattr(r, c) for c in _COLUMNS]

    async def add(self, r: Request) -> int:
        marks = ", ".join("?" for _ in _COLUMNS)
        r.callback_id = await self._store.write(
            f"INSERT INTO {self._t} ({', '.join(_COLUMNS)}) VALUES ({marks})", self._values(r))
        return r.callback_id

    async def save(self, r: Request) -> None:
        sets = ", ".join(f"{c} = ?" for c in _COLUMNS)
        await self._store.write(f"UPDATE {self._t} SET {sets} WHERE callback_id = ?",
                                [*self._values(r), r.callback_id])

    async def attempt(self, callback_id: int, call_id: str, advisor: str | None,
                      ended_at: float, end_reason: str) -> None:
        await self._store.write(
            f"INSERT OR REPLACE INTO {self._a} (callback_id, call_id, advisor, ended_at, "
            "end_reason) VALUES (?, ?, ?, ?, ?)",
            (callback_id, call_id, advisor, ended_at, end_reason))

    def get(self, callback_id: int) -> Request | None:
        rows = self._store.query(f"SELECT * FROM {self._t} WHERE callback_id = ?",
                                 (callback_id,))
        return _request(rows[0]) if rows else None

    def pending_for(self, number: str) -> Request | None:
        rows = self._store.query(
            f"SELECT * FROM {self._t} WHERE status IN (?, ?) AND number = ? "
            "ORDER BY callback_id LIMIT 1", (*PENDING, number))
        return _request(rows[0]) if rows else None

    def pending(self) -> list[Request]:
        """Every pending request, in the order they are served."""
        rows = self._store.query(
            f"SELECT * FROM {self._t} WHERE status IN (?, ?) ORDER BY {ORDER}", PENDING)
        return [_request(r) for r in rows]

    def recent(self, limit: int = 200) -> list[Request]:
        """Pending ones first (in order), then the latest finished ones."""
        done = self._store.query(
            f"SELECT * FROM {self._t} WHERE status NOT IN (?, ?) "
            "ORDER BY updated_at DESC LIMIT ?", (*PENDING, limit))
        return [*self.pending(), *(_request(r) for r in done)]

    def of_advisor(self, advisor: str, limit: int = 100) -> list[Request]:
        """Requests an advisor took an attempt of (or is taking now), latest first."""
        rows = self._store.query(
            f"SELECT * FROM {self._t} WHERE advisor = ? OR callback_id IN "
            f"(SELECT callback_id FROM {self._a} WHERE advisor = ?) "
            "ORDER BY updated_at DESC LIMIT ?", (advisor, advisor, limit))
        return [_request(r) for r in rows]


    def stats(self, since: float) -> dict[str, Any]:
        """The wallboard's counts, in one pass: pending (scheduled + queued) now, those
        finished (connected, unreached, cancelled) since ``since``, and the earliest
        due time of the scheduled ones (None: none is scheduled)."""
        [row] = self._store.query(
            "SELECT COALESCE(SUM(status = 'scheduled'), 0) AS scheduled, "
            "COALESCE(SUM(status = 'queued'), 0) AS queued, "
            "COALESCE(SUM(status = 'connected' AND updated_at >= ?), 0) AS connected_today, "
            "COALESCE(SUM(status = 'unreached' AND updated_at >= ?), 0) AS unreached_today, "
            "COALESCE(SUM(status = 'cancelled' AND updated_at >= ?), 0) AS cancelled_today, "
            "MIN(CASE WHEN status = 'scheduled' THEN due_at END) AS next_due_at "
            f"FROM {self._t}", (since, since, since))
        out = {k: int(row[k]) for k in ("scheduled", "queued", "connected_today",
                                        "unreached_today", "cancelled_today")}
        return {"pending": out["scheduled"] + out["queued"], **out,
                "next_due_at": row["next_due_at"]}


def _request(row: dict[str, Any]) -> Request:
    values = {c: json.loads(row[c]) if c in _JSON else row[c] for c in _COLUMNS}
    return Request(callback_id=row["callback_id"], **values)

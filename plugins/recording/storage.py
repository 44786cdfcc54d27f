"""The recording plugin's index: one row per recorded (or declined) call, with what
is needed to find, check and purge its file. Files live under the plugin's
``directory`` (the row holds the path relative to it)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cti.plugins.api import Migration, PluginStore

MIGRATIONS = (
    Migration(1, """
        CREATE TABLE {prefix}recordings (
            recording_id INTEGER PRIMARY KEY AUTOINCREMENT,
            call_id      TEXT NOT NULL UNIQUE,
            status       TEXT NOT NULL,   -- recording, done, failed, declined
            consent      TEXT NOT NULL,   -- announced, declined, not_asked
            advisors     TEXT NOT NULL DEFAULT '[]',
            topic        TEXT,
            language     TEXT,
            caller_number TEXT NOT NULL DEFAULT '',
            dialled      TEXT NOT NULL DEFAULT '',
            started_at   REAL NOT NULL,
            duration_s   REAL,
            size         INTEGER,
            sha256       TEXT,
            path         TEXT,            -- relative to the recordings directory
            paused       TEXT NOT NULL DEFAULT '[]',   -- [[start_s, end_s], ...] into the file
            held         INTEGER NOT NULL DEFAULT 0,   -- kept past its retention (a complaint)
            held_reason  TEXT,
            expires_at   REAL,            -- the retention's end (topic's days)
            error        TEXT,
            updated_at   REAL NOT NULL
        )"""),
    Migration(2, "CREATE INDEX {prefix}recordings_started ON {prefix}recordings (started_at)"),
    Migration(3, "CREATE INDEX {prefix}recordings_expiry ON {prefix}recordings "
                 "(expires_at, held)"),
)

STATUSES = ("recording", "done", "failed", "declined")
_JSON = ("advisors", "paused")


@dataclass
class Recording:
    recording_id: int
    call_id: str
    status: str
    consent: str
    started_at: float
    updated_at: float
    advisors: list[str] = field(default_factory=list)
    topic: str | None = None
    language: str | None = None
    caller_number: str = ""
    dialled: str = ""
    duration_s: float | None = None
    size: int | None = None
    sha256: str | None = None
    path: str | None = None
    paused: list[list[float]] = field(default_factory=list)
    held: bool = False
    held_reason: str | None = None
    expires_at: float | None = None
    error: str | None = None

    def out(self) -> dict[str, Any]:
        return dict(self.__dict__)


_COLUMNS = ("call_id", "status", "consent", "advisors", "topic", "language", "caller_number",
            "dialled", "started_at", "duration_s", "size", "sha256", "path", "paused", "held",
            "held_reason", "expires_at", "error", "updated_at")


@dataclass(frozen=True)
class Search:
    """Filters of a search (None: any); newest first."""

    advisor: str | None = None
    topic: str | None = None
    number: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 100


class RecordingRepository:
    def __init__(self, store: PluginStore) -> None:
        self._store = store
        self._t = f"{store.prefix}recordings"

    def _values(self, r: Recording) -> list[Any]:
        return [json.dumps(getattr(r, c)) if c in _JSON else
                int(r.held) if c == "held" else getattr(r, c) for c in _COLUMNS]

    async def add(self, r: Recording) -> int:
        r.recording_id = await self._store.write(
            f"INSERT INTO {self._t} ({', '.join(_COLUMNS)}) VALUES "
            f"({', '.join('?' for _ in _COLUMNS)})", self._values(r))
        return r.recording_id

    async def save(self, r: Recording) -> None:
        await self._store.write(
            f"UPDATE {self._t} SET {', '.join(f'{c} = ?' for c in _COLUMNS)} "
            "WHERE recording_id = ?", [*self._values(r), r.recording_id])

    async def delete(self, recording_id: int) -> int:
        return await self._store.write(f"DELETE FROM {self._t} WHERE recording_id = ?",
                                       (recording_id,))

    def get(self, recording_id: int) -> Recording | None:
        rows = self._store.query(f"SELECT * FROM {self._t} WHERE recording_id = ?",
                                 (recording_id,))
        return _recording(rows[0]) if rows else None

    def by_call(self, call_id: str) -> Recording | None:
        rows = self._store.query(f"SELECT * FROM {self._t} WHERE call_id = ?", (call_id,))
        return _recording(rows[0]) if rows else None

    def search(self, q: Search) -> list[Recording]:
        """Finished recordings (declined and failed ones too: they say why there is
        no file), newest first."""
        where: list[str] = ["status != 'recording'"]
        args: list[Any] = []
        if q.advisor:
            # Not json_each: the store's SQL fence refuses table-valued functions. A
            # name has no quotes (NAME_RE), so its JSON string is one whole element.
            where.append("instr(advisors, ?) > 0")
            args.append(json.dumps(q.advisor))
        for column, value in (("topic", q.topic), ("caller_number", q.number)):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        if q.since is not None:
            where.append("started_at >= ?")
            args.append(q.since)
        if q.until is not None:
            where.append("started_at < ?")
            args.append(q.until)
        rows = self._store.query(
            f"SELECT * FROM {self._t} WHERE {' AND '.join(where)} "
            "ORDER BY started_at DESC LIMIT ?", (*args, q.limit))
        return [_recording(r) for r in rows]

    def expired(self, now: float) -> list[Recording]:
        """Rows whose retention has ended and that are not held."""
        rows = self._store.query(
            f"SELECT * FROM {self._t} WHERE expires_at IS NOT NULL AND expires_at <= ? "
            "AND held = 0 AND status != 'recording' ORDER BY expires_at", (now,))
        return [_recording(r) for r in rows]

    def in_progress(self) -> list[Recording]:
        rows = self._store.query(f"SELECT * FROM {self._t} WHERE status = 'recording'")
        return [_recording(r) for r in rows]


def _recording(row: dict[str, Any]) -> Recording:
    values = {c: json.loads(row[c]) if c in _JSON else row[c] for c in _COLUMNS}
    values["held"] = bool(values["held"])
    return Recording(recording_id=row["recording_id"], **values)

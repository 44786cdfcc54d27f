"""SQLite store (WAL): call records, and (through its repositories) the state that
survives a restart. Durable before acknowledged: every write goes through the one
writer thread (cti/store/writer.py) and is committed with synchronous=FULL
before its method returns. Reads use their own connection on the caller's thread.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cti.store.advisors import AdvisorsRepo
from cti.store.audit import AuditLog
from cti.store.flags import FlagsRepo
from cti.store.migrations import STATE_SCHEMA, Migration, migrate_core
from cti.store.sessions import AdvisorStatesRepo, SessionsRepo
from cti.store.skills import SkillsRepo
from cti.store.spool import Spool, Write, replay_journal
from cti.store.sql_fence import guarded
from cti.store.timers import TimersRepo
from cti.store.writer import Writer

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_id        TEXT PRIMARY KEY,
    caller_number  TEXT,
    caller_country TEXT,
    dialled        TEXT,
    language       TEXT,
    topic          TEXT,
    ivr_path       TEXT NOT NULL DEFAULT '[]',
    priority       INTEGER NOT NULL DEFAULT 0,
    advisor        TEXT,
    worker         TEXT,
    started_at     REAL NOT NULL,
    queued_at      REAL,
    offered_at     REAL,
    answered_at    REAL,
    ended_at       REAL,
    end_reason     TEXT,
    legs           TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS calls_started ON calls(started_at);
CREATE INDEX IF NOT EXISTS calls_advisor ON calls(advisor, started_at);
CREATE INDEX IF NOT EXISTS calls_number ON calls(caller_number, started_at);
CREATE TABLE IF NOT EXISTS offers (
    offer_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id     TEXT NOT NULL,
    advisor     TEXT NOT NULL,
    offered_at  REAL NOT NULL,
    outcome     TEXT,            -- accepted, no_answer, rejected, unreachable, revoked, ...
    outcome_at  REAL,
    trace       TEXT NOT NULL    -- the distributor's decision trace (JSON)
);
CREATE INDEX IF NOT EXISTS offers_call ON offers(call_id, offer_id);
CREATE TABLE IF NOT EXISTS wrap_ups (
    call_id  TEXT NOT NULL,
    advisor  TEXT NOT NULL,       -- each advisor who talked to the caller wraps up
    code     TEXT NOT NULL,
    note     TEXT NOT NULL DEFAULT '',
    at       REAL NOT NULL,
    PRIMARY KEY (call_id, advisor)
);
-- The latest wrap-up of each call (SQLite returns the row of the MAX).
CREATE VIEW IF NOT EXISTS last_wrap_ups AS
    SELECT call_id, advisor, code, note, MAX(at) AS at FROM wrap_ups GROUP BY call_id;
"""

#: The core schema, one step per version (PRAGMA user_version). Append, never edit:
#: a database made by an older cti is brought up to date by the steps it lacks.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, SCHEMA),
    Migration(2, STATE_SCHEMA),
    # The kind of work (a call back is its own record) and the call it came from.
    Migration(3, """
        ALTER TABLE calls ADD COLUMN kind TEXT NOT NULL DEFAULT 'inbound';
        ALTER TABLE calls ADD COLUMN origin_call_id TEXT;
        CREATE INDEX IF NOT EXISTS calls_origin ON calls(origin_call_id);
    """),
    # A call's row is written when it starts: the ones a restart finds without an
    # end (the controller died during them) are closed at start (close_unended).
    Migration(4, """
        CREATE INDEX IF NOT EXISTS calls_unended ON calls(call_id) WHERE ended_at IS NULL;
    """),
    # A restart keeps the floor: login sessions (hashed tokens) and advisors' states.
    Migration(5, """
        CREATE TABLE sessions (
            token_hash  TEXT PRIMARY KEY,
            user        TEXT NOT NULL,
            role        TEXT NOT NULL,
            expires_at  REAL NOT NULL
        );
        CREATE TABLE advisor_states (
            advisor  TEXT PRIMARY KEY,
            state    TEXT NOT NULL,
            reason   TEXT,
            at       REAL NOT NULL
        );
    """),
    # Advisors managed through the admin API (over the config's seed); a NULL
    # record: removed through the API. seq keeps the order they were added in.
    Migration(6, """
        CREATE TABLE advisors (
            seq     INTEGER PRIMARY KEY AUTOINCREMENT,
            name    TEXT NOT NULL UNIQUE,
            record  TEXT,
            by      TEXT,
            at      REAL NOT NULL
        );
    """),
)

#: The end_reason of a call the controller died during (closed at the next start).
RESTART_END_REASON = "gateway_restart"


@dataclass
class CallRecord:
    call_id: str
    started_at: float
    caller_number: str | None = None
    caller_country: str | None = None
    dialled: str | None = None
    language: str | None = None
    topic: str | None = None
    ivr_path: list[str] = field(default_factory=list)
    priority: int = 0
    advisor: str | None = None
    worker: str | None = None
    queued_at: float | None = None
    offered_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    end_reason: str | None = None
    legs: list[dict[str, Any]] = field(default_factory=list)
    kind: str = "inbound"
    origin_call_id: str | None = None


_COLUMNS = [
    "call_id", "caller_number", "caller_country", "dialled", "language", "topic",
    "ivr_path", "priority", "advisor", "worker", "started_at", "queued_at",
    "offered_at", "answered_at", "ended_at", "end_reason", "legs", "kind", "origin_call_id",
]
_JSON_COLUMNS = {"ivr_path", "legs"}


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Callers' numbers, audits, recordings' index: readable by cti only. SQLite
        # gives the -wal and -shm files the database file's mode.
        path.touch(mode=0o600, exist_ok=True)
        os.chmod(path, 0o600)
        for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if extra.exists():
                os.chmod(extra, 0o600)
        self.path = path
        conn = _connect(path)
        conn.execute("PRAGMA journal_mode=WAL")
        migrate_core(conn, MIGRATIONS)
        journal = path.with_name(path.name + ".unwritten.jsonl")
        replay_journal(conn, journal)  # what the last run could not write
        self.writer = Writer(conn)
        # The call path's writes (records, offers, wrap-ups): queued, never raised,
        # while the store cannot write (cti/store/spool.py).
        self.spool = Spool(self.writer, journal=journal)
        # Reads: their own connection (WAL: they never wait for the writer).
        self._db = _connect(path)
        self._db.execute("PRAGMA query_only = ON")
        self._read_lock = threading.Lock()
        self.flags = FlagsRepo(self.writer, self._db)
        self.skills = SkillsRepo(self.writer, self._db)
        self.audit = AuditLog(self.writer, self._db)
        self.timers = TimersRepo(self.writer, self._db)
        self.sessions = SessionsRepo(self.writer, self._db)
        self.advisor_states = AdvisorStatesRepo(self.spool, self._db)
        self.advisors = AdvisorsRepo(self.writer, self._db)
        # Offer ids are given here, not by SQLite: an offer queued while the store
        # cannot write has its id at once (its outcome is queued behind it).
        row = self._db.execute("SELECT MAX(offer_id) FROM offers").fetchone()
        self._offer_ids = itertools.count(int(row[0] or 0) + 1)

    def close(self) -> None:
        """Waits for the writes submitted so far to be committed."""
        self.spool.close()
        self.writer.close()
        self._db.close()

    def read(self, sql: str, params: Any = (), guard: str | None = None) -> list[sqlite3.Row]:
        """Rows of a read; ``guard``: a plugin's table prefix, no other table is readable."""
        if guard is None:
            return self._db.execute(sql, params).fetchall()
        with self._read_lock:
            return guarded(self._db, guard, lambda c: c.execute(sql, params).fetchall())

    def save_call(self, rec: CallRecord) -> bool:
        """Insert or replace the record of one customer call: at its start, and at
        its end. Never raises: False when the write is queued (the store cannot
        write now, see :class:`cti.store.spool.Spool`)."""
        values = []
        for col in _COLUMNS:
            v = getattr(rec, col)
            values.append(json.dumps(v) if col in _JSON_COLUMNS else v)
        marks = ",".join("?" * len(_COLUMNS))
        sql = f"INSERT OR REPLACE INTO calls ({','.join(_COLUMNS)}) VALUES ({marks})"
        return self.spool.write(Write(rec.call_id, "call", sql, tuple(values)))

    def close_unended(self, at: float, reason: str = RESTART_END_REASON) -> list[str]:
        """At start: the calls whose row has no end (the controller died during
        them) end now with ``reason``; returns their ids. Durable: raises if the
        store cannot write."""
        def job(c: sqlite3.Connection) -> list[str]:
            ids = [r[0] for r in c.execute("SELECT call_id FROM calls WHERE ended_at IS NULL")]
            c.execute("UPDATE calls SET ended_at = ?, end_reason = ? WHERE ended_at IS NULL",
                      (at, reason))
            return ids
        return self.writer.call(job)

    def add_offer(self, call_id: str, advisor: str, at: float, trace: dict[str, Any]) -> int:
        """Store an offer with its decision trace before the advisor's phone rings
        (queued, never raised, while the store cannot write)."""
        offer_id = next(self._offer_ids)
        self.spool.write(Write(
            call_id, "offer",
            "INSERT INTO offers (offer_id, call_id, advisor, offered_at, trace) "
            "VALUES (?, ?, ?, ?, ?)", (offer_id, call_id, advisor, at, json.dumps(trace))))
        return offer_id

    def set_offer_outcome(self, offer_id: int, outcome: str, at: float,
                          call_id: str = "?") -> None:
        self.spool.write(Write(
            call_id, "offer_outcome",
            "UPDATE offers SET outcome = ?, outcome_at = ? WHERE offer_id = ? "
            "AND outcome IS NULL", (outcome, at, offer_id)))

    def offers(self, call_id: str) -> list[dict[str, Any]]:
        """Every offer of a call, oldest first, with its decision trace."""
        rows = self._db.execute(
            "SELECT * FROM offers WHERE call_id = ? ORDER BY offer_id", (call_id,))
        return [{**dict(r), "trace": json.loads(r["trace"])} for r in rows]

    def get_call(self, call_id: str) -> CallRecord | None:
        row = self._db.execute("SELECT * FROM calls WHERE call_id = ?", (call_id,)).fetchone()
        return _to_record(row) if row else None

    def recent_calls(self, limit: int = 50, advisor: str | None = None) -> list[CallRecord]:
        if advisor:
            rows = self._db.execute(
                "SELECT * FROM calls WHERE advisor = ? ORDER BY started_at DESC LIMIT ?",
                (advisor, limit),
            )
        else:
            rows = self._db.execute(
                "SELECT * FROM calls ORDER BY started_at DESC LIMIT ?", (limit,)
            )
        return [_to_record(r) for r in rows]

    def save_wrap_up(self, call_id: str, advisor: str, code: str, note: str, at: float) -> None:
        """The advisor's after-call work: a code from config and a free note (last
        wins). Queued, never raised, while the store cannot write."""
        self.spool.write(Write(
            call_id, "wrap_up",
            "INSERT OR REPLACE INTO wrap_ups (call_id, advisor, code, note, at) "
            "VALUES (?, ?, ?, ?, ?)", (call_id, advisor, code, note, at)))

    def wrap_up(self, call_id: str) -> dict[str, Any] | None:
        """The call's latest wrap-up (a transferred call has one per advisor)."""
        row = self._db.execute("SELECT * FROM last_wrap_ups WHERE call_id = ?",
                               (call_id,)).fetchone()
        return dict(row) if row else None

    def talked_to(self, call_id: str, advisor: str) -> bool:
        """True if the advisor accepted an offer of the call or was its advisor: who
        may wrap it up, also long after it ended (and after a restart)."""
        row = self._db.execute(
            "SELECT 1 FROM calls WHERE call_id = ? AND advisor = ? UNION ALL "
            "SELECT 1 FROM offers WHERE call_id = ? AND advisor = ? AND outcome = 'accepted' "
            "LIMIT 1", (call_id, advisor, call_id, advisor)).fetchone()
        return row is not None

    def wrap_ups(self, call_id: str) -> list[dict[str, Any]]:
        """Every wrap-up of the call, oldest first."""
        rows = self._db.execute("SELECT * FROM wrap_ups WHERE call_id = ? ORDER BY at",
                                (call_id,))
        return [dict(r) for r in rows]

    def earlier_contacts(self, number: str, limit: int = 5,
                         before: float | None = None) -> list[dict[str, Any]]:
        """The number's last ended calls, newest first, with their wrap-up (for the
        screen pop)."""
        rows = self._db.execute(
            "SELECT c.call_id, c.started_at, c.topic, c.language, c.advisor, c.end_reason, "
            "w.code AS wrap_up_code, w.note FROM calls c "
            "LEFT JOIN last_wrap_ups w ON w.call_id = c.call_id "
            "WHERE c.caller_number = ? AND c.started_at < ? AND c.ended_at IS NOT NULL "
            "ORDER BY c.started_at DESC LIMIT ?",
            (number, before if before is not None else float("inf"), limit))
        return [dict(r) for r in rows]


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA synchronous=FULL")  # the commit survives a power cut, not only a crash
    db.execute("PRAGMA busy_timeout=5000")
    return db


def _to_record(row: sqlite3.Row) -> CallRecord:
    data = {k: row[k] for k in _COLUMNS}
    for k in _JSON_COLUMNS:
        data[k] = json.loads(data[k] or "[]")
    return CallRecord(**data)

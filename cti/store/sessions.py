"""What a restart of the controller must not take from the people on the floor:
their login sessions (a token's hash, never the token) and the state each advisor
chose last (available, away with its reason, logged out)."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass

from cti.store.spool import Spool, Write
from cti.store.writer import Writer


def token_hash(token: str) -> str:
    """A stolen copy of the store gives no usable token."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class StoredSession:
    token_hash: str
    user: str
    role: str
    expires_at: float


class SessionsRepo:
    def __init__(self, writer: Writer, db: sqlite3.Connection) -> None:
        self._writer = writer
        self._db = db

    def live(self, now: float) -> list[StoredSession]:
        rows = self._db.execute(
            "SELECT token_hash, user, role, expires_at FROM sessions WHERE expires_at > ?",
            (now,))
        return [StoredSession(r[0], r[1], r[2], r[3]) for r in rows]

    async def add(self, session: StoredSession, now: float) -> None:
        def write(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
            c.execute("INSERT OR REPLACE INTO sessions (token_hash, user, role, expires_at) "
                      "VALUES (?, ?, ?, ?)", (session.token_hash, session.user, session.role,
                                              session.expires_at))
        await self._writer.run(write)

    async def remove(self, hashed: str) -> None:
        await self._writer.run(
            lambda c: c.execute("DELETE FROM sessions WHERE token_hash = ?", (hashed,)))


@dataclass(frozen=True)
class StoredState:
    advisor: str
    state: str
    reason: str | None
    at: float


class AdvisorStatesRepo:
    """Written through the spool (like a call's record): a state change never waits
    for, nor fails with, the disk."""

    def __init__(self, spool: Spool, db: sqlite3.Connection) -> None:
        self._spool = spool
        self._db = db

    def all(self) -> dict[str, StoredState]:
        rows = self._db.execute("SELECT advisor, state, reason, at FROM advisor_states")
        return {r[0]: StoredState(r[0], r[1], r[2], r[3]) for r in rows}

    def save(self, advisor: str, state: str, reason: str | None, at: float) -> None:
        self._spool.write(Write(
            advisor, "advisor_state",
            "INSERT OR REPLACE INTO advisor_states (advisor, state, reason, at) "
            "VALUES (?, ?, ?, ?)", (advisor, state, reason, at)))

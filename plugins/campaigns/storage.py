"""The campaigns plugin's tables: campaigns, their contacts (one row per number,
with its outcome and the advisor's wrap-up) and every attempt. Durable: a campaign
goes on after a restart of cti serve."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cti.plugins.api import Migration, PluginStore

MIGRATIONS = (
    Migration(1, """
        CREATE TABLE {prefix}campaigns (
            campaign_id  INTEGER PRIMARY KEY AUTOINCREMENT,
            name         TEXT NOT NULL,
            topic        TEXT NOT NULL,
            language     TEXT NOT NULL,
            status       TEXT NOT NULL,   -- importing, running, paused, stopped, done, failed
            window_start TEXT NOT NULL,
            window_end   TEXT NOT NULL,
            created_by   TEXT,
            created_at   REAL NOT NULL,
            updated_at   REAL NOT NULL
        )"""),
    Migration(2, """
        CREATE TABLE {prefix}contacts (
            contact_id   INTEGER PRIMARY KEY AUTOINCREMENT,
            campaign_id  INTEGER NOT NULL,
            line         INTEGER NOT NULL,   -- its line in the upload
            number       TEXT NOT NULL,
            name         TEXT NOT NULL DEFAULT '',
            language     TEXT NOT NULL,
            note         TEXT NOT NULL DEFAULT '',
            zone         TEXT NOT NULL,      -- the callee's IANA zone
            status       TEXT NOT NULL,      -- scheduled, queued, calling, or an outcome
            attempts     INTEGER NOT NULL DEFAULT 0,
            due_at       REAL NOT NULL,      -- when it is (next) called
            call_id      TEXT,               -- the call queued or being made now
            advisor      TEXT,
            last_reason  TEXT,               -- how the last attempt ended
            wrap_up_code TEXT,
            wrap_up_note TEXT,
            updated_at   REAL NOT NULL
        )"""),
    Migration(3, "CREATE INDEX {prefix}contacts_due ON {prefix}contacts "
                 "(campaign_id, status, due_at)"),
    Migration(4, "CREATE INDEX {prefix}contacts_call ON {prefix}contacts (call_id)"),
    Migration(5, """
        CREATE TABLE {prefix}attempts (
            call_id     TEXT PRIMARY KEY,
            contact_id  INTEGER NOT NULL,
            advisor     TEXT,
            ended_at    REAL NOT NULL,
            end_reason  TEXT NOT NULL,
            sip_status  INTEGER,
            reached     INTEGER NOT NULL
        )"""),
)

#: Contacts still to be called, or being called.
OPEN = ("scheduled", "queued", "calling")
STATUSES = ("scheduled", "queued", "calling", "reached", "no_answer", "wrong_number",
            "cancelled")


@dataclass
class Campaign:
    campaign_id: int
    name: str
    topic: str
    language: str
    status: str
    window_start: str
    window_end: str
    created_by: str | None
    created_at: float
    updated_at: float


@dataclass
class Contact:
    contact_id: int
    campaign_id: int
    line: int
    number: str
    name: str
    language: str
    note: str
    zone: str
    status: str
    attempts: int
    due_at: float
    updated_at: float
    call_id: str | None = None
    advisor: str | None = None
    last_reason: str | None = None
    wrap_up_code: str | None = None
    wrap_up_note: str | None = None

    def out(self) -> dict[str, Any]:
        return dict(self.__dict__)


_CAMPAIGN = ("name", "topic", "language", "status", "window_start", "window_end",
             "created_by", "created_at", "updated_at")
_CONTACT = ("campaign_id", "line", "number", "name", "language", "note", "zone", "status",
            "attempts", "due_at", "call_id", "advisor", "last_reason", "wrap_up_code",
            "wrap_up_note", "updated_at")


class CampaignRepository:
    def __init__(self, store: PluginStore) -> None:
        self._store = store
        p = store.prefix
        self._c, self._k, self._a = f"{p}campaigns", f"{p}contacts", f"{p}attempts"

    # ------------------------------------------------------------ campaigns
    async def add_campaign(self, c: Campaign) -> int:
        c.campaign_id = await self._store.write(
            f"INSERT INTO {self._c} ({', '.join(_CAMPAIGN)}) VALUES "
            f"({', '.join('?' for _ in _CAMPAIGN)})", [getattr(c, k) for k in _CAMPAIGN])
        return c.campaign_id

    async def save_campaign(self, c: Campaign) -> None:
        await self._store.write(
            f"UPDATE {self._c} SET {', '.join(f'{k} = ?' for k in _CAMPAIGN)} "
            "WHERE campaign_id = ?", [*(getattr(c, k) for k in _CAMPAIGN), c.campaign_id])

    def campaign(self, campaign_id: int) -> Campaign | None:
        rows = self._store.query(f"SELECT * FROM {self._c} WHERE campaign_id = ?",
                                 (campaign_id,))
        return Campaign(**rows[0]) if rows else None

    def campaigns(self, limit: int = 100) -> list[Campaign]:
        rows = self._store.query(f"SELECT * FROM {self._c} ORDER BY campaign_id DESC "
                                 "LIMIT ?", (limit,))
        return [Campaign(**r) for r in rows]

    def with_status(self, *statuses: str) -> list[Campaign]:
        marks = ", ".join("?" for _ in statuses)
        rows = self._store.query(f"SELECT * FROM {self._c} WHERE status IN ({marks}) "
                                 "ORDER BY campaign_id", statuses)
        return [Campaign(**r) for r in rows]

    # ------------------------------------------------------------ contacts
    async def add_contacts(self, contacts: Sequence[Contact]) -> int:
        return await self._store.write_many(
            f"INSERT INTO {self._k} ({', '.join(_CONTACT)}) VALUES "
            f"({', '.join('?' for _ in _CONTACT)})",
            [[getattr(k, c) for c in _CONTACT] for k in contacts])

    async def save_contact(self, k: Contact) -> None:
        await self._store.write(
            f"UPDATE {self._k} SET {', '.join(f'{c} = ?' for c in _CONTACT)} "
            "WHERE contact_id = ?", [*(getattr(k, c) for c in _CONTACT), k.contact_id])

    async def set_status(self, campaign_id: int, from_: Sequence[str], to: str,
                         now: float) -> int:
        """Every contact of the campaign in one of ``from_`` to ``to`` (one write)."""
        marks = ", ".join("?" for _ in from_)
        return await self._store.write(
            f"UPDATE {self._k} SET status = ?, call_id = NULL, updated_at = ? "
            f"WHERE campaign_id = ? AND status IN ({marks})", (to, now, campaign_id, *from_))

    async def delete_contacts(self, campaign_id: int) -> int:
        return await self._store.write(f"DELETE FROM {self._k} WHERE campaign_id = ?",
                                       (campaign_id,))

    async def attempt(self, call_id: str, contact_id: int, advisor: str | None,
                      ended_at: float, end_reason: str, sip_status: int | None,
                      reached: bool) -> None:
        await self._store.write(
            f"INSERT OR REPLACE INTO {self._a} (call_id, contact_id, advisor, ended_at, "
            "end_reason, sip_status, reached) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (call_id, contact_id, advisor, ended_at, end_reason, sip_status, int(reached)))

    def contact(self, contact_id: int) -> Contact | None:
        rows = self._store.query(f"SELECT * FROM {self._k} WHERE contact_id = ?",
                                 (contact_id,))
        return Contact(**rows[0]) if rows else None

    def by_call(self, call_id: str) -> Contact | None:
        rows = self._store.query(f"SELECT * FROM {self._k} WHERE call_id = ?", (call_id,))
        return Contact(**rows[0]) if rows else None

    def contacts(self, campaign_id: int, limit: int | None = None,
                 offset: int = 0) -> list[Contact]:
        rows = self._store.query(
            f"SELECT * FROM {self._k} WHERE campaign_id = ? ORDER BY line, contact_id "
            "LIMIT ? OFFSET ?", (campaign_id, -1 if limit is None else limit, offset))
        return [Contact(**r) for r in rows]

    def due(self, campaign_id: int, now: float, limit: int) -> list[Contact]:
        """Scheduled contacts whose time has come, the longest due first."""
        rows = self._store.query(
            f"SELECT * FROM {self._k} WHERE campaign_id = ? AND status = 'scheduled' "
            "AND due_at <= ? ORDER BY due_at, line LIMIT ?", (campaign_id, now, limit))
        return [Contact(**r) for r in rows]

    def in_progress(self) -> list[Contact]:
        """Contacts queued or being called (every campaign)."""
        rows = self._store.query(
            f"SELECT * FROM {self._k} WHERE status IN ('queued', 'calling')")
        return [Contact(**r) for r in rows]

    def counts(self, campaign_id: int) -> dict[str, int]:
        rows = self._store.query(
            f"SELECT status, COUNT(*) AS n, SUM(status = 'scheduled' AND attempts > 0) "
            f"AS retrying FROM {self._k} WHERE campaign_id = ? GROUP BY status",
            (campaign_id,))
        out = dict.fromkeys(STATUSES, 0)
        retrying = 0
        for r in rows:
            out[str(r["status"])] = int(r["n"])
            retrying += int(r["retrying"] or 0)
        return {"total": sum(out.values()), **out, "retrying": retrying}

    def next_due(self, campaign_id: int) -> float | None:
        rows = self._store.query(
            f"SELECT MIN(due_at) AS due FROM {self._k} WHERE campaign_id = ? "
            "AND status = 'scheduled'", (campaign_id,))
        return rows[0]["due"] if rows else None

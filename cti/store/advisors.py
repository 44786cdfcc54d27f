"""Advisors (and supervisors, coaches, admins) added or changed through the admin
API: one row per name, the record as the config's ``advisors`` item (hashes, never
a password), or NULL for a name removed through the API (so the config's seed does
not bring it back at the next start).

Every write carries its audit line in the same transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from cti.store import audit
from cti.store.writer import Writer


class AdvisorsRepo:
    def __init__(self, writer: Writer, db: sqlite3.Connection) -> None:
        self._writer = writer
        self._db = db

    def all(self) -> dict[str, dict[str, Any] | None]:
        """Name -> the stored record, or None for a removed name; in the order added."""
        rows = self._db.execute("SELECT name, record FROM advisors ORDER BY seq")
        return {r["name"]: None if r["record"] is None else json.loads(r["record"])
                for r in rows}

    async def save(self, name: str, record: Mapping[str, Any], action: str,
                   by: str | None, details: Mapping[str, Any],
                   address: str | None = None, new_skills: bool = False) -> None:
        """Store the record and its audit line together. ``new_skills``: the record's
        skills replace any skill edit stored for the name (a new advisor, or an
        advisor given new skills through this API)."""
        data = json.dumps(record, sort_keys=True)
        at = time.time()

        def write(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO advisors (name, record, by, at) VALUES (?, ?, ?, ?) "
                      "ON CONFLICT(name) DO UPDATE SET record = excluded.record, "
                      "by = excluded.by, at = excluded.at", (name, data, by, at))
            if new_skills:
                c.execute("DELETE FROM advisor_skills WHERE advisor = ?", (name,))
            audit.insert(c, action, by, {"advisor": name, **details}, address, at)

        await self._writer.run(write)

    async def remove(self, name: str, by: str | None, address: str | None = None) -> None:
        """Mark the name removed; its sessions, skill edits and chosen state go with it."""
        at = time.time()

        def write(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO advisors (name, record, by, at) VALUES (?, NULL, ?, ?) "
                      "ON CONFLICT(name) DO UPDATE SET record = NULL, by = excluded.by, "
                      "at = excluded.at", (name, by, at))
            c.execute("DELETE FROM sessions WHERE user = ?", (name,))
            c.execute("DELETE FROM advisor_skills WHERE advisor = ?", (name,))
            c.execute("DELETE FROM advisor_states WHERE advisor = ?", (name,))
            audit.insert(c, "advisor.remove", by, {"advisor": name}, address, at)

        await self._writer.run(write)

    async def revoke_sessions(self, name: str) -> None:
        """End every stored login of the name (a new role or password)."""
        await self._writer.run(
            lambda c: c.execute("DELETE FROM sessions WHERE user = ?", (name,)))

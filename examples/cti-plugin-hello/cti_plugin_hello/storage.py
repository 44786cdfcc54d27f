"""One table: the VIP numbers (from the config and added by supervisors) and how
many calls each made on its last day. Durable: written with services.store.write."""

from __future__ import annotations

from typing import Any

from cti.plugins.api import Migration, PluginStore

MIGRATIONS = (
    Migration(1, """
        CREATE TABLE {prefix}vips (
            number   TEXT PRIMARY KEY,
            added_by TEXT,                      -- NULL: from the config
            added_at REAL NOT NULL,
            day      TEXT NOT NULL DEFAULT '',  -- the day 'calls' counts (YYYY-MM-DD)
            calls    INTEGER NOT NULL DEFAULT 0
        )"""),
)


class VipRepository:
    def __init__(self, store: PluginStore) -> None:
        self._store, self._t = store, f"{store.prefix}vips"

    async def add(self, number: str, by: str | None, at: float) -> None:
        """Add a number (one already there keeps who added it and its count)."""
        await self._store.write(
            f"INSERT OR IGNORE INTO {self._t} (number, added_by, added_at) VALUES (?, ?, ?)",
            (number, by, at))

    async def count_call(self, number: str, day: str) -> None:
        await self._store.write(
            f"UPDATE {self._t} SET calls = CASE WHEN day = ? THEN calls + 1 ELSE 1 END, "
            "day = ? WHERE number = ?", (day, day, number))

    def numbers(self) -> set[str]:
        return {str(r["number"]) for r in self._store.query(f"SELECT number FROM {self._t}")}

    def all(self, day: str) -> list[dict[str, Any]]:
        return self._store.query(
            f"SELECT number, added_by, CASE WHEN day = ? THEN calls ELSE 0 END AS calls_today "
            f"FROM {self._t} ORDER BY number", (day,))

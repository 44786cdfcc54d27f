"""The crisis line's tables: every crisis (the one in force has no ended_at) and
its counters. Durable: a crisis in force survives a restart of cti serve."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cti.plugins.api import Migration, PluginStore

MIGRATIONS = (
    Migration(1, """
        CREATE TABLE {prefix}crises (
            crisis_id  INTEGER PRIMARY KEY AUTOINCREMENT,
            name       TEXT NOT NULL,
            spec       TEXT NOT NULL,          -- the resolved settings (JSON)
            started_at REAL NOT NULL,
            started_by TEXT,
            ended_at   REAL,
            ended_by   TEXT,
            answered   INTEGER NOT NULL DEFAULT 0,
            overflowed INTEGER NOT NULL DEFAULT 0
        )"""),
)


@dataclass
class Crisis:
    """A crisis with its resolved settings (the plugin's defaults plus the start request)."""

    crisis_id: int
    name: str
    numbers: list[str]
    dedicated_number: str | None
    priority: int
    training: str
    reserve: list[str]
    reserve_training: str | None
    team: str
    overflow_after_s: float
    overflow_waiting: int
    started_at: float
    started_by: str | None
    ended_at: float | None = None
    ended_by: str | None = None
    answered: int = 0
    overflowed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def applies_to(self, dialled: str) -> bool:
        """A caller of this number gets the announcement and the option."""
        return not self.numbers or dialled in self.numbers


_SPEC_KEYS = ("numbers", "dedicated_number", "priority", "training", "reserve",
              "reserve_training", "team", "overflow_after_s", "overflow_waiting")


class CrisisRepository:
    def __init__(self, store: PluginStore) -> None:
        self._store = store
        self._t = f"{store.prefix}crises"

    async def add(self, crisis: Crisis) -> int:
        spec = {k: getattr(crisis, k) for k in _SPEC_KEYS} | {"extra": crisis.extra}
        return await self._store.write(
            f"INSERT INTO {self._t} (name, spec, started_at, started_by) VALUES (?, ?, ?, ?)",
            (crisis.name, json.dumps(spec), crisis.started_at, crisis.started_by))

    async def end(self, crisis_id: int, at: float, by: str | None) -> None:
        await self._store.write(
            f"UPDATE {self._t} SET ended_at = ?, ended_by = ? WHERE crisis_id = ?",
            (at, by, crisis_id))

    async def count(self, crisis_id: int, column: str) -> None:
        if column not in ("answered", "overflowed"):
            raise ValueError(column)
        await self._store.write(
            f"UPDATE {self._t} SET {column} = {column} + 1 WHERE crisis_id = ?", (crisis_id,))

    def active(self) -> Crisis | None:
        rows = self._store.query(
            f"SELECT * FROM {self._t} WHERE ended_at IS NULL ORDER BY crisis_id DESC LIMIT 1")
        return _crisis(rows[0]) if rows else None

    def recent(self, limit: int = 20) -> list[Crisis]:
        rows = self._store.query(
            f"SELECT * FROM {self._t} ORDER BY crisis_id DESC LIMIT ?", (limit,))
        return [_crisis(r) for r in rows]


def _crisis(row: dict[str, Any]) -> Crisis:
    spec = json.loads(row["spec"])
    return Crisis(crisis_id=row["crisis_id"], name=row["name"],
                  started_at=row["started_at"], started_by=row["started_by"],
                  ended_at=row["ended_at"], ended_by=row["ended_by"],
                  answered=row["answered"], overflowed=row["overflowed"],
                  extra=spec.get("extra") or {}, **{k: spec.get(k) for k in _SPEC_KEYS})

"""Durable timers of plugins (id, plugin, kind, key unique per plugin, at, payload).

The rows only; cti/controller/scheduler.py arms and fires them.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from typing import Any

from cti.store.writer import Writer


@dataclass(frozen=True)
class StoredTimer:
    id: str
    plugin: str
    kind: str
    key: str | None
    at: float
    payload: dict[str, Any]


class TimersRepo:
    def __init__(self, writer: Writer, db: sqlite3.Connection) -> None:
        self._writer = writer
        self._db = db

    def of(self, plugin: str) -> list[StoredTimer]:
        """A plugin's timers, soonest first."""
        rows = self._db.execute("SELECT * FROM timers WHERE plugin = ? ORDER BY at, id",
                                (plugin,))
        return [StoredTimer(r["id"], r["plugin"], r["kind"], r["key"], r["at"],
                            json.loads(r["payload"])) for r in rows]

    async def put(self, plugin: str, kind: str, at: float, payload: dict[str, Any],
                  key: str | None = None) -> tuple[StoredTimer, str | None]:
        """Store a new timer; one with the same key is replaced. Returns the timer
        and the id it replaced (None: none)."""
        timer = StoredTimer(uuid.uuid4().hex, plugin, kind, key, float(at), dict(payload))
        data = json.dumps(timer.payload)

        def write(c: sqlite3.Connection) -> str | None:
            old = None
            if key is not None:
                row = c.execute("SELECT id FROM timers WHERE plugin = ? AND key = ?",
                                (plugin, key)).fetchone()
                if row is not None:
                    old = str(row[0])
                    c.execute("DELETE FROM timers WHERE id = ?", (old,))
            c.execute("INSERT INTO timers (id, plugin, kind, key, at, payload) "
                      "VALUES (?, ?, ?, ?, ?, ?)",
                      (timer.id, plugin, kind, key, timer.at, data))
            return old

        return timer, await self._writer.run(write)

    async def delete(self, plugin: str, id_or_key: str) -> str | None:
        """Delete the plugin's timer with this id, or else this key; returns its id."""

        def write(c: sqlite3.Connection) -> str | None:
            row = c.execute("SELECT id FROM timers WHERE plugin = ? AND id = ?",
                            (plugin, id_or_key)).fetchone() or c.execute(
                "SELECT id FROM timers WHERE plugin = ? AND key = ?",
                (plugin, id_or_key)).fetchone()
            if row is None:
                return None
            c.execute("DELETE FROM timers WHERE id = ?", (row[0],))
            return str(row[0])

        return await self._writer.run(write)

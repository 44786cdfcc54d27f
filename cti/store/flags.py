"""Gateway-wide IVR flags as last set (name, value, by, at): over the config's at start."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from cti.store import audit
from cti.store.writer import Writer


@dataclass(frozen=True)
class StoredFlag:
    name: str
    value: bool
    by: str | None
    at: float


class FlagsRepo:
    def __init__(self, writer: Writer, db: sqlite3.Connection) -> None:
        self._writer = writer
        self._db = db

    def all(self) -> dict[str, StoredFlag]:
        rows = self._db.execute("SELECT name, value, by, at FROM flags ORDER BY name")
        return {r["name"]: StoredFlag(r["name"], bool(r["value"]), r["by"], r["at"])
                for r in rows}

    def values(self) -> dict[str, bool]:
        return {name: f.value for name, f in self.all().items()}

    async def set(self, name: str, value: bool, by: str | None = None,
                  address: str | None = None) -> StoredFlag:
        """Store the flag and its audit line (``flag.set``) in one transaction."""
        flag = StoredFlag(name, bool(value), by, time.time())

        def write(c: sqlite3.Connection) -> None:
            c.execute("INSERT OR REPLACE INTO flags (name, value, by, at) VALUES (?, ?, ?, ?)",
                      (flag.name, int(flag.value), flag.by, flag.at))
            audit.insert(c, "flag.set", by, {"name": name, "value": flag.value}, address,
                         flag.at)

        await self._writer.run(write)
        return flag

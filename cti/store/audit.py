"""The audit: append-only lines of who did what, when, from where.

Rows are never changed or deleted (triggers refuse it). ``record`` is durable
when it returns; other repositories add their line in their own transaction
with :func:`insert` (a flag and its audit line are committed together).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from cti.store.writer import Writer

MAX_LIMIT = 1000


@dataclass(frozen=True)
class AuditLine:
    id: int
    at: float
    who: str | None
    action: str
    details: dict[str, Any]
    address: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "who": self.who, "action": self.action,
                "details": self.details, "address": self.address}


def insert(conn: sqlite3.Connection, action: str, who: str | None, details: dict[str, Any],
           address: str | None = None, at: float | None = None) -> int:
    """Add a line in the caller's transaction (in the writer thread)."""
    cur = conn.execute(
        "INSERT INTO audit (at, who, action, details, address) VALUES (?, ?, ?, ?, ?)",
        (time.time() if at is None else at, who, action, json.dumps(details), address))
    return int(cur.lastrowid or 0)


class AuditLog:
    """Also the :class:`cti.plugins.api.AuditService` (see :meth:`for_plugin`)."""

    def __init__(self, writer: Writer, db: sqlite3.Connection) -> None:
        self._writer = writer
        self._db = db

    async def record(self, action: str, by: str | None, details: dict[str, Any],
                     address: str | None = None) -> None:
        await self._writer.run(lambda c: insert(c, action, by, details, address))

    def lines(self, action: str | None = None, since: float | None = None,
              limit: int = 100) -> list[AuditLine]:
        """Newest first; ``action`` matches exactly or as a prefix ending in '.'
        (``plugin.crisis_line.`` lists that plugin's lines)."""
        where, args = [], []
        if action:
            if action.endswith("."):
                where.append("substr(action, 1, ?) = ?")
                args += [len(action), action]
            else:
                where.append("action = ?")
                args.append(action)
        if since is not None:
            where.append("at >= ?")
            args.append(since)
        args.append(max(1, min(limit, MAX_LIMIT)))
        rows = self._db.execute(
            "SELECT * FROM audit" + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY id DESC LIMIT ?", args).fetchall()
        return [AuditLine(r["id"], r["at"], r["who"], r["action"], json.loads(r["details"]),
                          r["address"]) for r in rows]

    def for_plugin(self, plugin: str) -> PluginAudit:
        return PluginAudit(self, plugin)


class PluginAudit:
    """A plugin's AuditService: its actions are written ``plugin.<name>.<action>``,
    so a plugin cannot pass its lines off as the core's."""

    def __init__(self, log: AuditLog, plugin: str) -> None:
        self._log = log
        self.plugin = plugin

    async def record(self, action: str, by: str | None, details: dict[str, Any]) -> None:
        await self._log.record(f"plugin.{self.plugin}.{action}", by, details)

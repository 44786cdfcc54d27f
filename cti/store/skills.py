"""Advisors' skills as last edited through the API (config skills until then).

Stored as the JSON of ``Skills.as_dict()`` (trainings' expiry as ISO dates).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from cti.store import audit
from cti.store.writer import Writer


class SkillsRepo:
    def __init__(self, writer: Writer, db: sqlite3.Connection) -> None:
        self._writer = writer
        self._db = db

    def all(self) -> dict[str, dict[str, Any]]:
        """Advisor name -> the stored skills (languages, topics, trainings)."""
        rows = self._db.execute("SELECT advisor, skills FROM advisor_skills ORDER BY advisor")
        return {r["advisor"]: json.loads(r["skills"]) for r in rows}

    async def save(self, advisor: str, skills: Mapping[str, Any], by: str | None = None,
                   address: str | None = None) -> None:
        """Store the advisor's skills and an audit line (``skills.set``) together."""
        data = json.dumps(skills, sort_keys=True)
        at = time.time()

        def write(c: sqlite3.Connection) -> None:
            c.execute("INSERT OR REPLACE INTO advisor_skills (advisor, skills, by, at) "
                      "VALUES (?, ?, ?, ?)", (advisor, data, by, at))
            audit.insert(c, "skills.set", by, {"advisor": advisor, **json.loads(data)},
                         address, at)

        await self._writer.run(write)

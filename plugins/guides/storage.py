"""The guides edited through the API (durable; they win over the files)."""

from __future__ import annotations

from dataclasses import dataclass

from cti.plugins.api import Migration, PluginStore

MIGRATIONS = (
    Migration(1, """
        CREATE TABLE {prefix}guides (
            topic      TEXT NOT NULL,
            language   TEXT NOT NULL,
            markdown   TEXT NOT NULL,
            updated_at REAL NOT NULL,
            updated_by TEXT,
            PRIMARY KEY (topic, language)
        )"""),
)


@dataclass(frozen=True)
class Guide:
    topic: str
    language: str
    markdown: str
    source: str  # "file" or "edited"
    updated_at: float | None = None
    updated_by: str | None = None


class GuideRepository:
    def __init__(self, store: PluginStore) -> None:
        self._store = store
        self._t = f"{store.prefix}guides"

    def edited(self) -> list[Guide]:
        rows = self._store.query(f"SELECT * FROM {self._t} ORDER BY topic, language")
        return [Guide(r["topic"], r["language"], r["markdown"], "edited", r["updated_at"],
                      r["updated_by"]) for r in rows]

    async def save(self, guide: Guide) -> None:
        await self._store.write(
            f"INSERT OR REPLACE INTO {self._t} (topic, language, markdown, updated_at, "
            "updated_by) VALUES (?, ?, ?, ?, ?)",
            (guide.topic, guide.language, guide.markdown, guide.updated_at, guide.updated_by))

    async def remove(self, topic: str, language: str) -> None:
        await self._store.write(f"DELETE FROM {self._t} WHERE topic = ? AND language = ?",
                                (topic, language))

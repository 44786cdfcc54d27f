"""A plugin's own tables in the gateway's SQLite: ``p_<name>_*``, its migrations,
durable writes, reads (the :class:`cti.plugins.api.PluginStore` of a plugin).

Two checks. SQLite's authorizer (:func:`authorizer`), set while the plugin's
statement runs, refuses any table outside the prefix that the statement reads or
writes, as SQLite itself resolved it, plus ATTACH, DETACH and PRAGMA. Before
that, a text check (:func:`outside_prefix`) gives a clear error early and covers
the migrations' names too; it reads table names in the statement's
text: after CREATE TABLE/INDEX/VIEW/TRIGGER, INSERT/REPLACE INTO, UPDATE, DELETE
FROM, DROP, ALTER TABLE, ON (an index's or trigger's table), and FROM/JOIN (so a
plugin neither reads nor copies the core's tables). ATTACH, DETACH, PRAGMA and
VACUUM are refused outright. Its limits: it is not a SQL parser. Names are taken
after comments and string literals are removed; a name in brackets or quotes is
unquoted; a table-valued function (``FROM json_each(...)``) and a CTE name
(``WITH x AS (...)``) are allowed. It does not follow what a trigger body or a
view does at run time beyond the names written in it, and it trusts the plugin's
code not to fight it on purpose: plugins run in the gateway's process and
could open the file themselves. It keeps a plugin from breaking the core's
tables or another plugin's by mistake, which is what it is for.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cti.store.migrations import Migration, migrate_plugin
from cti.store.sql_fence import PrefixError, _check, authorizer, guarded

if TYPE_CHECKING:
    from cti.store.db import Store


class PluginStorage:
    """Created at load: applies the plugin's migrations not applied yet (each in a
    transaction, recorded in ``plugin_migrations``)."""

    def __init__(self, store: Store, plugin_name: str,
                 migrations: Sequence[Migration] = ()) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", plugin_name):
            raise ValueError(f"plugin name {plugin_name!r}: lowercase letters, digits, '_'")
        self.plugin = plugin_name
        self.prefix = f"p_{plugin_name}_"
        self._store = store
        steps = list(migrations)
        for step in steps:
            _check(step.sql.replace("{prefix}", self.prefix), self.prefix, plugin_name)
        self.applied = store.writer.call(
            lambda c: migrate_plugin(c, plugin_name, self.prefix, steps,
                                     authorizer(self.prefix)), own_transaction=True)

    async def write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One statement, committed when this returns: lastrowid of an INSERT, else
        the number of rows changed."""
        _check(sql, self.prefix, self.plugin)
        args = tuple(params)

        def run(c: sqlite3.Connection) -> int:
            cur = c.execute(sql, args)
            if sql.lstrip()[:6].upper() in ("INSERT", "REPLAC"):
                return int(cur.lastrowid or 0)
            return int(cur.rowcount)

        return await self._store.writer.run(lambda c: guarded(c, self.prefix, run))

    async def write_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """One statement for each row of parameters, in one transaction committed when
        this returns (all or none); the number of rows changed."""
        _check(sql, self.prefix, self.plugin)
        batch = [tuple(r) for r in rows]

        def run(c: sqlite3.Connection) -> int:
            return int(c.executemany(sql, batch).rowcount)

        return await self._store.writer.run(lambda c: guarded(c, self.prefix, run))

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts; read-only (a write here is refused by SQLite)."""
        _check(sql, self.prefix, self.plugin)
        if not re.match(r"\s*(SELECT|WITH)\b", sql, re.I):
            raise PrefixError(f"plugin {self.plugin}: query() reads (SELECT); use write()")
        return [dict(r) for r in self._store.read(sql, tuple(params), guard=self.prefix)]

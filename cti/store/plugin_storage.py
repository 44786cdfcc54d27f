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
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from cti.plugins.api import Migration
from cti.store.migrations import migrate_plugin

if TYPE_CHECKING:
    from cti.store.db import Store

T = TypeVar("T")

_COMMENTS_AND_STRINGS = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'", re.S)
_NAME = r"""(?:"[^"]+"|`[^`]+`|\[[^\]]+\]|[\w.$]+)"""
_TARGETS = re.compile(
    r"\b(?:CREATE\s+(?:UNIQUE\s+)?(?:TEMP(?:ORARY)?\s+)?(?:VIRTUAL\s+)?"
    r"(?:TABLE|INDEX|VIEW|TRIGGER)\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r"|(?:INSERT|REPLACE)\s+(?:OR\s+\w+\s+)?INTO\s+|UPDATE\s+(?:OR\s+\w+\s+)?"
    r"|DELETE\s+FROM\s+|DROP\s+(?:TABLE|INDEX|VIEW|TRIGGER)\s+(?:IF\s+EXISTS\s+)?"
    r"|ALTER\s+TABLE\s+|\bON\s+|\b(FROM|JOIN)\s+)(" + _NAME + r")(\s*\()?",
    re.I)
_CTE = re.compile(r"(?:\bWITH(?:\s+RECURSIVE)?|,)\s*(" + _NAME + r")\s*(?:\([^)]*\)\s*)?AS\s*\(",
                  re.I)
_REFUSED = re.compile(r"^\s*(ATTACH|DETACH|PRAGMA|VACUUM)\b", re.I | re.M)
# After ON: not a table (ON CONFLICT, ON DELETE ... of a foreign key).
_NOT_TABLES = {"conflict", "delete", "update", "insert", "select"}


class PrefixError(ValueError):
    """A statement touches a table outside the plugin's prefix."""


def _unquote(name: str) -> str:
    if name[:1] in "\"`[":
        name = name[1:-1]
    return name.rsplit(".", 1)[-1]  # main.x -> x


def outside_prefix(sql: str, prefix: str) -> list[str]:
    """Names of tables (and indexes, views, triggers) the SQL names that do not
    start with ``prefix``; ATTACH/DETACH/PRAGMA/VACUUM are reported as such."""
    text = _COMMENTS_AND_STRINGS.sub("''", sql)
    bad = [m.group(1).upper() for m in _REFUSED.finditer(text)]
    ctes = {_unquote(m.group(1)).lower() for m in _CTE.finditer(text)}
    for m in _TARGETS.finditer(text):
        name = _unquote(m.group(2))
        function = m.group(1) and m.group(3)  # FROM json_each(...)
        if function or name.lower() in _NOT_TABLES or name.lower() in ctes:
            continue  # a function call, ON CONFLICT..., a CTE
        if not name.lower().startswith(prefix.lower()):
            bad.append(name)
    return bad


_INTERNAL = {"sqlite_master", "sqlite_schema", "sqlite_sequence", "sqlite_temp_master"}
# Actions and which argument names the table (or index, view, trigger).
_TABLE_ARG = {sqlite3.SQLITE_READ: 0, sqlite3.SQLITE_INSERT: 0, sqlite3.SQLITE_UPDATE: 0,
              sqlite3.SQLITE_DELETE: 0, sqlite3.SQLITE_CREATE_TABLE: 0,
              sqlite3.SQLITE_DROP_TABLE: 0, sqlite3.SQLITE_CREATE_INDEX: 1,
              sqlite3.SQLITE_DROP_INDEX: 1, sqlite3.SQLITE_CREATE_TRIGGER: 1,
              sqlite3.SQLITE_DROP_TRIGGER: 1, sqlite3.SQLITE_CREATE_VIEW: 0,
              sqlite3.SQLITE_DROP_VIEW: 0, sqlite3.SQLITE_ALTER_TABLE: 1}
_DENIED = {sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH, sqlite3.SQLITE_PRAGMA}


def authorizer(prefix: str) -> Callable[[int, str | None, str | None, str | None,
                                          str | None], int]:
    """SQLite's own view of the statement (set while a plugin's statement is
    prepared): every table it reads or writes, after the text check above."""

    def check(action: int, arg1: str | None, arg2: str | None, _db: str | None,
              _trigger: str | None) -> int:
        if action in _DENIED:
            return sqlite3.SQLITE_DENY
        which = _TABLE_ARG.get(action)
        if which is None:
            return sqlite3.SQLITE_OK
        name = (arg1, arg2)[which] or ""
        if name in _INTERNAL or name.lower().startswith(prefix.lower()):
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY

    return check


def guarded(conn: sqlite3.Connection, prefix: str,
            fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``fn`` with the prefix authorizer on (it expires cached statements, so
    nothing prepared before escapes it)."""
    conn.set_authorizer(authorizer(prefix))
    try:
        return fn(conn)
    finally:
        conn.set_authorizer(None)


def _check(sql: str, prefix: str, plugin: str) -> None:
    bad = outside_prefix(sql, prefix)
    if bad:
        raise PrefixError(f"plugin {plugin}: SQL may only use tables named {prefix}*, "
                          f"refused: {', '.join(dict.fromkeys(bad))}")


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

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts; read-only (a write here is refused by SQLite)."""
        _check(sql, self.prefix, self.plugin)
        if not re.match(r"\s*(SELECT|WITH)\b", sql, re.I):
            raise PrefixError(f"plugin {self.plugin}: query() reads (SELECT); use write()")
        return [dict(r) for r in self._store.read(sql, tuple(params), guard=self.prefix)]

"""The fence around a plugin's SQL: only tables with its prefix, checked in the
statement's text and by SQLite's authorizer while it runs (cti/store/plugin_storage.py)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from typing import TypeVar

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



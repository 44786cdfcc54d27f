"""Schema versions: each step applied once, in order, in its own transaction.

The core schema's version is ``PRAGMA user_version`` (0: a database made before
versions existed, by the first ``SCHEMA``; its ``CREATE ... IF NOT EXISTS`` makes
step 1 a no-op on it, so such a database is upgraded in place). A plugin's
versions are rows of ``plugin_migrations``. A database newer than the code is
refused: the code would not know what its tables mean.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger("cti.store")

#: Version 2: the state that survives a restart (flags, skills, audit, timers,
#: the versions of the plugins' own tables).
STATE_SCHEMA = """
CREATE TABLE flags (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL,
    by     TEXT,
    at     REAL NOT NULL
);
CREATE TABLE advisor_skills (
    advisor  TEXT PRIMARY KEY,
    skills   TEXT NOT NULL,        -- JSON: languages, topics, trainings
    by       TEXT,
    at       REAL NOT NULL
);
CREATE TABLE audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       REAL NOT NULL,
    who      TEXT,
    action   TEXT NOT NULL,
    details  TEXT NOT NULL DEFAULT '{}',
    address  TEXT
);
CREATE INDEX audit_at ON audit(at);
CREATE INDEX audit_action ON audit(action, at);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit is append-only'); END;
CREATE TABLE timers (
    id       TEXT PRIMARY KEY,
    plugin   TEXT NOT NULL,
    kind     TEXT NOT NULL,
    key      TEXT,
    at       REAL NOT NULL,
    payload  TEXT NOT NULL DEFAULT '{}',
    UNIQUE (plugin, key)
);
CREATE INDEX timers_due ON timers(plugin, at);
CREATE TABLE plugin_migrations (
    plugin      TEXT NOT NULL,
    version     INTEGER NOT NULL,
    applied_at  REAL NOT NULL,
    PRIMARY KEY (plugin, version)
);
"""


@dataclass(frozen=True)
class Migration:
    """One step of a plugin's schema, applied once, in order, in a transaction.

    ``sql`` may create tables whose names start with the plugin's table prefix
    (``services.store.prefix``, e.g. ``p_crisis_line_``); write it with
    ``{prefix}`` where the prefix goes: ``CREATE TABLE {prefix}crises (...)``.
    """

    version: int
    sql: str



class MigrationError(RuntimeError):
    """A step failed (rolled back) or the database is newer than the code."""


def check_steps(steps: Sequence[Migration], what: str) -> None:
    versions = [m.version for m in steps]
    if versions != sorted(set(versions)) or (versions and versions[0] < 1):
        raise MigrationError(f"{what}: migration versions must be 1, 2, ... ascending, "
                             f"without repeats (got {versions})")


def _apply(conn: sqlite3.Connection, steps: Sequence[Migration], current: int, what: str,
           record: Callable[[sqlite3.Connection, int], None],
           render: Callable[[str], str] = lambda sql: sql,
           authorizer: Callable[..., int] | None = None) -> list[int]:
    check_steps(steps, what)
    known = steps[-1].version if steps else 0
    if current > known:
        raise MigrationError(f"{what}: the database is at version {current}, this code "
                             f"knows up to {known}: use a newer cti or another store")
    fresh = current == 0 and (what != "store" or conn.execute(
        "SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is None)
    done: list[int] = []
    for step in steps:
        if step.version <= current:
            continue
        try:
            # executescript commits a pending transaction first: BEGIN goes inside.
            conn.set_authorizer(authorizer)  # a plugin's steps: its own tables only
            try:
                conn.executescript(f"BEGIN IMMEDIATE;\n{render(step.sql)}\n;")
            finally:
                conn.set_authorizer(None)
            record(conn, step.version)
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise MigrationError(f"{what}: migration {step.version} failed (rolled back): "
                                 f"{e}") from e
        done.append(step.version)
    if done:
        # An upgrade is news; creating a new file (or a plugin's tables) is not.
        level = logging.INFO if current > 0 or not fresh else logging.DEBUG
        log.log(level, "%s schema upgraded from version %d to %d", what, current, done[-1])
    return done


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate_core(conn: sqlite3.Connection, steps: Sequence[Migration]) -> list[int]:
    """Bring the core schema to the last step; returns the versions applied."""

    def record(c: sqlite3.Connection, version: int) -> None:
        c.execute(f"PRAGMA user_version = {int(version)}")  # transactional

    return _apply(conn, steps, user_version(conn), "store", record)


def plugin_version(conn: sqlite3.Connection, plugin: str) -> int:
    row = conn.execute("SELECT MAX(version) FROM plugin_migrations WHERE plugin = ?",
                       (plugin,)).fetchone()
    return int(row[0] or 0)


def migrate_plugin(conn: sqlite3.Connection, plugin: str, prefix: str,
                   steps: Sequence[Migration],
                   authorizer: Callable[..., int] | None = None) -> list[int]:
    """Apply a plugin's steps (``{prefix}`` replaced) not applied yet."""

    def record(c: sqlite3.Connection, version: int) -> None:
        c.execute("INSERT INTO plugin_migrations (plugin, version, applied_at) "
                  "VALUES (?, ?, ?)", (plugin, version, time.time()))

    return _apply(conn, steps, plugin_version(conn, plugin), f"plugin {plugin}", record,
                  render=lambda sql: sql.replace("{prefix}", prefix), authorizer=authorizer)

"""Real SQLite failures for tests: the writer's own connection is made to refuse
writes the way SQLite itself does (no mock: the store sees the sqlite3 errors a
full disk or a read-only file give)."""

from __future__ import annotations

import sqlite3

from cti.store.db import Store


def make_read_only(store: Store) -> None:
    """Every write fails: ``attempt to write a readonly database`` (SQLITE_READONLY)."""
    store.writer.call(lambda c: c.execute("PRAGMA query_only = ON"), own_transaction=True)


def make_full(store: Store) -> None:
    """A write that needs a new page fails: ``database or disk is full`` (SQLITE_FULL)."""
    def job(c: sqlite3.Connection) -> None:
        pages = c.execute("PRAGMA page_count").fetchone()[0]
        c.execute(f"PRAGMA max_page_count = {int(pages)}")
    store.writer.call(job, own_transaction=True)


def make_writable(store: Store) -> None:
    def job(c: sqlite3.Connection) -> None:
        c.execute("PRAGMA query_only = OFF")
        c.execute("PRAGMA max_page_count = 1073741823")
    store.writer.call(job, own_transaction=True)

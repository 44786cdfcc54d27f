"""The store: schema versions, durable writes through the one writer, repositories."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from pathlib import Path

import pytest

from cti.plugins.api import Migration
from cti.store.db import MIGRATIONS, SCHEMA, CallRecord, Store
from cti.store.migrations import MigrationError, migrate_core
from cti.store.plugin_storage import PluginStorage
from cti.store.sql_fence import PrefixError, outside_prefix
from cti.store.writer import StoreClosed


def old_database(path: Path) -> None:
    """What the code before schema versions made: its SCHEMA, user_version 0."""
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    db.execute("INSERT INTO calls (call_id, started_at, caller_number) VALUES ('c1', 1, '+31')")
    db.execute("INSERT INTO wrap_ups VALUES ('c1', 'emre', 'info', 'n', 2)")
    db.commit()
    db.close()


def test_a_v0_database_is_upgraded_in_place(tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "cti.sqlite3"
    old_database(path)
    with caplog.at_level(logging.INFO, logger="cti.store"):
        store = Store(path)
    assert f"store schema upgraded from version 0 to {MIGRATIONS[-1].version}" in caplog.text
    try:
        assert store.read("PRAGMA user_version")[0][0] == MIGRATIONS[-1].version
        old = store.get_call("c1")
        assert old is not None and store.wrap_up("c1")["code"] == "info"
        assert (old.kind, old.origin_call_id) == ("inbound", None)  # v3's defaults
        tables = {r[0] for r in store.read("SELECT name FROM sqlite_master")}
        assert {"flags", "advisor_skills", "audit", "timers", "plugin_migrations"} <= tables
        assert store.read("PRAGMA journal_mode")[0][0] == "wal"
    finally:
        store.close()
    # Opened again: nothing left to apply.
    db = sqlite3.connect(path, isolation_level=None)
    assert migrate_core(db, MIGRATIONS) == []
    db.close()


def test_a_failed_step_is_rolled_back_and_a_newer_database_refused(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    steps = [Migration(1, "CREATE TABLE a (x)"),
             Migration(2, "CREATE TABLE b (x); INSERT INTO nowhere VALUES (1)")]
    with pytest.raises(MigrationError, match="migration 2 failed"):
        migrate_core(db, steps)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert names == {"a"}  # b was rolled back with its step
    db.execute("PRAGMA user_version = 7")
    with pytest.raises(MigrationError, match="version 7"):
        migrate_core(db, steps[:1])
    with pytest.raises(MigrationError, match="ascending"):
        migrate_core(db, [Migration(2, ""), Migration(1, "")])
    db.close()


def test_sync_writes_are_committed_when_they_return(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    store.save_call(CallRecord("c", 1.0, caller_number="+34"))
    offer = store.add_offer("c", "emre", 2.0, {"why": "best"})
    store.set_offer_outcome(offer, "accepted", 3.0)
    # Another connection (another process would see the same) reads it at once.
    other = sqlite3.connect(tmp_path / "s.db")
    assert other.execute("SELECT outcome FROM offers WHERE offer_id = ?",
                         (offer,)).fetchone() == ("accepted",)
    assert other.execute("PRAGMA user_version").fetchone()[0] == MIGRATIONS[-1].version
    other.close()
    assert store.writer._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.close()


async def test_async_writes_group_commit_isolate_errors_and_close_waits(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    before = store.writer.commits
    gate = threading.Event()
    blocker = store.writer.submit(lambda c: gate.wait(5))  # hold the writer
    jobs = [store.writer.run(lambda c, i=i: c.execute(
        "INSERT INTO flags VALUES (?, 1, 'x', 0)", (f"f{i}",)).lastrowid) for i in range(20)]
    bad = store.writer.run(lambda c: c.execute("INSERT INTO nowhere VALUES (1)"))
    tasks = [asyncio.ensure_future(j) for j in [*jobs, bad]]
    await asyncio.sleep(0.05)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert blocker.result() is True
    assert isinstance(results[-1], sqlite3.OperationalError)
    assert len(store.flags.values()) == 20  # the bad job undid only itself
    assert store.writer.commits - before <= 3  # one commit for the waiting batch

    pending = [store.writer.submit(lambda c, i=i: c.execute(
        "INSERT INTO flags VALUES (?, 0, 'x', 0)", (f"g{i}",))) for i in range(50)]
    store.close()  # waits for them
    assert all(f.done() and f.exception() is None for f in pending)
    with pytest.raises(StoreClosed):
        store.writer.submit(lambda c: None)
    again = Store(tmp_path / "s.db")
    assert len(again.flags.values()) == 70
    again.close()


async def test_flags_skills_and_the_audit(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    await store.flags.set("crisis", True, "nadia", "10.0.0.5")
    await store.flags.set("crisis", False, "nadia")
    await store.skills.save("emre", {"languages": {"tr": 5}, "topics": {"visa": 2},
                                     "trainings": {"crisis": "2030-01-01"}}, "nadia")
    await store.audit.record("note", "michel", {"x": 1})
    await store.audit.for_plugin("crisis_line").record("opened", None, {"id": 3})
    store.close()

    store = Store(tmp_path / "s.db")
    flag = store.flags.all()["crisis"]
    assert (flag.value, flag.by) == (False, "nadia")
    assert store.skills.all()["emre"]["trainings"] == {"crisis": "2030-01-01"}
    lines = store.audit.lines()
    assert [x.action for x in lines] == ["plugin.crisis_line.opened", "note", "skills.set",
                                         "flag.set", "flag.set"]
    assert lines[-1].address == "10.0.0.5" and lines[-1].details == {"name": "crisis",
                                                                    "value": True}
    assert [x.action for x in store.audit.lines("flag.set", limit=1)] == ["flag.set"]
    assert len(store.audit.lines("plugin.")) == 1
    assert store.audit.lines(since=lines[0].at) == lines[:1]
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        await store.writer.run(lambda c: c.execute("DELETE FROM audit"))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        await store.writer.run(lambda c: c.execute("UPDATE audit SET who = 'x'"))
    store.close()


async def test_plugin_storage_namespace_and_migrations(tmp_path: Path) -> None:
    steps = [Migration(1, "CREATE TABLE {prefix}crises (id INTEGER PRIMARY KEY, what TEXT);"
                          "CREATE INDEX {prefix}crises_what ON {prefix}crises(what)"),
             Migration(2, "ALTER TABLE {prefix}crises ADD COLUMN level INTEGER DEFAULT 1")]
    store = Store(tmp_path / "s.db")
    ps = PluginStorage(store, "crisis_line", steps[:1])
    assert ps.prefix == "p_crisis_line_" and ps.applied == [1]
    row = await ps.write("INSERT INTO p_crisis_line_crises (what) VALUES (?)", ["flood"])
    assert row == 1
    assert await ps.write("UPDATE p_crisis_line_crises SET what = ?", ["storm"]) == 1
    store.close()

    store = Store(tmp_path / "s.db")
    ps = PluginStorage(store, "crisis_line", steps)
    assert ps.applied == [2]
    assert ps.query("SELECT * FROM p_crisis_line_crises") == [
        {"id": 1, "what": "storm", "level": 1}]
    versions = store.read("SELECT plugin, version FROM plugin_migrations ORDER BY version")
    assert [tuple(r) for r in versions] == [("crisis_line", 1), ("crisis_line", 2)]
    for sql in ("DELETE FROM calls", "UPDATE audit SET who = 1",
                "INSERT INTO p_other_x SELECT * FROM p_crisis_line_crises",
                "INSERT INTO p_crisis_line_crises (what) SELECT topic FROM calls",
                "DROP TABLE flags", "ATTACH DATABASE 'x' AS y"):
        with pytest.raises(PrefixError):
            await ps.write(sql)
    with pytest.raises(PrefixError):
        ps.query("SELECT * FROM calls")
    with pytest.raises(PrefixError):
        ps.query("DELETE FROM p_crisis_line_crises")
    with pytest.raises(PrefixError):
        PluginStorage(store, "evil", [Migration(1, "CREATE TABLE calls2 (x)")])
    assert store.read("SELECT COUNT(*) FROM plugin_migrations WHERE plugin = 'evil'")[0][0] == 0
    store.close()


def test_the_prefix_check_reads_names_not_text() -> None:
    p = "p_a_"
    assert outside_prefix("INSERT INTO p_a_x (a) VALUES ('DELETE FROM calls') "
                          "ON CONFLICT DO NOTHING -- FROM calls", p) == []
    assert outside_prefix('CREATE TABLE IF NOT EXISTS "p_a_y" (x); '
                          "CREATE TRIGGER p_a_t AFTER INSERT ON p_a_y BEGIN "
                          "DELETE FROM offers; END", p) == ["offers"]
    assert outside_prefix("WITH q AS (SELECT * FROM p_a_x) SELECT * FROM q, "
                          "json_each(q.a)", p) == []
    assert outside_prefix("SELECT * FROM main.calls JOIN [p_a_x] USING (id)", p) == ["calls"]
    assert outside_prefix("PRAGMA writable_schema = 1", p) == ["PRAGMA"]


async def test_sqlite_itself_refuses_what_the_text_check_misses(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    ps = PluginStorage(store, "a", [Migration(1, "CREATE TABLE {prefix}x (id INTEGER)")])
    assert outside_prefix("SELECT * FROM p_a_x, calls", "p_a_") == []  # a comma list
    assert store.read("SELECT * FROM p_a_x, calls") == []  # prepared and cached unguarded
    with pytest.raises(sqlite3.DatabaseError, match="prohibited|not authorized"):
        ps.query("SELECT * FROM p_a_x, calls")
    with pytest.raises(sqlite3.DatabaseError, match="prohibited|not authorized"):
        await ps.write("INSERT INTO p_a_x SELECT 1 FROM p_a_x, calls")
    # The core's statements work as before, before and after.
    store.save_call(CallRecord("c", 1.0))
    assert store.get_call("c") is not None
    assert await ps.write("INSERT INTO p_a_x VALUES (1)") == 1
    assert ps.query("SELECT COUNT(*) AS n FROM p_a_x") == [{"n": 1}]
    store.close()


def test_a_write_that_returned_survives_a_process_killed_right_after(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import asyncio, os, sys\n"
        "from pathlib import Path\n"
        "from cti.store.db import Store, CallRecord\n"
        "s = Store(Path(sys.argv[1]))\n"
        "asyncio.run(s.flags.set('crisis', True, 'nadia'))\n"
        "s.save_call(CallRecord('c9', 1.0))\n"
        "os.kill(os.getpid(), 9)  # no close, no exit handlers\n"
    )
    path = tmp_path / "k.db"
    proc = subprocess.run([sys.executable, "-c", code, str(path)], timeout=30,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == -9
    store = Store(path)
    assert store.flags.values() == {"crisis": True} and store.get_call("c9") is not None
    assert [x.action for x in store.audit.lines()] == ["flag.set"]
    store.close()


def test_the_store_files_are_readable_by_cti_only(tmp_path: Path) -> None:
    import stat

    from cti.store.db import Store

    store = Store(tmp_path / "var" / "cti.sqlite3")  # its migrations have written
    try:
        assert len(list((tmp_path / "var").iterdir())) >= 2  # the file and its WAL
        for f in (tmp_path / "var").iterdir():
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    finally:
        store.close()

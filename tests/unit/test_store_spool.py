"""A failed store write never raises into call handling (issue 12): queued, in
order, bounded, retried, and loud in its status."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cti.store.db import RESTART_END_REASON, CallRecord, Store
from cti.store.spool import Spool, Write
from tests.store_faults import make_full, make_read_only, make_writable


def _until(cond: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.01)


def test_a_full_disk_queues_the_call_path_writes_in_order(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(tmp_path / "s.db")
    store.save_call(CallRecord("warm", 1.0))
    make_full(store)
    big = [{"leg": "x" * 2000}]
    written = [store.save_call(CallRecord(f"c{i}", 2.0, legs=big)) for i in range(20)]
    assert False in written  # the real "database or disk is full" came
    first_failed = written.index(False)
    assert not any(written[first_failed:])  # every write after the first failure queues
    offer = store.add_offer("c19", "emre", 3.0, {"why": "best"})
    store.set_offer_outcome(offer, "accepted", 4.0, "c19")
    store.save_wrap_up("c19", "emre", "info", "note", 5.0)
    status = store.spool.status()
    assert status["ok"] is False and status["last_write_ok"] is False
    assert "database or disk is full" in status["error"]
    assert status["pending"] == 20 - first_failed + 3
    assert [m for m in caplog.messages if "store write failed" in m and "call_id=c" in m]
    assert store.get_call("c19") is None

    make_writable(store)
    _until(lambda: store.spool.status()["ok"])  # the retry thread wrote them all
    assert all(store.get_call(f"c{i}") is not None for i in range(20))
    (row,) = store.offers("c19")
    assert (row["offer_id"], row["outcome"]) == (offer, "accepted")
    assert store.wrap_up("c19")["code"] == "info"  # type: ignore[index]
    assert any("store writes again" in m for m in caplog.messages)
    store.close()


def test_offer_ids_go_on_after_a_restart(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    first = store.add_offer("c", "emre", 1.0, {})
    store.close()
    store = Store(tmp_path / "s.db")
    assert store.add_offer("c", "emre", 2.0, {}) == first + 1
    store.close()


def _insert(call_id: str) -> Write:
    return Write(call_id, "call", "INSERT OR REPLACE INTO calls (call_id, started_at, "
                 "end_reason) VALUES (?, 1, ?)", (call_id, call_id))


def test_past_the_bound_the_oldest_writes_go_to_the_journal(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    make_read_only(store)
    journal = tmp_path / "j.jsonl"
    spool = Spool(store.writer, max_pending=3, retry_first_s=60, journal=journal)
    for i in range(5):
        assert spool.write(_insert(f"c{i}")) is False
    assert spool.status()["pending"] == 3 and spool.journaled == 2 and spool.dropped == 0
    assert "readonly" in (spool.last_error or "")
    assert len(journal.read_text().splitlines()) == 2
    make_writable(store)
    assert spool.flush()
    assert not journal.exists()
    assert [r["call_id"] for r in store.read("SELECT call_id FROM calls ORDER BY 1")] == [
        f"c{i}" for i in range(5)]
    spool.close()
    store.close()


def test_without_a_journal_past_the_bound_is_lost_loudly(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(tmp_path / "s.db")
    make_read_only(store)
    spool = Spool(store.writer, max_pending=2, retry_first_s=60)
    for i in range(3):
        spool.write(_insert(f"c{i}"))
    assert spool.dropped == 1 and any("c0 is lost" in m for m in caplog.messages)
    make_writable(store)
    spool.close()
    store.close()


def test_what_is_unwritten_at_close_is_written_at_the_next_start(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    store.save_call(CallRecord("c", 1.0))  # its start
    make_read_only(store)
    store.save_call(CallRecord("c", 1.0, ended_at=2.0, end_reason="caller_hangup"))
    offer = store.add_offer("c", "emre", 1.5, {"why": "best"})
    store.close()  # still read-only: the journal keeps them
    assert (tmp_path / "s.db.unwritten.jsonl").exists()
    store = Store(tmp_path / "s.db")
    assert not (tmp_path / "s.db.unwritten.jsonl").exists()
    rec = store.get_call("c")
    assert rec is not None and rec.end_reason == "caller_hangup"
    assert store.close_unended(9.0) == []  # its end came from the journal first
    assert [o["offer_id"] for o in store.offers("c")] == [offer]
    assert store.add_offer("c", "emre", 3.0, {}) == offer + 1
    store.close()


def test_calls_without_an_end_are_closed_at_start(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    store.save_call(CallRecord("done", 1.0, ended_at=2.0, end_reason="caller_hangup"))
    store.save_call(CallRecord("in_flight", 1.0, answered_at=1.5))
    assert store.close_unended(9.0) == ["in_flight"]
    rec = store.get_call("in_flight")
    assert rec is not None and (rec.ended_at, rec.end_reason) == (9.0, RESTART_END_REASON)
    done = store.get_call("done")
    assert done is not None and done.end_reason == "caller_hangup"
    assert store.close_unended(10.0) == []
    store.close()

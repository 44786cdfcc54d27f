"""The call path's writes: they never raise into call handling.

A call's record, its offers' decision traces and its wrap-ups are written through
the :class:`Spool`. While the store writes, a write is committed before the method
returns (as every store write is). When a write fails (``database or disk is
full``, a read-only file, an I/O error: any ``sqlite3`` error), it is kept in a
bounded in-memory queue, in order, and so is every write after it; a thread
retries the queue with backoff and writes it all in one transaction once the store
takes writes again. The failure is loud: one error log line when it starts (with
the call id), one when it is over, and :meth:`Spool.status` for ``/health`` and
``/metrics``.

A write is SQL and its parameters, so a queued write is exactly what would have
been written. Past ``max_pending`` the oldest queued write goes to the fallback
journal (``journal``: JSON lines next to the store file), and so does what is
still queued when the store closes; the next start writes the journal into the
store first (:func:`replay_journal`). A write neither the store nor the journal
took is counted in ``dropped`` and logged: memory stays bounded whatever the
outage lasts.
"""

from __future__ import annotations

import collections
import json
import logging
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cti.store.writer import StoreClosed, Writer

log = logging.getLogger("cti.store")

MAX_PENDING = 10_000
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0


@dataclass(frozen=True)
class Write:
    call_id: str  # the call the write is about (an advisor's name for their state)
    what: str  # "call", "offer", "offer_outcome", "wrap_up", "advisor_state": for the log
    sql: str
    params: tuple[Any, ...]


class Spool:
    def __init__(self, writer: Writer, max_pending: int = MAX_PENDING,
                 retry_first_s: float = RETRY_FIRST_S, retry_max_s: float = RETRY_MAX_S,
                 journal: Path | None = None) -> None:
        self._writer = writer
        self.journal = journal
        self.journaled = 0  # writes put in the fallback journal
        self._journal_pending = False  # this run put writes there not written since
        self._max = max_pending
        self._first = retry_first_s
        self._max_delay = retry_max_s
        self._pending: collections.deque[Write] = collections.deque()
        self._lock = threading.Lock()  # the queue and the figures
        self._flushing = threading.Lock()  # one flush at a time
        self._wake = threading.Event()  # something was queued
        self._stop = threading.Event()
        self._closed = False
        self.failures = 0  # writes that failed (each retry of the queue counts one)
        self.dropped = 0  # writes neither the store nor the journal took
        self.written = 0  # writes committed
        self.last_error: str | None = None
        self.failing_since: float | None = None
        self.last_ok_at: float | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ writes
    def write(self, w: Write) -> bool:
        """Commit ``w`` now (True), or queue it behind a failed write (False).

        From the event loop (the call path's one thread): once something is
        queued, a write only joins the queue, it never waits for a retry."""
        with self._lock:
            if self._pending or self._closed:
                self._queue(w)
                return False
        try:
            self._writer.call(lambda c: c.execute(w.sql, w.params))
        except (sqlite3.Error, StoreClosed) as e:
            with self._lock:
                self._failed(e, w)
                self._queue(w)
            return False
        self.written += 1
        self.last_ok_at = time.time()
        return True

    def _queue(self, w: Write) -> None:
        self._pending.append(w)
        if len(self._pending) > self._max:
            gone = self._pending.popleft()
            self._to_journal([gone], f"the queue of unwritten writes is full ({self._max})")
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._retry_loop, name="cti-store-spool",
                                            daemon=True)
            self._thread.start()
        self._wake.set()

    def _failed(self, e: BaseException, w: Write | None) -> None:
        self.failures += 1
        self.last_error = f"{type(e).__name__}: {e}"
        if self.failing_since is None:
            self.failing_since = time.time()
            log.error("store write failed (%s of call_id=%s): %s; call handling goes on, "
                      "writes are queued in memory (up to %d) until the store takes writes "
                      "again", w.what if w else "?", w.call_id if w else "?",
                      self.last_error, self._max)

    # ------------------------------------------------------------ retries
    def flush(self) -> bool:
        """Write every queued write in one transaction; True when nothing is left.
        The queue's lock is not held while writing: the loop goes on queueing."""
        with self._flushing:
            with self._lock:
                batch = list(self._pending)
                journaled = self._journal_pending
            if not batch and not journaled:
                return True
            # The journal's writes are older than the queue's: they go first.
            older = read_journal(self.journal) if journaled and self.journal else []

            def job(c: sqlite3.Connection) -> None:
                for w in [*older, *batch]:
                    c.execute(w.sql, tuple(w.params))

            try:
                self._writer.call(job)
            except (sqlite3.Error, StoreClosed) as e:
                with self._lock:
                    self._failed(e, (batch or older)[0])
                return False
            if older and self.journal is not None:
                self.journal.unlink(missing_ok=True)
            with self._lock:
                self._journal_pending = False
                # Only appended to since: the batch is still at the front, unless some
                # of it was dropped past max_pending meanwhile.
                for w in batch:
                    if self._pending and self._pending[0] is w:
                        self._pending.popleft()
                self.written += len(batch) + len(older)
                self.last_ok_at = time.time()
                if self.failing_since is not None:
                    log.error("store writes again: %d queued writes written after %.1f s "
                              "of failures (%d dropped)", len(batch) + len(older),
                              self.last_ok_at - self.failing_since, self.dropped)
                self.failing_since = None
                self.last_error = None
                return not self._pending

    def _retry_loop(self) -> None:
        delay = self._first
        while not self._closed:
            if not self._pending:  # until something is queued
                self._wake.wait()
                self._wake.clear()
                delay = self._first
                continue
            if self._stop.wait(delay):
                return
            ok = self.flush()
            delay = self._first if ok else min(delay * 2, self._max_delay)

    def close(self) -> None:
        """A last try; what is still queued is logged as lost."""
        self.flush()
        with self._lock:
            self._closed = True
            left = list(self._pending)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if left:
            self._to_journal(left, "the store closed with writes unwritten")

    def _to_journal(self, writes: list[Write], why: str) -> None:
        if self.journal is not None:
            try:
                with self.journal.open("a", encoding="utf-8") as f:
                    for w in writes:
                        f.write(json.dumps(asdict(w)) + "\n")
                    f.flush()
            except (OSError, TypeError, ValueError) as e:
                log.error("store: %s, and the journal %s failed: %s", why, self.journal, e)
            else:
                self.journaled += len(writes)
                self._journal_pending = True
                log.error("store: %s: %d writes (call_id=%s...) put in %s, written at the "
                          "next start", why, len(writes), writes[0].call_id, self.journal)
                return
        self.dropped += len(writes)
        for w in writes:
            log.error("store: %s: the %s of call_id=%s is lost", why, w.what, w.call_id)

    # ------------------------------------------------------------ health
    @property
    def pending(self) -> int:
        return len(self._pending)

    def status(self) -> dict[str, Any]:
        return {
            "ok": self.failing_since is None and not self._pending,
            "last_write_ok": self.failing_since is None,
            "error": self.last_error,
            "failing_since": self.failing_since,
            "pending": len(self._pending),
            "journaled": self.journaled,
            "dropped": self.dropped,
            "failures": self.failures,
            "last_ok_at": self.last_ok_at,
        }


def read_journal(journal: Path) -> list[Write]:
    if not journal.exists():
        return []
    lines = journal.read_text(encoding="utf-8").splitlines()
    return [Write(**json.loads(line)) for line in lines if line.strip()]


def replay_journal(conn: sqlite3.Connection, journal: Path) -> int:
    """At start, before anything else writes: the journal's writes, in order, in one
    transaction; the journal is removed once they are committed. Returns how many."""
    writes = read_journal(journal)
    if not writes:
        journal.unlink(missing_ok=True)
        return 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        for w in writes:
            conn.execute(w.sql, tuple(w.params))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    journal.unlink()
    log.warning("store: %d writes of the fallback journal %s written", len(writes), journal)
    return len(writes)

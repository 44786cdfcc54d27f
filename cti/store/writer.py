"""The store's single writer: one thread, one connection, every write committed
with ``synchronous=FULL`` before anyone is told it happened.

Why one thread: SQLite takes one writer at a time anyway, and an fsync must not
stall the event loop (the controller's signalling runs there). Jobs are callables
``fn(conn) -> result`` run in the writer thread, in the order they were submitted.

Group commit: the writer takes every job that is waiting, runs each in its own
SAVEPOINT (a job that raises undoes only its own changes and gets the error), and
commits them all with one fsync; then it resolves their futures. Under load this
turns N fsyncs into one; alone, a job costs one commit.

- ``await writer.run(fn)``: from the event loop; returns after the commit.
- ``writer.call(fn)``: blocking; for the store's synchronous methods, which are
  called from the loop: the loop waits for one commit (see docs/architecture.md,
  "State that survives a restart", for what that costs).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

log = logging.getLogger("cti.store")

T = TypeVar("T")
Job = tuple[Callable[[sqlite3.Connection], Any], "Future[Any]", bool]  # bool: own transaction

_MAX_BATCH = 256


class StoreClosed(RuntimeError):
    """A write submitted after the store was closed."""


class Writer:
    """Owns ``conn`` (opened with ``check_same_thread=False``, autocommit) from now on."""

    def __init__(self, conn: sqlite3.Connection, name: str = "cti-store-writer") -> None:
        self._conn = conn
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._closed = False
        self._lock = threading.Lock()  # submit vs close
        self.commits = 0  # transactions committed (one per batch)
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[sqlite3.Connection], T], *,
               own_transaction: bool = False) -> Future[T]:
        """Queue ``fn``; ``own_transaction``: it runs alone, outside the writer's
        transaction, and begins and commits its own (the migrations do)."""
        fut: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise StoreClosed("the store is closed")
            self._jobs.put((fn, fut, own_transaction))
        return fut

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in the writer's transaction; returns once it is committed."""
        return await asyncio.wrap_future(self.submit(fn))

    def call(self, fn: Callable[[sqlite3.Connection], T], *,
             own_transaction: bool = False) -> T:
        """The blocking form of :meth:`run` (from any thread but the writer's)."""
        return self.submit(fn, own_transaction=own_transaction).result()

    def close(self) -> None:
        """Waits for every write submitted so far, then closes the connection."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._jobs.put(None)
        self._thread.join()
        self._conn.close()

    # ------------------------------------------------------------ the thread
    def _loop(self) -> None:
        stop = False
        while not stop:
            first = self._jobs.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < _MAX_BATCH:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                batch.append(job)
            group: list[Job] = []
            for job in batch:
                if job[2]:
                    self._run_batch(group)
                    group = []
                    self._run_alone(job)
                else:
                    group.append(job)
            self._run_batch(group)

    def _run_alone(self, job: Job) -> None:
        fn, fut, _ = job
        if not fut.set_running_or_notify_cancel():
            return
        try:
            value = fn(self._conn)
        except BaseException as e:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            fut.set_exception(e)
        else:
            self.commits += 1
            fut.set_result(value)

    def _run_batch(self, batch: list[Job]) -> None:
        if not batch:
            return
        conn = self._conn
        results: list[tuple[Future[Any], Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, fut, _ in batch:
                if not fut.set_running_or_notify_cancel():
                    continue  # its caller gave up before it ran
                conn.execute("SAVEPOINT job")
                try:
                    value = fn(conn)
                except BaseException as e:  # the job's own error goes to its caller
                    if not conn.in_transaction:
                        # SQLite rolled the whole transaction back (SQLITE_FULL, an I/O
                        # error): every job of the batch fails, with this error.
                        raise
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    results.append((fut, None, e))
                else:
                    conn.execute("RELEASE job")
                    results.append((fut, value, None))
            conn.execute("COMMIT")
            self.commits += 1
        except BaseException as e:  # the commit itself failed: nobody's write is in
            if isinstance(e, sqlite3.Error):  # the disk: the callers see it (and log it)
                log.warning("store commit failed (%d writes not committed): %s",
                            len(batch), e)
            else:
                log.exception("store commit failed (%d writes not committed)", len(batch))
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for _fn, fut, _ in batch:
                if fut.running() or fut.set_running_or_notify_cancel():
                    fut.set_exception(e)
            return
        for fut, value, error in results:
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(value)

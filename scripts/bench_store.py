"""Commits per second of the store's writer on this disk (synchronous=FULL, WAL).

    .venv/bin/python scripts/bench_store.py [DIR] [SECONDS]

Prints: raw sqlite3 commits/s with synchronous=NORMAL and FULL, then the writer
with one write in flight (each awaited: what one API request costs) and with 32
in flight (group commit: writes per second and commits per second).
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from cti.store.db import Store


def raw(path: Path, sync: str, seconds: float) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={sync}")
    db.execute("CREATE TABLE IF NOT EXISTS t (x)")
    n, end = 0, time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < end:
        db.execute("BEGIN")
        db.execute("INSERT INTO t VALUES (?)", (n,))
        db.execute("COMMIT")
        n += 1
    db.close()
    return n / (time.perf_counter() - start)


async def writer(path: Path, in_flight: int, seconds: float) -> tuple[float, float]:
    store = Store(path)
    commits0 = store.writer.commits
    n = 0
    end = time.perf_counter() + seconds
    start = time.perf_counter()

    async def one() -> None:
        nonlocal n
        while time.perf_counter() < end:
            await store.audit.record("bench", "bench", {"n": n})
            n += 1

    await asyncio.gather(*(one() for _ in range(in_flight)))
    took = time.perf_counter() - start
    commits = store.writer.commits - commits0
    store.close()
    return n / took, commits / took


def main() -> None:
    where = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        d = Path(tmp)
        print(f"disk of {where}")
        for sync in ("NORMAL", "FULL"):
            print(f"raw sqlite3, synchronous={sync}: {raw(d / f'raw-{sync}.db', sync, seconds):8.0f}"
                  " commits/s")
        for k in (1, 32):
            writes, commits = asyncio.run(writer(d / f"w{k}.db", k, seconds))
            print(f"writer, {k:2d} in flight: {writes:8.0f} writes/s, {commits:8.0f} commits/s")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Measure the spine on this machine: answer time, worker memory, idle CPU.

Starts the whole gateway (Kamailio, workers, API) on free ports in a temp dir,
places calls with cti's scripted phone, and prints a markdown table for
docs/benchmarks.md. Usage:

    .venv/bin/python scripts/measure_spine.py [--calls 30] [--idle-s 30] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.gateway_harness import hotline_uri, running_gateway  # noqa: E402
from tests.peers.phone import Phone  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def answer_times(gw, calls: int) -> tuple[list[float], int]:  # noqa: ANN001
    """INVITE sent → 200 OK received, as the caller's PJSIP saw it (ms)."""
    times: list[float] = []
    answered = 0
    async with Phone(name="+442079460000") as caller:
        for _ in range(calls):
            leg = uuid.uuid4().hex
            await caller.command("dial", leg=leg, uri=hotline_uri(gw))
            t0 = time.time()
            ev = await caller.wait_for("leg.state", leg=leg, state="confirmed", timeout=10)
            times.append((ev["ts"] - t0) * 1000)
            answered += 1
            await caller.command("hangup", leg=leg)
            await caller.wait_for("leg.state", leg=leg, state="disconnected", timeout=10)
            await asyncio.sleep(0.05)  # the phone refuses > 20 dials in 0.6 s (ioqueue slots)
    return times, answered


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=30)
    ap.add_argument("--idle-s", type=float, default=30)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        async with running_gateway(Path(tmp), workers=args.workers) as gw:
            pids = {w: link.process.pid for w, link in gw.pool.links.items()}
            edge_pid = gw.edge.pid
            times, answered = await answer_times(gw, args.calls)
            await asyncio.sleep(1)  # let the last call's objects be freed
            before = {w: cpu_ticks(p) for w, p in pids.items()}
            edge_before = cpu_ticks(edge_pid)
            t0 = time.monotonic()
            await asyncio.sleep(args.idle_s)
            span = time.monotonic() - t0
            idle = {w: 100 * (cpu_ticks(p) - before[w]) / CLK_TCK / span for w, p in pids.items()}
            edge_idle = 100 * (cpu_ticks(edge_pid) - edge_before) / CLK_TCK / span
            rss = {w: rss_kib(p) for w, p in pids.items()}

    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"calls answered: {answered}/{args.calls}")
    print(f"INVITE→200 OK at the caller (ms): p50 {statistics.median(times):.1f}, "
          f"p95 {pct(times, 0.95):.1f}, max {max(times):.1f}")
    for w in pids:
        print(f"worker {w}: RSS {rss[w] / 1024:.1f} MiB, idle CPU {idle[w]:.3f} % of a core "
              f"over {span:.0f} s")
    print(f"kamailio main process idle CPU {edge_idle:.3f} % of a core")


if __name__ == "__main__":
    asyncio.run(main())

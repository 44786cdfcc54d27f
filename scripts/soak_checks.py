"""The soak's memory samples and its end checks (scripts/soak.py)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

# The controller may grow this much from the first window to the last (a leak of a
# few KB per call shows over 30 minutes; the bus's replay buffer fills in the first).
MAX_CONTROLLER_GROWTH = 0.20
STUCK = ("reserved", "on_call", "wrap_up")  # states routing sets and must undo


def rss_mb(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) / 1024 if m else None


class Memory:
    """RSS of the controller (this process: the gateway runs in it) and of each
    media worker, sampled from /proc."""

    def __init__(self, controller_pid: int) -> None:
        self.pid = controller_pid
        self.t0 = time.monotonic()
        self.samples: list[tuple[float, float, dict[str, float]]] = []
        # The bus keeps the last 10,000 events for WebSocket replay (cti/events.py): the
        # controller grows until it is full; shown next to the RSS to tell that apart.
        self.replay: list[tuple[float, int]] = []

    async def sample(self, gw: Any) -> None:
        workers = {w.worker_id: rss_mb(w.process.pid) for w in gw.pool.links.values()
                   if w.process is not None and w.process.returncode is None}
        ctrl = rss_mb(self.pid)
        self.replay.append((time.monotonic() - self.t0, len(gw.bus._recent)))
        if ctrl is not None:
            self.samples.append((time.monotonic() - self.t0, ctrl,
                                 {k: v for k, v in workers.items() if v is not None}))

    async def sample_loop(self, gw: Any, every: float) -> None:
        while True:
            await self.sample(gw)
            await asyncio.sleep(every)

    def last_controller_mb(self) -> float:
        return self.samples[-1][1] if self.samples else 0.0

    def windows(self, minutes: float) -> tuple[list[Any], list[Any]]:
        """Samples of the first and of the last window: 5 minutes, or a third of a
        short run."""
        span = min(300.0, minutes * 60 / 3)
        end = self.samples[-1][0] if self.samples else 0
        first = [s for s in self.samples if s[0] <= span]
        last = [s for s in self.samples if s[0] >= end - span]
        return first, last


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


async def _settle(gw: Any, timeout: float = 45) -> None:
    """Wait for the calls to end, wrap-ups to run out and the store to be written."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [gw.flow.distributor.advisor_state(a).value
                  for a in ("michel", "dalia", "sofia", "emre")]
        if not gw.flow.calls.all() and not any(s in STUCK for s in states) \
                and gw.store.spool.status()["pending"] == 0:
            return
        await asyncio.sleep(0.5)


def _records(path: Path, numbers: list[str]) -> list[sqlite3.Row]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        marks = ",".join("?" * len(numbers))
        return con.execute(f"SELECT call_id, caller_number, ended_at, end_reason FROM calls "
                           f"WHERE caller_number IN ({marks}) AND kind = 'inbound'",
                           numbers).fetchall()
    finally:
        con.close()


def _log_errors(path: str) -> tuple[int, int, list[str]]:
    errors = tracebacks = 0
    kinds: dict[str, int] = {}
    with contextlib.suppress(OSError), open(path, errors="replace") as f:
        for line in f:
            if " ERROR " in line:
                errors += 1
                key = re.sub(r"\b[0-9a-f]{8,}\b|\d+", "#", line.split(" ERROR ", 1)[1])[:90]
                kinds[key.strip()] = kinds.get(key.strip(), 0) + 1
            if line.startswith("Traceback"):
                tracebacks += 1
    top = [f"{n:5d} x {k}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:8]]
    return errors, tracebacks, top


async def final_checks(gw: Any, soak: Any, memory: Memory, slots0: dict[str, int],
                       args: argparse.Namespace) -> int:
    await _settle(gw)
    s = soak.stats
    checks: list[tuple[str, bool, str]] = []

    numbers = list(s.reached_by_number)
    rows = _records(Path(gw.settings.store.path), numbers) if numbers else []
    unended = [r["call_id"] for r in rows if r["ended_at"] is None or not r["end_reason"]]
    checks.append(("every call reached has a record", len(rows) == s.c["reached"],
                   f"{s.c['reached']} reached, {len(rows)} rows"))
    checks.append(("every record ended with a reason", not unended,
                   f"{len(unended)} unended {unended[:3]}"))

    settings = gw.settings
    async with httpx.AsyncClient(base_url=f"http://{settings.http.host}:{settings.http.port}",
                                 timeout=10) as http:
        tok = (await http.post("/api/v1/login", json={"username": "nadia",
                                                      "password": "demo-nadia"})).json()["token"]
        auth = {"Authorization": f"Bearer {tok}"}
        active = (await http.get("/api/v1/calls", headers=auth)).json()
        health = (await http.get("/api/v1/health")).json()
        metrics = (await http.get("/metrics")).text
    checks.append(("no call left active (GET /calls)", active == [], json.dumps(active)[:200]))

    states = {a: gw.flow.distributor.advisor_state(a).value for a in soak.advisors}
    wrong = {a: st for a, st in states.items() if st != soak.advisors[a].chosen}
    checks.append(("every advisor in the state they chose", not wrong,
                   json.dumps(states)))

    slots = {w: gw.flow._free_calls(w) for w in gw.pool.links}
    loads = {d["duid"]: d["load"] for d in await gw.rpc.dispatcher_list()}
    checks.append(("no worker slot held (controller)", slots == slots0,
                   f"free {slots}, at start {slots0}"))
    checks.append(("no worker slot held (edge dispatcher load)",
                   all(v == 0 for v in loads.values()), json.dumps(loads)))

    first, last = memory.windows(args.minutes)
    c_first, c_last = _mean([x[1] for x in first]), _mean([x[1] for x in last])
    growth = (c_last - c_first) / c_first if c_first else 0.0
    checks.append(("controller memory flat", growth <= MAX_CONTROLLER_GROWTH,
                   f"{c_first:.1f} -> {c_last:.1f} MB ({growth:+.1%}, limit "
                   f"{MAX_CONTROLLER_GROWTH:.0%})"))

    checks.append(("/health ok at the end", health.get("status") == "ok",
                   health.get("status", "?") + " " + "; ".join(health.get("reasons", []))))
    recovered = [k for k in s.kills if k["recovered_s"] is not None]
    checks.append(("every killed worker came back", len(recovered) == len(s.kills),
                   f"{len(s.kills)} kills, {len(recovered)} recoveries"))
    checks.append(("no soak call went wrong", not s.errors, "; ".join(s.errors[:3])))
    errors, tracebacks, top = _log_errors(args.log)
    checks.append(("no Traceback in the log", tracebacks == 0, f"{tracebacks}"))

    _print_figures(soak, memory, first, last, health, metrics, errors, top)
    print("\nchecks:")
    for name, ok, detail in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name:45s} {detail}")
    failed = [c for c in checks if not c[1]]
    print(f"\nsoak: {'FAILED' if failed else 'passed'} "
          f"({len(checks) - len(failed)}/{len(checks)} checks)", flush=True)
    return 1 if failed else 0


def _print_figures(soak: Any, memory: Memory, first: list[Any], last: list[Any],
                   health: dict[str, Any], metrics: str, errors: int, top: list[str]) -> None:
    s = soak.stats
    c = s.c
    print("\nfigures:")
    for key in ("placed", "reached", "answered", "transferred", "advisor_answers",
                "advisor_answer_late", "wrap_ups_sent", "breaks", "set_away_by_gateway",
                "ws_connects", "ws_aborts", "ws_events"):
        print(f"  {key:28s} {c[key]}")
    print(f"  {'refused (SIP code)':28s} {dict(s.refused)}")
    print(f"  {'transfers (plan_status)':28s} "
          f"{ {k: v for k, v in c.items() if k.startswith(('transfer_', 'consult_'))} }")
    for why, n in s.refusals.most_common(6):
        print(f"      {n:4d} x {why}")
    print(f"  {'cut short by a kill':28s} {c['cut_short_by_a_kill']}")
    print(f"  {'hang-ups (side:phase)':28s} {dict(sorted(s.hangups.items()))}")
    print(f"  {'end reasons (call.ended)':28s} {dict(soak.tracker.end_reasons.most_common())}")
    times = [k["recovered_s"] for k in s.kills if k["recovered_s"] is not None]
    print(f"  {'worker kills':28s} {len(s.kills)} (calls on them "
          f"{sum(k['calls'] for k in s.kills)}), recoveries {len(times)}, "
          f"max {max(times, default=0):.2f} s")
    print(f"  {'memory samples':28s} {len(memory.samples)}")
    for label, win in (("first window", first), ("last window", last)):
        ws: dict[str, list[float]] = {}
        for _, _, per in win:
            for w, v in per.items():
                ws.setdefault(w, []).append(v)
        print(f"  {'rss ' + label:28s} controller {_mean([x[1] for x in win]):.1f} MB, "
              + ", ".join(f"{w} {_mean(v):.1f} MB" for w, v in sorted(ws.items())))
    for label, win in (("first window", first), ("last window", last)):
        if win:
            held = [n for t, n in memory.replay if win[0][0] <= t <= win[-1][0]]
            print(f"  {'bus replay ' + label:28s} {min(held, default=0)}-"
                  f"{max(held, default=0)} events held")
    print(f"  {'log ERROR lines':28s} {errors}")
    for line in top:
        print(f"      {line}")
    print(f"  {'/health':28s} {json.dumps(health)[:600]}")
    wanted = [ln for ln in metrics.splitlines()
              if ln.startswith(("cti_worker_restarts", "cti_store_", "cti_degraded"))]
    print(f"  {'/metrics':28s} " + "; ".join(wanted))

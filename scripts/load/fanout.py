"""``python -m scripts.load.fanout [--clients 1000] [--rate 10] [--seconds 20]``: the
WebSocket fan-out benchmark (issue 15): ``clients`` supervisors' event sockets (they
see every event) in a few client processes, advisors changing their away reason
through the API at ``rate`` a second (one ``agent.state`` event each), and one more
client that stops reading after its handshake. Prints event -> client p50/p99, the
deliveries missed, the controller's CPU, and what became of the stalled client
(closed by the gateway, with which code). Exit 1 when a delivery was missed, a
client failed to connect or was closed, or the stalled one was not closed.

The gateway is a ``cti serve`` of the load generator's config (one worker, no
rtpengine): the fan-out is the controller's work alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import queue
import shutil
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import yaml

from scripts.load import api, procstat
from scripts.load.gwconfig import ADVISOR_PASSWORD
from scripts.load.scenarios import Plan, Run
from scripts.load.sipp import percentile
from scripts.load.wsclients import (
    ClientsResult,
    StalledClient,
    close_code,
    frames,
    start_processes,
)

MAX_CLIENTS = 5000
MAX_SECONDS = 300
ADVISORS = 10
REASONS = ("break", "lunch")
SLOW_CLOSES = "cti_websocket_slow_closes_total"
SLOW_CLOSE_CODE = 4408  # cti/api/ws.py: the gateway closes a client that stopped reading


@dataclass
class FanoutPlan:
    clients: int = 1000
    rate: float = 10.0  # events a second
    seconds: float = 20.0
    processes: int = 4  # client processes
    send_queue: int = 0  # the gateway's http.ws_send_queue; 0: its default
    keep: bool = False


@dataclass
class FanoutResult:
    plan: FanoutPlan
    connected: int = 0
    failed_connects: int = 0
    closed_early: int = 0
    events: int = 0  # agent.state events any client saw
    deliveries: int = 0
    missing: int = 0  # events a connected client did not get
    latencies_ms: list[float] = field(default_factory=list)
    window_s: float = 0.0
    usage: list[procstat.RoleUsage] = field(default_factory=list)
    stalled_events: int = 0
    stalled_close: tuple[int, str] | None = None
    slow_closes: float | None = None  # the gateway's metric; None: it has none
    errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return (self.failed_connects + self.closed_early + self.missing + len(self.errors)
                + (0 if self.stalled_close and self.stalled_close[0] == SLOW_CLOSE_CODE
                   else 1))


def summarise(res: FanoutResult, parts: list[ClientsResult]) -> None:
    """Add the client processes' results up: deliveries, and what each connected
    client missed of the events any client saw."""
    every: set[int] = set()
    for part in parts:
        res.connected += part.connected
        res.failed_connects += part.failed_connects
        res.closed_early += part.closed_early
        res.latencies_ms.extend(part.latencies_ms)
        for seqs in part.seqs:
            every |= seqs
    res.events = len(every)
    for part in parts:
        for seqs in part.seqs:
            res.deliveries += len(seqs)
            res.missing += len(every - seqs)


def metric(text: str, name: str) -> float | None:
    """One sample of a /metrics page (``name value``); None if absent."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def stalled_outcome(data: bytes) -> tuple[int, tuple[int, str] | None]:
    """From what the stalled client read once it read again: how many events it got
    and the close frame's (code, reason), if one came."""
    events, close = 0, None
    for op, payload in frames(data):
        if op == 0x1 and b'"seq"' in payload:
            events += 1
        elif op == 0x8:
            close = close_code(payload)
    return events, close


def table(res: FanoutResult) -> str:
    p, lat = res.plan, res.latencies_ms
    cpu = {u.role: u for u in res.usage}
    ctl = cpu.get("controller")
    stalled = ("not closed" if res.stalled_close is None
               else f"closed {res.stalled_close[0]} ({res.stalled_close[1]})")
    out = [
        f"fan-out: {p.clients} supervisors' WebSockets, {p.rate:g} events/s for "
        f"{p.seconds:g} s, {p.processes} client processes; measured over "
        f"{res.window_s:.1f} s", "",
        "| what | figure |", "|---|---|",
        f"| failures | {res.failed} |",
        f"| clients | {res.connected} connected, {res.failed_connects} failed to connect, "
        f"{res.closed_early} closed by the gateway |",
        f"| events | {res.events} agent.state; {res.deliveries} deliveries, "
        f"{res.missing} missed |",
        f"| event → client ({len(lat)}) | p50 {percentile(lat, 50):.1f} ms, "
        f"p99 {percentile(lat, 99):.1f} ms, max {max(lat, default=float('nan')):.1f} ms |",
        f"| controller CPU / PSS | {ctl.cpu_pct if ctl else float('nan'):.1f} % of a core / "
        f"{ctl.pss_mib if ctl else float('nan'):.0f} MiB |",
        f"| stalled client | {res.stalled_events} events read; {stalled}; "
        f"gateway's {SLOW_CLOSES}: {res.slow_closes} |",
        "", "| role | processes | CPU % of a core | PSS MiB |", "|---|---|---|---|",
        *(f"| {u.role} | {u.processes} | {u.cpu_pct:.1f} | {u.pss_mib:.1f} |"
          for u in res.usage),
    ]
    out += [f"error: {e}" for e in res.errors]
    return "\n".join(out)


async def _events(r: Run, tokens: list[str], plan: FanoutPlan) -> int:
    """Away reasons changed at the plan's rate, round robin, each request on its
    schedule (not after the previous answer); the number refused or not answered."""
    async def change(i: int) -> bool:
        await asyncio.sleep(max(0.0, start + i / plan.rate - time.monotonic()))
        try:
            resp = await r.http.post(
                "/api/v1/agents/me/state",
                json={"state": "away", "reason": REASONS[(i // len(tokens)) % 2]},
                headers={"Authorization": f"Bearer {tokens[i % len(tokens)]}"})
        except httpx.HTTPError:  # a controller saturated by the fan-out answers late
            return False
        return resp.status_code == 200

    start = time.monotonic()
    done = await asyncio.gather(*(change(i) for i in range(int(plan.rate * plan.seconds))))
    return done.count(False)


def _say(what: str) -> None:
    print(f"fanout {time.strftime('%H:%M:%S')}: {what}", file=sys.stderr, flush=True)


def _collect(out_q: Any, n: int, timeout: float) -> list[ClientsResult]:
    parts: list[ClientsResult] = []
    deadline = time.monotonic() + timeout
    while len(parts) < n and time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            parts.append(out_q.get(timeout=1))
    return parts


async def run(plan: FanoutPlan) -> FanoutResult:
    res = FanoutResult(plan)
    r = Run(Plan("ivr-queue", callers=1, advisors=ADVISORS, workers=1, webrtc=False,
                 keep=plan.keep))
    procs: list[Any] = []
    stalled: StalledClient | None = None
    if plan.send_queue:
        r.cfg.data["http"]["ws_send_queue"] = plan.send_queue
        r.cfg.path.write_text(yaml.safe_dump(r.cfg.data, allow_unicode=True))
    try:
        sup = await r.start_gateway()
        tokens = [await api.login(r.http, n, ADVISOR_PASSWORD) for n in r.cfg.advisors]
        host, port = r.cfg.data["http"]["host"], int(r.cfg.data["http"]["port"])
        path = f"/api/v1/ws?token={sup}"
        stalled = StalledClient(host, port, path)
        procs, ready_q, out_q, stop_ev = start_processes(
            f"ws://{host}:{port}{path}", plan.clients, plan.processes)
        _say(f"gateway up; {plan.clients} clients connecting")
        for _ in procs:
            _say(f"clients ready: {await asyncio.to_thread(ready_q.get, True, 300)}")
        assert r.gateway is not None
        roles = {q: procstat.gateway_role(q, r.gateway.pid)
                 for q in procstat.descendants(r.gateway.pid)}
        roles |= {int(p.pid or 0): "ws clients" for p in procs}
        before = procstat.sample(roles)
        _say(f"events: {plan.rate:g}/s for {plan.seconds:g} s")
        refused = await _events(r, tokens, plan)
        after = procstat.sample(roles)
        res.window_s, res.usage = after.at - before.at, procstat.usage(before, after)
        if refused:
            res.errors.append(f"{refused} state changes refused or not answered by the API")
        await asyncio.sleep(2)  # the last events' way to every client
        stop_ev.set()
        summarise(res, await asyncio.to_thread(_collect, out_q, len(procs), 60))
        res.slow_closes = metric((await r.http.get("/metrics")).text, SLOW_CLOSES)
        res.stalled_events, res.stalled_close = stalled_outcome(
            await asyncio.to_thread(stalled.read_all, 15))
    finally:
        if stalled is not None:
            stalled.close()
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
        await r.events.close()
        await r.http.aclose()
        r.stop()
    res.errors += [f"{k}: {v}" for k, v in r.result.failures.items()]
    if not res.failed and not plan.keep:
        shutil.rmtree(r.folder, ignore_errors=True)
    return res


def parse(argv: list[str] | None = None) -> FanoutPlan:
    ap = argparse.ArgumentParser(prog="python -m scripts.load.fanout", description=__doc__)
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=10.0, help="events a second")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--processes", type=int, default=4, help="client processes")
    ap.add_argument("--send-queue", type=int, default=0,
                    help="the gateway's http.ws_send_queue (0: its default, 1000)")
    ap.add_argument("--keep", action="store_true", help="keep the run's folder")
    a = ap.parse_args(argv)
    if not 0 < a.clients <= MAX_CLIENTS or not 0 < a.seconds <= MAX_SECONDS:
        ap.error(f"--clients 1..{MAX_CLIENTS}, --seconds up to {MAX_SECONDS}")
    if not 0 < a.rate <= 200 or not 0 < a.processes <= 32:
        ap.error("--rate up to 200 events/s, --processes 1..32")
    return FanoutPlan(a.clients, a.rate, a.seconds, a.processes, a.send_queue, a.keep)


def main(argv: list[str] | None = None) -> int:
    res = asyncio.run(run(parse(argv)))
    print(table(res))
    return 1 if res.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

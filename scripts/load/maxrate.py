"""``python -m scripts.load.maxrate [--low 10] [--high 120] [--seconds 60]``: the
highest call rate sustained with 0 failures (RFC 7502 style: a binary search over
``rate`` runs, each a fresh gateway, ``seconds`` of new calls of ``call_s`` through
the IVR's menus), then INVITE -> 200 OK at that rate and at half of it. Prints one
row a run and the result. Bounded: at most ``max_runs`` search runs.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field

from scripts.load.scenarios import Plan, Result, run
from scripts.load.sipp import percentile


@dataclass
class Search:
    """The binary search's state: the highest rate that passed, the lowest that failed."""

    low: float  # first rate tried
    high: float  # the search's ceiling
    precision: float = 2.0  # calls/s: stop when passed and failed are this close
    passed: float | None = None
    failed: float | None = None

    def next_rate(self) -> float | None:
        """The rate to run next; None when the search is done."""
        if self.passed is None and self.failed is None:
            return self.low
        top = self.failed if self.failed is not None else self.high
        if self.passed is None:
            assert self.failed is not None
            if self.failed <= self.precision:
                return None  # fails at the lowest rate worth trying
            return max(self.precision, round(self.failed / 2, 1))
        if self.failed is None:  # nothing failed yet: the ceiling next
            return None if self.passed >= self.high else self.high
        if top - self.passed <= self.precision:
            return None
        return round((self.passed + top) / 2, 1)

    def record(self, rate: float, ok: bool) -> None:
        if ok:
            self.passed = max(rate, self.passed or 0.0)
        else:
            self.failed = rate if self.failed is None else min(rate, self.failed)


@dataclass
class MaxRate:
    runs: list[Result] = field(default_factory=list)
    best: Result | None = None
    half: Result | None = None


def row(res: Result) -> str:
    setup = res.setup_ms
    cpu = sum(u.cpu_pct for u in res.gateway)
    why = ", ".join(f"{k}: {v}" for k, v in res.failures.items()) or "-"
    return (f"| {res.plan.rate:g} | {res.calls.get('successful', 0)}/"
            f"{res.calls.get('expected', 0)} | {res.failed} ({why}) | "
            f"{percentile(setup, 50):.1f} | {percentile(setup, 99):.1f} | {cpu:.1f} |")


def table(m: MaxRate) -> str:
    out = ["| rate calls/s | calls ok/expected | failures | INVITE→200 p50 ms | p99 ms "
           "| gateway CPU % |", "|---|---|---|---|---|---|", *(row(r) for r in m.runs)]
    if m.half is not None:
        out.append(row(m.half) + " (half the best rate)")
    best = m.best.plan.rate if m.best else None
    out += ["", f"highest rate with 0 failures: {best if best is not None else 'none'} "
            "calls/s" + ("" if m.best is None else f" for {m.best.plan.seconds:g} s")]
    return "\n".join(out)


async def search(args: argparse.Namespace) -> MaxRate:
    s, m = Search(args.low, args.high, args.precision), MaxRate()

    def plan(rate: float) -> Plan:
        return Plan("rate", advisors=args.advisors, seconds=args.seconds, rate=rate,
                    call_s=args.call_seconds, webrtc=False)

    while len(m.runs) < args.max_runs and (rate := s.next_rate()) is not None:
        res = await run(plan(rate))
        m.runs.append(res)
        print(row(res), flush=True)
        s.record(rate, res.failed == 0)
        if res.failed == 0 and (m.best is None or rate > m.best.plan.rate):
            m.best = res
    if m.best is not None and args.half:
        m.half = await run(plan(round(m.best.plan.rate / 2, 1)))
    return m


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.load.maxrate", description=__doc__)
    ap.add_argument("--low", type=float, default=10.0, help="first rate, calls/s")
    ap.add_argument("--high", type=float, default=120.0, help="the search's ceiling")
    ap.add_argument("--precision", type=float, default=2.0, help="calls/s")
    ap.add_argument("--seconds", type=float, default=60.0, help="each run's length")
    ap.add_argument("--call-seconds", type=float, default=3.0)
    ap.add_argument("--advisors", type=int, default=0, help="0: calls end in the queue")
    ap.add_argument("--max-runs", type=int, default=8)
    ap.add_argument("--no-half", dest="half", action="store_false",
                    help="skip the run at half the best rate")
    a = ap.parse_args(argv)
    if not 0 < a.low <= a.high <= 200 or not 0 < a.seconds <= 600 or a.max_runs < 1:
        ap.error("0 < --low <= --high <= 200, --seconds up to 600, --max-runs >= 1")
    m = asyncio.run(search(a))
    print(table(m))
    return 0 if m.best is not None else 1


if __name__ == "__main__":
    raise SystemExit(main())

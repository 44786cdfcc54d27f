#!/usr/bin/env python3
"""Decision latency of the pure distributor at contact-centre scale.

1,000 advisors (random languages, topics and levels), 10,000 waiting calls, then
a stream of events: 100 advisor state changes per simulated second, arrivals,
hang-ups, answers and call ends, escalation ticks. Every public call is timed.

    .venv/bin/python scripts/bench_routing.py [--advisors 1000] [--calls 10000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cti.routing import AdvisorProfile, Distributor, EscalationStep, Offer  # noqa: E402

LANGS = [f"l{i}" for i in range(20)]
TOPICS = [f"t{i}" for i in range(10)]
STEPS = {"default": [EscalationStep(0, 3, 3), EscalationStep(30, 2, 1),
                     EscalationStep(90, 1, 0, escalate=True)]}


def profile(i: int, rng: random.Random) -> AdvisorProfile:
    langs = {lang: rng.randint(1, 5) for lang in rng.sample(LANGS, rng.randint(1, 4))}
    topics = {t: rng.randint(1, 5) for t in rng.sample(TOPICS, rng.randint(2, 6))}
    return AdvisorProfile(f"a{i}", langs, topics, {"crisis": None} if i % 5 == 0 else {})


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--advisors", type=int, default=1000)
    ap.add_argument("--calls", type=int, default=10000)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    d = Distributor([profile(i, rng) for i in range(args.advisors)], escalation=STEPS,
                    aging_per_s=1 / 60, wrap_up_s=5, offer_timeout_s=15)
    timings: list[float] = []
    per_method: dict[str, list[float]] = {}
    with_offer: list[float] = []  # latencies of the public calls that made an offer
    n_offers = 0

    def timed(fn, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        t0 = time.perf_counter()
        out = fn(*a, **kw)
        dt = time.perf_counter() - t0
        timings.append(dt)
        per_method.setdefault(fn.__name__, []).append(dt * 1000)
        if any(isinstance(x, Offer) for x in out):
            with_offer.append(dt * 1000)
        return out

    now = 0.0
    offered: set[str] = set()
    connected: list[str] = []

    def absorb(actions: list) -> None:  # noqa: ANN001
        nonlocal n_offers
        for a in actions:
            if isinstance(a, Offer):
                offered.add(a.call_id)
                n_offers += 1

    # the queue fills over the last 5 minutes while everyone is logged out, so
    # escalation steps fall due all through the run (not all at one instant)
    for i in range(args.calls):
        now = -300.0 + 300.0 * i / args.calls
        absorb(d.add_call(f"c{i}", language=rng.choice(LANGS), topic=rng.choice(TOPICS),
                          priority=rng.choice((0, 0, 0, 10)), now=now))
    d.tick(0.0)  # setup: the escalation steps the backlog reached while it was queued
    timings.clear()
    per_method.clear()
    with_offer.clear()
    names = d.advisor_names()
    next_call = args.calls
    t_start = time.perf_counter()
    for second in range(args.seconds):
        now = float(second)
        for _ in range(100):  # state changes
            name = rng.choice(names)
            state = rng.choice(("available", "available", "away", "logged_out"))
            absorb(timed(d.set_state, name, state, now))
        for _ in range(20):  # advisors answer, calls end, callers hang up, new calls
            if offered:
                cid = offered.pop()
                if d.has_call(cid) and d.offered_to(cid):
                    absorb(timed(d.offer_accepted, cid, now))
                    connected.append(cid)
            if connected and rng.random() < 0.8:
                absorb(timed(d.call_ended, connected.pop(rng.randrange(len(connected))), now))
            absorb(timed(d.remove_call, f"c{rng.randrange(next_call)}", now))
            absorb(timed(d.add_call, f"c{next_call}", language=rng.choice(LANGS),
                         topic=rng.choice(TOPICS), now=now))
            next_call += 1
        absorb(timed(d.tick, now))
    wall = time.perf_counter() - t_start
    ms = [t * 1000 for t in timings]
    print(f"machine: {platform.machine()}, Python {platform.python_version()}; "
          f"{args.advisors} advisors, {args.calls} calls queued first, {args.seconds} s simulated")
    print(f"decisions: {len(ms)}; latency p50 {pct(ms, 0.5):.3f} ms, p99 {pct(ms, 0.99):.3f} ms, "
          f"max {max(ms):.2f} ms; {len(ms) / sum(timings):.0f} decisions/s "
          f"({len(ms) / wall:.0f}/s wall incl. the driver)")
    for name, xs in sorted(per_method.items()):
        print(f"  {name:15s} n={len(xs):6d} p50 {pct(xs, 0.5):.3f} ms  p99 {pct(xs, 0.99):.3f} ms"
              f"  max {max(xs):.2f} ms")
    if with_offer:
        print(f"  calls that made an offer: n={len(with_offer)} p50 {pct(with_offer, 0.5):.3f} ms"
              f"  p99 {pct(with_offer, 0.99):.3f} ms  max {max(with_offer):.2f} ms")
    print(f"offers made: {n_offers}; waiting at the end: {len(d.waiting_calls())}")
    cmd = " ".join(["python scripts/bench_routing.py", *sys.argv[1:]])
    print(f"| {args.advisors} advisors, {args.calls} calls, {args.seconds} s simulated "
          f"| p50 {pct(ms, 0.5):.3f} ms | p99 {pct(ms, 0.99):.3f} ms "
          f"| {len(ms) / sum(timings):.0f} decisions/s | {n_offers} offers | `{cmd}` |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Cost of the pure IVR engine and of a login (argon2id), on this machine.

IVR: callers walk the demo config's flows (the standard hotline flow and the
crisis line's flow) with random digits, timeouts and failed transfers; every
engine call is timed. Login: argon2id verification with the library defaults,
as `POST /api/v1/login` runs it (in a worker thread).

    .venv/bin/python scripts/bench_ivr_auth.py [--callers 20000] [--logins 30]
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from argon2 import PasswordHasher  # noqa: E402

from cti.config import ivr_flows, load_settings  # noqa: E402
from cti.ivr import Done, Flow, Hangup, IvrSession, Play, Transfer  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "config" / "cti.yaml"


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1)))]


def walk(flow: Flow, rng: random.Random, timings: list[float]) -> int:
    """One caller through the flow; returns the number of engine calls."""
    session = IvrSession(flow, guessed_language=rng.choice(["es", "tr", None]),
                         country=rng.choice(["ES", "TR", "GB", None]),
                         flags={"crisis": rng.random() < 0.5}, open_now=rng.random() < 0.9)
    now, calls = 0.0, 0

    def timed(fn, *args):  # noqa: ANN001, ANN202
        nonlocal calls
        t0 = time.perf_counter()
        out = fn(*args)
        timings.append(time.perf_counter() - t0)
        calls += 1
        return out

    actions = timed(session.start, now)
    for _ in range(50):
        if session.done:
            break
        now += 1.0
        plays = [a for a in actions if isinstance(a, Play)]
        if any(isinstance(a, Transfer) for a in actions):
            actions = timed(session.on_transfer_result, False, now)
        elif plays and rng.random() < 0.7:
            actions = timed(session.on_play_done, plays[-1].play_id, now)
        elif session.deadline is not None and rng.random() < 0.3:
            actions = timed(session.on_timer, session.deadline)
        else:
            actions = timed(session.on_digit, rng.choice("0123456789*#"), now)
        if any(isinstance(a, Done | Hangup) for a in actions):
            break
    return calls


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--callers", type=int, default=20000)
    ap.add_argument("--logins", type=int, default=30)
    args = ap.parse_args()
    flows = list(ivr_flows(load_settings(DEMO)).values())
    rng = random.Random(7)
    timings: list[float] = []
    t0 = time.perf_counter()
    calls = sum(walk(rng.choice(flows), rng, timings) for _ in range(args.callers))
    wall = time.perf_counter() - t0
    print(f"machine: {platform.platform()}, Python {platform.python_version()}")
    print(f"IVR: {args.callers} callers over {len(flows)} flows, {calls} engine calls")
    print(f"  per engine call p50 {pct(timings, 0.5) * 1e3:.4f} ms, "
          f"p99 {pct(timings, 0.99) * 1e3:.4f} ms, max {max(timings) * 1e3:.3f} ms")
    print(f"  engine calls per second (engine time): {calls / sum(timings):,.0f}; "
          f"callers per second incl. the walk: {args.callers / wall:,.0f}")

    hasher = PasswordHasher()
    stored = hasher.hash("demo-sofia")
    login: list[float] = []
    for _ in range(args.logins):
        t = time.perf_counter()
        hasher.verify(stored, "demo-sofia")
        login.append(time.perf_counter() - t)
    print(f"login (argon2id verify, library defaults): p50 {pct(login, 0.5) * 1e3:.1f} ms, "
          f"max {max(login) * 1e3:.1f} ms -> at most ~{1 / pct(login, 0.5):.0f} "
          "logins/s per core")


if __name__ == "__main__":
    main()

"""``python -m scripts.load run SCENARIO [...]``: run one scenario, print its table;
exit 1 when anything failed."""

from __future__ import annotations

import argparse
import asyncio

from scripts.load.report import table
from scripts.load.scenarios import SCENARIOS, Plan, run

MAX_CALLERS = 2000  # bounded: a typo must not start ten thousand calls
MAX_SECONDS = 600


def parse(argv: list[str] | None = None) -> Plan:
    ap = argparse.ArgumentParser(prog="python -m scripts.load", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a named scenario and print its table")
    r.add_argument("scenario", choices=SCENARIOS)
    r.add_argument("--callers", type=int, default=20, help="concurrent callers")
    r.add_argument("--advisors", type=int, default=10,
                   help="SIPp advisors (talks: at least --callers)")
    r.add_argument("--seconds", type=float, default=None,
                   help="the measured window, 10 s (rate: how long calls are started, 60 s)")
    r.add_argument("--workers", type=int, default=0,
                   help="media workers (default: enough slots, plus one)")
    r.add_argument("--rate", type=float, default=10.0, help="rate: new calls a second")
    r.add_argument("--call-seconds", type=float, default=4.0, help="rate: each call's length")
    r.add_argument("--no-webrtc", action="store_true", help="without rtpengine")
    r.add_argument("--overload-cpu", type=float, default=0.0, metavar="PERCENT",
                   help="the gateway refuses new calls (503 Lines busy) past this machine "
                        "CPU %%; default 0: off (the load generator shares the machine)")
    r.add_argument("--max-call-rate", type=int, default=0, metavar="N",
                   help="the gateway admits N new calls a second at most "
                        "(overload.max_new_calls_per_second); default 0: no cap")
    r.add_argument("--keep", action="store_true",
                   help="keep the run's folder (config, gateway and SIPp logs)")
    a = ap.parse_args(argv)
    if a.seconds is None:
        a.seconds = 60.0 if a.scenario == "rate" else 10.0
    if not 0 < a.callers <= MAX_CALLERS or not 0 < a.seconds <= MAX_SECONDS:
        ap.error(f"--callers 1..{MAX_CALLERS}, --seconds up to {MAX_SECONDS}")
    if a.rate * a.seconds > MAX_CALLERS * 10:
        ap.error("too many calls for one run")
    return Plan(a.scenario, a.callers, a.advisors, a.seconds, a.workers, a.rate,
                a.call_seconds, not a.no_webrtc, a.keep, a.overload_cpu,
                a.max_call_rate)


def main(argv: list[str] | None = None) -> int:
    result = asyncio.run(run(parse(argv)))
    print(table(result))
    return 1 if result.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

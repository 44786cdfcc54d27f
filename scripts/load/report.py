"""The table a scenario prints."""

from __future__ import annotations

from scripts.load.procstat import RoleUsage
from scripts.load.scenarios import Result
from scripts.load.sipp import percentile


def _rows(usages: list[RoleUsage]) -> list[str]:
    return [f"| {u.role} | {u.processes} | {u.cpu_pct:.1f} | {u.pss_mib:.1f} |" for u in usages]


def per_unit(res: Result) -> tuple[str, int]:
    """What the gateway's cost is divided by: legs (ivr-queue), talks, calls/s."""
    p = res.plan
    if p.scenario == "talks":
        return "talk", p.callers
    if p.scenario == "rate":
        return "call/s", max(1, round(p.rate))
    return "leg", p.callers


def table(res: Result) -> str:
    p = res.plan
    what = (f"{p.rate:g} calls/s of {p.call_s:g} s for {p.seconds:g} s" if p.scenario == "rate"
            else f"{p.callers} callers, {p.advisors} advisors")
    setup = res.setup_ms
    cpu = sum(u.cpu_pct for u in res.gateway)
    pss = sum(u.pss_mib for u in res.gateway)
    unit, n = per_unit(res)
    out = [
        f"scenario {p.scenario}: {what}, {res.workers} workers; "
        f"measured over {res.window_s:.1f} s",
        "",
        "| what | figure |", "|---|---|",
        f"| failures | {res.failed}"
        + (" (" + ", ".join(f"{k}: {v}" for k, v in res.failures.items()) + ")"
           if res.failures else "") + " |",
        "| SIPp calls | " + ", ".join(f"{k} {v}" for k, v in res.calls.items()) + " |",
        "| gateway events | " + ", ".join(f"{k} {v}" for k, v in res.events.items()) + " |",
        "| call end reasons | " + ", ".join(f"{k} {v}" for k, v in res.end_reasons.items())
        + " |",
        f"| INVITE → 200 OK ({len(setup)} calls) | p50 {percentile(setup, 50):.1f} ms, "
        f"p99 {percentile(setup, 99):.1f} ms, max {max(setup, default=float('nan')):.1f} ms |",
        *res.quality.row(),
        f"| gateway CPU / PSS | {cpu:.1f} % of a core / {pss:.0f} MiB |",
        f"| per {unit} | {cpu / n:.2f} % of a core / {pss / n:.1f} MiB |",
        "",
        "| gateway role | processes | CPU % of a core | PSS MiB |", "|---|---|---|---|",
        *_rows(res.gateway),
        "",
        "| load generator | processes | CPU % of a core | PSS MiB |", "|---|---|---|---|",
        *_rows(res.loadgen),
    ]
    if res.folder is not None:
        out += ["", f"logs kept: {res.folder}"]
    return "\n".join(out)

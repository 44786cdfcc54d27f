"""``python -m scripts.load.poplead [--rate 5] [--seconds 30] [--advisors 10]``: the
screen pop's lead under load (issue 15): for every offer, the advisor's phone's
INVITE (the SIPp advisors' receive time, logged with SIPp's [timestamp]) minus the
``call.offered`` event's time (its ``ts``, seen on that advisor's own WebSocket, as
their desktop would have it). Positive: the pop came first. Each advisor has a
WebSocket open, so the flow waits for the pop before ringing (cti/api/ws.py:
``delivered``). Calls of the ``rate`` scenario (through the IVR, answered by the
advisors, ``call_s`` long). Prints p50/p99 of the lead and % of offers with the pop
first; exit 1 when a call failed or an offer has no INVITE.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets

from scripts.load import api, sipp
from scripts.load.gwconfig import ADVISOR_PASSWORD
from scripts.load.report import table as run_table
from scripts.load.scenarios import Plan, Run, collect, hold_s
from scripts.load.sipp import percentile

LOG_INVITE = '<nop><action><log message="invite [timestamp] [last_To:]"/></action></nop>'
_EPOCH = re.compile(r"\b(\d{10}\.\d+)\b")
_ADVISOR = re.compile(r"sip:([A-Za-z0-9_.-]+)@")


@dataclass
class PopLead:
    leads_ms: list[float] = field(default_factory=list)
    offers: int = 0
    invites: int = 0
    unmatched: int = 0  # offers without an INVITE, or INVITEs without an offer
    run: str = ""

    @property
    def pop_first_pct(self) -> float:
        if not self.leads_ms:
            return float("nan")
        return 100.0 * sum(1 for x in self.leads_ms if x >= 0) / len(self.leads_ms)


def invite_times(log: str) -> dict[str, list[float]]:
    """Per advisor, the epoch times their phone got an INVITE (SIPp's log lines
    ``invite <[timestamp]> To: <sip:name@...>``)."""
    out: dict[str, list[float]] = defaultdict(list)
    for line in log.splitlines():
        if not line.startswith("invite "):
            continue
        at, who = _EPOCH.search(line), _ADVISOR.search(line)
        if at and who:
            out[who.group(1)].append(float(at.group(1)))
    return out


def leads(offers: dict[str, list[float]], invites: dict[str, list[float]]) -> PopLead:
    """Pair each advisor's offers and INVITEs in order: INVITE time - offer time, ms."""
    res = PopLead(offers=sum(map(len, offers.values())),
                  invites=sum(map(len, invites.values())))
    for name in set(offers) | set(invites):
        mine, rang = sorted(offers.get(name, [])), sorted(invites.get(name, []))
        res.unmatched += abs(len(mine) - len(rang))
        res.leads_ms += [(inv - off) * 1000.0 for off, inv in zip(mine, rang, strict=False)]
    return res


class AdvisorSockets:
    """Each advisor's own WebSocket: the ``ts`` of the call.offered events it gets."""

    def __init__(self) -> None:
        self.offers: dict[str, list[float]] = defaultdict(list)
        self._tasks: list[asyncio.Task[None]] = []
        self._sockets: list[Any] = []

    async def open(self, r: Run) -> None:
        base = r.cfg.api.replace("http", "ws", 1)
        for name in r.cfg.advisors:
            token = await api.login(r.http, name, ADVISOR_PASSWORD)
            ws = await websockets.connect(f"{base}/api/v1/ws?token={token}", max_size=None)
            await ws.recv()  # the hello
            self._sockets.append(ws)
            self._tasks.append(asyncio.create_task(self._read(name, ws)))

    async def _read(self, name: str, ws: Any) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                ev = json.loads(raw)
                if ev.get("type") == "call.offered":
                    self.offers[name].append(float(ev["ts"]))

    async def close(self) -> None:
        for ws in self._sockets:
            with contextlib.suppress(Exception):
                await ws.close()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


async def measure(plan: Plan) -> tuple[PopLead, int]:
    r, socks = Run(plan), AdvisorSockets()
    try:
        token = await r.start_gateway()
        await r.start_advisors(token, hold_s(plan))
        phones = next(s for s in r.sipps if s.name == "advisors")
        phones.stop()  # again, with the INVITE logged: same port, same scenario plus a log
        xml = sipp.advisor_xml(r.folder / "advisor.pcap").replace(
            '<recv request="INVITE" crlf="true"/>',
            '<recv request="INVITE" crlf="true"/>\n  ' + LOG_INVITE, 1)
        phones.args = [*phones.args, "-trace_logs", "-log_file",
                       str(r.folder / "advisor-invites.log")]
        phones.start(xml, None)
        await socks.open(r)
        callers = r.start_callers(hold_s(plan))
        await r.measure()
        await asyncio.to_thread(callers.wait, hold_s(plan) + plan.fill_s() + 30)
        await r.events.until("call.ended", r.events.counts["call.incoming"], 20)
        collect(r, callers)
    finally:
        await socks.close()
        await r.events.close()
        await r.http.aclose()
        r.stop()
    log = Path(r.folder / "advisor-invites.log")
    res = leads(socks.offers, invite_times(log.read_text() if log.exists() else ""))
    failed = r.result.failed + res.unmatched
    if not failed and not plan.keep:
        shutil.rmtree(r.folder, ignore_errors=True)
        r.result.folder = None
    res.run = run_table(r.result)
    return res, failed


def table(res: PopLead) -> str:
    lat = res.leads_ms
    return "\n".join([
        "| screen pop lead (INVITE − call.offered) | figure |", "|---|---|",
        f"| offers / INVITEs / unmatched | {res.offers} / {res.invites} / {res.unmatched} |",
        f"| lead ({len(lat)} offers) | p50 {percentile(lat, 50):.1f} ms, "
        f"p1 {percentile(lat, 1):.1f} ms (the 99th worst), min "
        f"{min(lat, default=float('nan')):.1f} ms |",
        f"| offers with the pop first | {res.pop_first_pct:.1f} % |",
        "", res.run])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.load.poplead", description=__doc__)
    ap.add_argument("--rate", type=float, default=5.0, help="new calls a second")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--call-seconds", type=float, default=6.0)
    ap.add_argument("--advisors", type=int, default=10)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args(argv)
    if not 0 < a.rate <= 100 or not 0 < a.seconds <= 600 or not 0 < a.advisors <= 500:
        ap.error("--rate up to 100, --seconds up to 600, --advisors 1..500")
    plan = Plan("rate", advisors=a.advisors, seconds=a.seconds, rate=a.rate,
                call_s=a.call_seconds, webrtc=False, keep=a.keep)
    res, failed = asyncio.run(measure(plan))
    print(table(res))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

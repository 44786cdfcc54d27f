"""The named scenarios: start the gateway with a generated config, bring up the SIPp
advisors and callers, wait for the steady state, measure, end everything.

- ``ivr-queue``: ``callers`` concurrent legs walking the IVR (RFC 2833) into the queue
  and waiting there with music (``advisors`` take some of them; 0 for legs only);
- ``talks``: ``callers`` calls bridged to as many advisors, talking with RTP both ways;
- ``rate``: ``rate`` new calls a second for ``seconds``, each ``call_s`` long, through
  the IVR's menus.

Bounded: every wait has a deadline, every SIPp has -m (or is stopped), the gateway is
stopped at the end; loopback only.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from scripts.load import api, procstat, sipp
from scripts.load.gwconfig import DIGITS, HOTLINE, QUEUE, LoadConfig, generate, sip_password
from scripts.load.pcap import advisor_pcap, caller_pcap
from scripts.load.quality import QualitySample, from_store

SCENARIOS = ("ivr-queue", "talks", "rate")
CALLER_ENDS = ("caller_hangup", "caller_abandoned")
CALLS_PER_WORKER = 2  # the workers' customer-call slots
SETUP_RATE = 10  # calls a second while filling up ivr-queue and talks
REGISTER_RATE = 200  # advisors' REGISTERs a second, all of them outstanding at once
IVR_WALK_S = 1.0 + len(DIGITS) * 1.0 + 2.0  # the digits' times in the pcap, and slack


@dataclass
class Plan:
    scenario: str
    callers: int = 20
    advisors: int = 10
    seconds: float = 10.0
    workers: int = 0  # 0: enough slots for the scenario, and one spare worker
    rate: float = 10.0  # rate: new calls a second
    call_s: float = 4.0  # rate: each call's length
    webrtc: bool = True
    keep: bool = False  # keep the run's folder (config, logs, SIPp files)
    # The gateway's overload limit (overload.cpu_percent); 0: off, since the load
    # generator's own CPU is on the same machine and would count.
    overload_cpu: float = 0.0
    max_call_rate: int = 0  # overload.max_new_calls_per_second; 0: no cap

    def worker_count(self) -> int:
        if self.workers:
            return self.workers
        concurrent = (self.rate * (self.call_s + 1) if self.scenario == "rate"
                      else self.callers)
        return math.ceil(concurrent / CALLS_PER_WORKER) + 1

    def fill_s(self) -> float:
        """How long the steady state may take to reach."""
        return 10.0 + self.callers / SETUP_RATE * 1.5 + IVR_WALK_S


@dataclass
class Result:
    plan: Plan
    workers: int
    window_s: float = 0.0
    gateway: list[procstat.RoleUsage] = field(default_factory=list)
    loadgen: list[procstat.RoleUsage] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    setup_ms: list[float] = field(default_factory=list)
    end_reasons: dict[str, int] = field(default_factory=dict)
    quality: QualitySample = field(default_factory=QualitySample)  # every leg's RTP figures
    folder: Path | None = None

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


class Run:
    """One scenario's processes: the gateway, the SIPp advisors and callers."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.cfg: LoadConfig = generate(plan.worker_count(), plan.advisors, plan.webrtc,
                                           overload_cpu=plan.overload_cpu,
                                           max_call_rate=plan.max_call_rate)
        self.folder = self.cfg.path.parent
        self.result = Result(plan, plan.worker_count(), folder=self.folder)
        self.gateway: subprocess.Popen[bytes] | None = None
        self.sipps: list[sipp.Sipp] = []
        self.http = httpx.AsyncClient(base_url=self.cfg.api, timeout=30)
        self.events = api.CallEvents(self.cfg)

    @property
    def target(self) -> str:
        ip, port = self.cfg.sip
        return f"{ip}:{port}"

    def fail(self, what: str, count: int) -> None:
        if count:
            self.result.failures[what] = self.result.failures.get(what, 0) + count

    async def start_gateway(self) -> str:
        cti = Path(sys.executable).with_name("cti")
        log = (self.folder / "gateway.log").open("wb")
        self.gateway = subprocess.Popen(
            [str(cti), "serve", "--config", str(self.cfg.path)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        await api.wait_healthy(self.http, 60 + self.result.workers * 0.5, self.gateway,
                              self.folder / "gateway.log")
        return await self.events.connect(self.http)

    async def start_advisors(self, token: str, hold_s: float) -> None:
        names = self.cfg.advisors
        if not names:
            return
        pcap = advisor_pcap(self.folder / "advisor.pcap", hold_s)
        phones = sipp.Sipp("advisors", self.folder, ["-aa"])
        self.sipps.append(phones.start(sipp.advisor_xml(pcap), None))
        users = self.folder / "advisors.csv"
        users.write_text("SEQUENTIAL\n" + "".join(
            f"{n};[authentication username={n} password={sip_password(n)}]\n" for n in names))
        # All at once, as phones coming up at a shift's start: a burst the edge
        # must take (its usrloc writes to sqlite under a lock: route REGISTER).
        register = sipp.Sipp("register", self.folder, [
            "-inf", str(users), "-m", str(len(names)), "-r", str(REGISTER_RATE),
            "-l", str(len(names))])
        self.sipps.append(register.start(sipp.register_xml(phones.port, 3600), self.target))
        await asyncio.to_thread(register.wait, 30)
        self.fail("advisor registrations", len(names) - register.counts()["successful"])
        self.fail("advisor logins", await api.set_available(self.http, names))
        self.fail("advisors not available",
                  await api.wait_available(self.http, token, names, 15))

    def start_callers(self, hold_s: float) -> sipp.Sipp:
        p = self.plan
        total = int(p.rate * p.seconds) if p.scenario == "rate" else p.callers
        rate = p.rate if p.scenario == "rate" else SETUP_RATE
        pcap = caller_pcap(self.folder / "caller.pcap", hold_s + 1, DIGITS)
        callers = sipp.Sipp("callers", self.folder, [
            "-m", str(total), "-l", str(total), "-r", str(rate),
            "-trace_rtt", "-rtt_freq", "1"])
        self.sipps.append(callers.start(
            sipp.caller_xml(HOTLINE, pcap, int(hold_s * 1000)), self.target))
        self.result.calls["expected"] = total
        return callers

    async def steady(self) -> bool:
        """Every caller in the queue (ivr-queue) or talking (talks)."""
        p = self.plan
        kind = {"ivr-queue": "call.queued", "talks": "call.connected"}.get(p.scenario)
        if kind is None:
            return True
        return await self.events.until(kind, p.callers, p.fill_s())

    async def measure(self) -> None:
        assert self.gateway is not None
        pid = self.gateway.pid
        roles = {q: procstat.gateway_role(q, pid) for q in procstat.descendants(pid)}
        mine = {q: "sipp" for s in self.sipps if s.process for q in [s.process.pid]}
        mine[os.getpid()] = "driver"
        before = procstat.sample(roles | mine)
        await asyncio.sleep(self.plan.seconds)
        after = procstat.sample(roles | mine)
        both = procstat.usage(before, after)
        self.result.window_s = after.at - before.at
        self.result.gateway = [u for u in both if u.role in procstat.GATEWAY_ROLES]
        self.result.loadgen = [u for u in both if u.role not in procstat.GATEWAY_ROLES]

    def stop(self) -> None:
        for s in self.sipps:
            s.stop()
        if self.gateway is not None and self.gateway.poll() is None:
            self.gateway.send_signal(signal.SIGTERM)
            try:
                self.fail("gateway exit", 1 if self.gateway.wait(60) != 0 else 0)
            except subprocess.TimeoutExpired:
                self.gateway.kill()
                self.gateway.wait()
                self.fail("gateway exit", 1)


def hold_s(plan: Plan) -> float:
    """How long each caller stays: the rate's short call, or fill-up plus window."""
    if plan.scenario == "rate":
        return plan.call_s
    return plan.fill_s() + plan.seconds + 2


async def run(plan: Plan) -> Result:
    if plan.scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {plan.scenario!r}; known: {', '.join(SCENARIOS)}")
    if plan.scenario == "talks":
        plan.advisors = max(plan.advisors, plan.callers)
    r = Run(plan)
    try:
        token = await r.start_gateway()
        await r.start_advisors(token, hold_s(plan))
        callers = r.start_callers(hold_s(plan))
        if not await r.steady():
            r.fail("steady state not reached", 1)
        await r.measure()
        limit = hold_s(plan) + plan.fill_s() + (plan.seconds if plan.scenario == "rate" else 0)
        await asyncio.to_thread(callers.wait, limit + 30)
        await r.events.until("call.ended", r.events.counts["call.incoming"], 20)
        collect(r, callers)
    finally:
        await r.events.close()
        await r.http.aclose()
        r.stop()
    # The records are complete once the gateway stopped (late legs' figures too).
    r.result.quality = from_store(Path(r.cfg.data["store"]["path"]))
    if not r.result.failed and not plan.keep:
        shutil.rmtree(r.folder, ignore_errors=True)
        r.result.folder = None
    return r.result


def _advisor_calls_done(phones: sipp.Sipp, talks: int, timeout: float = 5) -> dict[str, int]:
    """The advisors' SIPp counts once they add up to the talks the gateway bridged:
    its statistics file is rewritten every second, and not on SIGINT."""
    deadline = time.monotonic() + timeout
    while True:
        counts = phones.counts()
        if counts["successful"] + counts["failed"] >= talks or time.monotonic() > deadline:
            phones.stop()
            return counts
        time.sleep(0.2)


def collect(r: Run, callers: sipp.Sipp) -> None:
    """The callers' and advisors' SIPp counts and the gateway's events, as failures."""
    res, ev = r.result, r.events
    counts = callers.counts()
    res.calls.update(counts)
    res.setup_ms = callers.response_times_ms()
    res.events = {k.removeprefix("call."): v for k, v in sorted(ev.counts.items())}
    res.events["queued_by_digits"] = ev.queued_for[(QUEUE["language"], QUEUE["topic"])]
    r.fail("caller calls failed", counts["failed"])
    r.fail("caller calls not completed",
           res.calls["expected"] - counts["successful"] - counts["failed"])
    for s in r.sipps:
        if s.name == "advisors":
            done = _advisor_calls_done(s, ev.counts["call.connected"])
            res.calls["advisor_answered"] = done["successful"]
            r.fail("advisor calls failed", done["failed"])
    r.fail("calls not ended at the gateway", ev.counts["call.incoming"] - ev.counts["call.ended"])
    # every call ends by the caller's BYE (caller_hangup; in the IVR or the queue:
    # caller_abandoned); anything else (rtp_timeout: no RTP arrived, worker_failed,
    # advisor_hangup) is the gateway or the peers failing
    res.end_reasons = dict(ev.end_reasons)
    r.fail("calls ended otherwise than by the caller",
           sum(n for why, n in ev.end_reasons.items() if why not in CALLER_ENDS))
    r.fail("calls not seen at the gateway", res.calls["expected"] - ev.counts["call.incoming"])
    if r.plan.scenario != "rate":
        r.fail("callers not queued by their digits",
               r.plan.callers - res.events["queued_by_digits"])
    if r.plan.scenario == "talks":
        r.fail("talks not connected", r.plan.callers - ev.counts["call.connected"])

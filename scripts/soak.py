#!/usr/bin/env python3
"""Soak: mixed traffic against a real gateway for a while, then checks that nothing
was lost or left stuck (issue 12). A script, not a test: it runs for minutes.

    .venv/bin/python scripts/soak.py --minutes 30 --seed 12 [--log /tmp/soak.log]

A real gateway (Kamailio, pjsua2 media workers, API) on free loopback ports, started
by the e2e harness in this process; real pjsua2 phones (tests/peers) as callers, as
the advisors' softphones and as the crisis team. Traffic: callers through the IVR
(DTMF language and topic), advisors answering, blind and consult transfers, hang-ups
at random moments (the caller in the IVR, the queue, while ringing, while talking;
the advisor while talking), a media worker SIGKILLed every few minutes, advisors
taking breaks, a supervisor's WebSocket that disconnects and reconnects.

At the end (scripts/soak_checks.py): every call that reached the gateway has an
ended record with a reason, no active call is left, every advisor is available or
in the state they chose, no worker slot is held at the edge, the controller's memory
is flat, the log's ERROR and Traceback lines, /health. Exit 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import signal
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from soak_checks import Memory, final_checks  # noqa: E402

from tests.e2e.conftest import write_short_prompts  # noqa: E402
from tests.e2e.gateway_harness import (  # noqa: E402
    Advisor,
    hotline_uri,
    running_gateway,
    until,
)
from tests.peers.phone import Phone, PhoneError  # noqa: E402

log = logging.getLogger("soak")

ADVISORS = ["michel", "dalia", "sofia", "emre"]
# (language digit, topic digit): en/passport, en/visa, en/travel, es/visa, nl/passport,
# tr/travel: each answerable by at least one advisor (config/cti.yaml).
MENUS = ["21", "22", "23", "32", "11", "43"]
CALLER_NUMBERS = ["+34911234501", "+442079460102", "+31201234503", "+905321234504",
                  "+34911234505", "+442079460106", "+31201234507", "+905321234508",
                  "+34911234509", "+442079460110", "+31201234511", "+905321234512"]
# What each call does, and how often (weights).
PLANS = {"hangup_ivr": 2, "hangup_queue": 1, "hangup_ringing": 1, "caller_hangup_talk": 4,
         "advisor_hangup_talk": 2, "blind_advisor": 2, "blind_external": 1, "consult": 2}
ENDED = "ended"


class Tracker:
    """What the gateway says about each call (its bus, in this process): the
    caller's number -> its current call, the events seen per call."""

    def __init__(self, gw: Any) -> None:
        self.by_number: dict[str, str] = {}
        self.calls: dict[str, dict[str, Any]] = {}
        self.changed = asyncio.Event()
        self.end_reasons: Counter[str] = Counter()
        gw.bus.subscribe(self._on_event)

    def _on_event(self, ev: dict[str, Any]) -> None:
        cid, type_ = ev.get("call_id"), ev["type"]
        if not cid or not type_.startswith("call."):
            return
        if type_ == "call.incoming":
            number = ev["data"].get("caller", {}).get("number")
            self.by_number[number] = cid
            self.calls[cid] = {"state": "ivr", "seen": Counter(), "advisor": None}
        call = self.calls.get(cid)
        if call is None:
            return
        call["seen"][type_] += 1
        state = {"call.queued": "queue", "call.offered": "ringing",
                 "call.connected": "talk", "call.ended": ENDED}.get(type_)
        if state:
            call["state"] = state
        if type_ == "call.consult":
            call["consult"] = ev["data"]["state"]
        if type_ in ("call.offered", "call.connected") and ev.get("advisor"):
            call["advisor"] = ev["advisor"]
        if type_ == "call.ended":
            self.end_reasons[ev["data"]["reason"]] += 1
        self.changed.set()
        self.changed = asyncio.Event()

    def forget(self, cid: str) -> None:
        self.calls.pop(cid, None)  # bounded: the soak's own memory stays flat

    async def wait(self, cid: str, type_: str, count: int = 1, timeout: float = 30,
                   where: str = "") -> bool:
        """True once the call has seen ``count`` events of a type (and the consult is
        in state ``where`` if given); False if it ended first."""
        deadline = time.monotonic() + timeout
        while True:
            call = self.calls[cid]
            if call["seen"][type_] >= count and (not where or call.get("consult") == where):
                return True
            if call["state"] == ENDED:
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"call {cid}: no {type_} x{count} {where} in {timeout}s "
                                   f"(state {call['state']}, seen {dict(call['seen'])})")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)


class Stats:
    def __init__(self) -> None:
        self.c: Counter[str] = Counter()
        self.hangups: Counter[str] = Counter()  # "side:phase"
        self.refused: Counter[str] = Counter()
        self.refusals: Counter[str] = Counter()  # API refusals of transfers, with why
        self.errors: list[str] = []
        self.reached_by_number: Counter[str] = Counter()
        self.kills: list[dict[str, Any]] = []


def trim(phone: Phone, keep: int = 300) -> None:
    """Drop a long-running phone's old events (the soak's memory stays flat)."""
    if len(phone.events) > 2 * keep:
        fresh = [e for i, e in enumerate(phone.events) if i not in phone._returned]
        phone.events[:] = fresh[-keep:]
        phone._returned.clear()


class AdvisorActor:
    """An advisor who answers every ring after a moment, answers consults, wraps up
    sometimes, takes a break now and then; the soak's calls tell them when to hang
    up or transfer."""

    def __init__(self, adv: Advisor, rng: random.Random, stats: Stats) -> None:
        self.adv, self.rng, self.stats = adv, rng, stats
        self.legs: dict[str, str] = {}  # call id -> the phone's leg (the latest)
        self.chosen = "available"
        self.busy_until = 0.0
        self._ids = iter(range(1, 10**9))

    @property
    def name(self) -> str:
        return self.adv.name

    async def auth(self, method: str, path: str, **kw: Any) -> Any:
        return await self.adv.http.request(
            method, f"/api/v1{path}", headers={"Authorization": f"Bearer {self.adv.token}"},
            **kw)

    async def answer_loop(self) -> None:
        phone = self.adv.phone
        while True:
            incoming = await phone.wait_for("leg.incoming", timeout=10**6)
            cid = incoming.get("headers", {}).get("x-cti-call-id", "")
            self.legs[cid] = incoming["leg"]
            await asyncio.sleep(self.rng.uniform(0.4, 2.5))
            res = await phone.command("answer", leg=incoming["leg"], code=200, check=False)
            self.stats.c["advisor_answers" if res.get("ok") else "advisor_answer_late"] += 1
            trim(phone)
            if len(self.legs) > 50:
                self.legs = dict(list(self.legs.items())[-10:])

    async def hangup(self, cid: str) -> None:
        leg = self.legs.get(cid)
        if leg is not None:
            await self.adv.phone.command("hangup", leg=leg, check=False)

    async def ws_command(self, cmd: str, **args: Any) -> None:
        assert self.adv.stream is not None
        import json
        await self.adv.stream._ws.send(json.dumps({"id": next(self._ids), "cmd": cmd, **args}))

    async def state_loop(self, gw: Any) -> None:
        """Wrap up half the calls early (WebSocket command), take breaks (as the
        advisor chose), and come back when the gateway set them away."""
        while True:
            await asyncio.sleep(self.rng.uniform(2, 6))
            stream = self.adv.stream
            assert stream is not None
            if len(stream.events) > 600:
                stream.events[:] = stream.events[-300:]
            state = gw.flow.distributor.advisor_state(self.name).value
            if state == "wrap_up" and self.rng.random() < 0.5:
                last = next((cid for cid in reversed(self.legs) if cid), None)
                if last:
                    await self.ws_command("wrap_up", call_id=last, code="info_given",
                                          note="soak")
                    self.stats.c["wrap_ups_sent"] += 1
            elif state == "away" and self.chosen == "available":
                self.stats.c["set_away_by_gateway"] += 1
                await self.ws_command("state", state="available")
            elif state == "available" and self.rng.random() < 0.04:
                self.chosen = "away"
                await self.ws_command("state", state="away", reason="break")
                self.stats.c["breaks"] += 1
                await asyncio.sleep(self.rng.uniform(8, 20))
                self.chosen = "available"
                await self.ws_command("state", state="available")


class Soak:
    def __init__(self, gw: Any, args: argparse.Namespace) -> None:
        self.gw, self.args = gw, args
        self.rng = random.Random(args.seed)
        self.stats = Stats()
        self.tracker = Tracker(gw)
        self.advisors: dict[str, AdvisorActor] = {}
        self.stop_at = time.monotonic() + args.minutes * 60
        self.phase_start = time.monotonic()

    def rng_for(self, name: str) -> random.Random:
        return random.Random(f"{self.args.seed}-{name}")

    @property
    def running(self) -> bool:
        return time.monotonic() < self.stop_at

    # ------------------------------------------------------------ callers
    async def caller_loop(self, caller: Phone) -> None:
        rng = self.rng_for(caller.name)
        await asyncio.sleep(rng.uniform(0, 5))
        while self.running:
            plan = rng.choices(list(PLANS), weights=list(PLANS.values()))[0]
            try:
                reached = await self.one_call(caller, rng, plan)
            except (TimeoutError, PhoneError, AssertionError) as e:
                self.stats.errors.append(f"{caller.name} {plan}: {e}"[:400])
                log.error("soak call failed caller=%s plan=%s: %s", caller.name, plan, e)
                reached = True
            trim(caller)
            await asyncio.sleep(rng.uniform(0.5, 3) if reached else rng.uniform(3, 8))

    async def one_call(self, caller: Phone, rng: random.Random, plan: str) -> bool:
        """One call by its plan; False when the gateway refused it."""
        s = self.stats
        leg = uuid.uuid4().hex
        s.c["placed"] += 1
        self.tracker.by_number.pop(caller.name, None)
        await caller.command("dial", leg=leg, uri=hotline_uri(self.gw))
        first = await _first_state(caller, leg)
        if first["state"] != "confirmed":
            s.refused[str(first.get("code"))] += 1
            return False
        s.c["reached"] += 1
        s.reached_by_number[caller.name] += 1
        await until(lambda: caller.name in self.tracker.by_number, 10)
        cid = self.tracker.by_number[caller.name]
        try:
            try:
                await self._follow(caller, rng, plan, leg, cid)
            except PhoneError:
                if self.tracker.calls[cid]["state"] != ENDED:
                    raise
                s.c["cut_short_by_a_kill"] += 1  # e.g. a DTMF to the leg a kill ended
            await self.tracker.wait(cid, "call.ended", timeout=60)
            await caller.wait_for("leg.state", leg=leg, state="disconnected", timeout=15)
        except BaseException:
            # A scenario that went wrong still hangs up: one error, not a stuck call.
            with contextlib.suppress(Exception):
                await caller.command("hangup", leg=leg, check=False)
            raise
        finally:
            self.tracker.forget(cid)
        return True

    async def _hangup(self, caller: Phone, leg: str, cid: str, side: str = "caller") -> None:
        state = self.tracker.calls[cid]["state"]
        if state == ENDED:
            return
        self.stats.hangups[f"{side}:{state}"] += 1
        if side == "caller":
            await caller.command("hangup", leg=leg, check=False)
        else:
            adv = self.advisors.get(self.tracker.calls[cid]["advisor"] or "")
            if adv is not None:
                await adv.hangup(cid)

    async def _follow(self, caller: Phone, rng: random.Random, plan: str, leg: str,
                      cid: str) -> None:
        t = self.tracker
        if plan == "hangup_ivr":
            await asyncio.sleep(rng.uniform(0.2, 2.0))
            return await self._hangup(caller, leg, cid)
        await caller.wait_for("leg.media", leg=leg, active=True, timeout=10)
        for digit in rng.choice(MENUS):
            await asyncio.sleep(rng.uniform(0.2, 0.8))
            await caller.command("send_dtmf", leg=leg, digits=digit, method="rfc2833")
        if not await t.wait(cid, "call.queued", timeout=30):
            return
        if plan == "hangup_queue":
            await asyncio.sleep(rng.uniform(0, 1.0))
            return await self._hangup(caller, leg, cid)
        if not await t.wait(cid, "call.offered", timeout=120):
            return
        if plan == "hangup_ringing":
            await asyncio.sleep(rng.uniform(0.1, 0.4))
            return await self._hangup(caller, leg, cid)
        if not await t.wait(cid, "call.connected", timeout=40):
            return
        self.stats.c["answered"] += 1
        await asyncio.sleep(rng.uniform(2, 6))
        if plan in ("blind_advisor", "blind_external", "consult"):
            await self._transfer(caller, rng, plan, leg, cid)
        elif plan == "advisor_hangup_talk":
            await self._hangup(caller, leg, cid, side="advisor")
        else:
            await self._hangup(caller, leg, cid)

    async def _transfer(self, caller: Phone, rng: random.Random, plan: str, leg: str,
                        cid: str) -> None:
        t = self.tracker
        adv = self.advisors[t.calls[cid]["advisor"]]
        if plan == "blind_advisor":
            free = [a for a in ADVISORS if a != adv.name
                    and self.gw.flow.distributor.advisor_state(a).value == "available"]
            body = ({"kind": "blind", "target_type": "advisor", "target": rng.choice(free)}
                    if free else {"kind": "blind", "target_type": "queue",
                                  "target": "travel_advice"})
        else:
            body = {"kind": "blind" if plan == "blind_external" else "consult",
                    "target_type": "external", "target": "crisis_team"}
        r = await adv.auth("POST", f"/calls/{cid}/transfer", json=body)
        self.stats.c[f"transfer_{plan}_{r.status_code}"] += 1
        if r.status_code != 200:
            self.stats.refusals[f"{plan} {r.status_code}: {r.json().get('detail')}"] += 1
            return await self._hangup(caller, leg, cid)
        if plan == "consult":
            if not await t.wait(cid, "call.consult", where="talking", timeout=30):
                return
            done = "complete" if rng.random() < 0.5 else "cancel"
            r = await adv.auth("POST", f"/calls/{cid}/consult/{done}")
            self.stats.c[f"consult_{done}_{r.status_code}"] += 1
            if r.status_code != 200:
                self.stats.refusals[f"consult {done} {r.status_code}: "
                                    f"{r.json().get('detail')}"] += 1
        elif plan == "blind_advisor" and not await t.wait(cid, "call.connected", count=2,
                                                          timeout=120):
            return
        await asyncio.sleep(rng.uniform(1, 4))
        if t.calls[cid]["seen"]["call.transferred"] or plan == "blind_advisor":
            self.stats.c["transferred"] += 1
        await self._hangup(caller, leg, cid)

    # ------------------------------------------------------------ the rest
    async def team_loop(self, team: Phone) -> None:
        """The crisis team: answers every call, hangs up some after a while."""
        rng = self.rng_for("team")
        while True:
            incoming = await team.wait_for("leg.incoming", timeout=10**6)
            await asyncio.sleep(rng.uniform(0.3, 1.0))
            await team.command("answer", leg=incoming["leg"], code=200, check=False)
            if rng.random() < 0.5:
                asyncio.ensure_future(_hangup_later(team, incoming["leg"], rng.uniform(3, 8)))
            trim(team)

    async def killer_loop(self) -> None:
        """SIGKILL a media worker every --kill-every seconds (one with calls when
        there is one); wait for the gateway to start it again."""
        rng = self.rng_for("killer")
        while True:
            await asyncio.sleep(self.args.kill_every)
            if not self.running:
                return
            links = [w for w in self.gw.pool.links.values() if w.up and w.process]
            busy = {c.worker for c in self.gw.flow.calls.all()}
            link = rng.choice([w for w in links if w.worker_id in busy] or links)
            old = link.process.pid
            calls = sum(1 for c in self.gw.flow.calls.all() if c.worker == link.worker_id)
            t0 = time.monotonic()
            os.kill(old, signal.SIGKILL)
            log.warning("soak killed worker=%s pid=%s calls=%s", link.worker_id, old, calls)
            kill = {"worker": link.worker_id, "calls": calls, "recovered_s": None}
            self.stats.kills.append(kill)
            with contextlib.suppress(asyncio.TimeoutError):
                await until(partial(_restarted, link, old), 30)
                kill["recovered_s"] = round(time.monotonic() - t0, 2)

    async def ws_client_loop(self) -> None:
        """A supervisor's floor client: connects, reads a while, drops (a clean close
        or the TCP connection cut), reconnects."""
        import httpx
        import websockets
        rng = self.rng_for("ws")
        s = self.gw.settings
        async with httpx.AsyncClient(base_url=f"http://{s.http.host}:{s.http.port}") as http:
            r = await http.post("/api/v1/login",
                                json={"username": "nadia", "password": "demo-nadia"})
            token = r.json()["token"]
            while True:
                ws = await websockets.connect(
                    f"ws://{s.http.host}:{s.http.port}/api/v1/ws?token={token}")
                hello = await ws.recv()
                self.stats.c["ws_connects"] += 1
                assert '"hello"' in str(hello) or hello, hello
                with contextlib.suppress(asyncio.TimeoutError, websockets.ConnectionClosed):
                    await asyncio.wait_for(self._drain(ws), rng.uniform(5, 30))
                if rng.random() < 0.5:
                    await ws.close()
                else:
                    ws.transport.abort()
                    self.stats.c["ws_aborts"] += 1
                await asyncio.sleep(rng.uniform(0.2, 3))

    async def _drain(self, ws: Any) -> None:
        async for _ in ws:
            self.stats.c["ws_events"] += 1


def _restarted(link: Any, old_pid: int) -> bool:
    return bool(link.up and link.process is not None and link.process.pid != old_pid)


async def _hangup_later(phone: Phone, leg: str, after: float) -> None:
    await asyncio.sleep(after)
    await phone.command("hangup", leg=leg, check=False)


async def _guard(coro: Any, stats: Stats) -> None:
    """A background actor that fails is a soak error, not a silent end."""
    try:
        await coro
    except asyncio.CancelledError:
        raise
    except Exception as e:  # noqa: BLE001 (reported at the end)
        stats.errors.append(f"background {getattr(coro, '__name__', coro)}: {e!r}"[:400])
        log.exception("soak actor failed")


async def _first_state(caller: Phone, leg: str, timeout: float = 20) -> dict[str, Any]:
    tasks = [asyncio.ensure_future(caller.wait_for("leg.state", leg=leg, state=st,
                                                   timeout=timeout))
             for st in ("confirmed", "disconnected")]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for p in pending:
        p.cancel()
    return done.pop().result()


async def run(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    prompts = write_short_prompts(tmp / "prompts")
    memory = Memory(os.getpid())
    async with contextlib.AsyncExitStack() as st:
        team = await st.enter_async_context(Phone(name="crisis"))
        gw = await st.enter_async_context(running_gateway(
            tmp, workers=args.workers, routing__wrap_up_s={"default": 3},
            prompts=_prompts(prompts),
            directory=[{"key": "crisis_team", "name": "Crisis team", "number": "+31703480000",
                        "uri": team.uri("crisis")}]))
        soak = Soak(gw, args)
        for name in ADVISORS:
            adv = await st.enter_async_context(Advisor(gw, name))
            soak.advisors[name] = AdvisorActor(adv, soak.rng_for(name), soak.stats)
            await adv.set_state("available")
        callers = [await st.enter_async_context(Phone(name=n))
                   for n in CALLER_NUMBERS[: args.callers]]
        print(f"soak: gateway up (sip {gw.settings.sip.port}, http {gw.settings.http.port}), "
              f"{len(callers)} callers, {len(ADVISORS)} advisors, {args.workers} workers, "
              f"{args.minutes} min, seed {args.seed}", flush=True)
        slots0 = {w: gw.flow._free_calls(w) for w in gw.pool.links}
        first_snapshot = None
        if args.tracemalloc:
            tracemalloc.start()
            first_snapshot = await _snapshot_after(min(300, args.minutes * 20))
        background = [asyncio.create_task(_guard(c, soak.stats)) for c in (
            *(a.answer_loop() for a in soak.advisors.values()),
            *(a.state_loop(gw) for a in soak.advisors.values()),
            soak.team_loop(team), soak.killer_loop(), soak.ws_client_loop(),
            memory.sample_loop(gw, args.sample_every),
            _progress(soak, memory))]
        await asyncio.gather(*(soak.caller_loop(c) for c in callers))
        for task in background[:-2]:
            task.cancel()
        for actor in soak.advisors.values():  # back from a break they chose, for the check
            if actor.chosen == "away":
                actor.chosen = "available"
                await actor.ws_command("state", state="available")
        await memory.sample(gw)
        if args.tracemalloc:
            _allocation_growth(first_snapshot)
        code = await final_checks(gw, soak, memory, slots0, args)
        for task in background[-2:]:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        return code


async def _snapshot_after(delay: float) -> asyncio.Task[tracemalloc.Snapshot]:
    """A snapshot of the allocations taken once the traffic has warmed up."""
    async def take() -> tracemalloc.Snapshot:
        await asyncio.sleep(delay)
        return tracemalloc.take_snapshot()
    return asyncio.create_task(take())


def _allocation_growth(first: asyncio.Task[tracemalloc.Snapshot] | None) -> None:
    """Where the Python heap grew since the warm-up snapshot, by file."""
    if first is None or not first.done():
        return
    stats = tracemalloc.take_snapshot().compare_to(first.result(), "filename")
    print("\nheap growth since the warm-up (tracemalloc, by file):")
    for st in stats[:12]:
        print(f"  {st.size_diff / 1024:+9.1f} KiB  {st.count_diff:+7d} blocks  "
              f"{st.traceback[0].filename}")


def _prompts(prompts: Path) -> dict[str, str]:
    from tests.e2e.gateway_harness import PROMPT_CACHE, REPO
    return {"texts": str(REPO / "config" / "prompts.yaml"), "cache_dir": str(PROMPT_CACHE),
            "override_dir": str(prompts)}


async def _progress(soak: Soak, memory: Memory) -> None:
    while True:
        await asyncio.sleep(60)
        c = soak.stats.c
        print(f"soak: {time.strftime('%H:%M:%S')} placed {c['placed']} reached {c['reached']} "
              f"answered {c['answered']} transferred {c['transferred']} "
              f"kills {len(soak.stats.kills)} errors {len(soak.stats.errors)} "
              f"rss {memory.last_controller_mb():.1f} MB", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--callers", type=int, default=8, help="phones calling at once (max 12)")
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--kill-every", type=float, default=180, help="seconds between kills")
    p.add_argument("--sample-every", type=float, default=30, help="RSS sampling, seconds")
    p.add_argument("--tracemalloc", action="store_true",
                   help="print where the Python heap grew after the warm-up (slower)")
    p.add_argument("--log", default="", help="the gateway's log file (default: in /tmp)")
    args = p.parse_args()
    args.log = args.log or f"/tmp/soak-{time.strftime('%Y%m%d-%H%M%S')}.log"
    logging.basicConfig(filename=args.log, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    print(f"soak: log {args.log}", flush=True)
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()

"""Capacity at the edge, a crashed worker, a refused registration: real SIP, real processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from pathlib import Path

import pytest

from tests.e2e.gateway_harness import (
    Advisor,
    bus_event,
    call_hotline,
    hotline_uri,
    running_gateway,
    until,
)
from tests.peers.phone import Phone

pytestmark = pytest.mark.e2e


async def _dial(caller: Phone, uri: str) -> str:
    leg = uuid.uuid4().hex
    await caller.command("dial", leg=leg, uri=uri)
    return leg


async def _outcome(caller: Phone, leg: str, timeout: float = 15) -> dict:
    """The first final state of a leg: confirmed, or disconnected with its code."""
    async def first(state: str) -> dict:
        return await caller.wait_for("leg.state", leg=leg, state=state, timeout=timeout)

    done, pending = await asyncio.wait(
        [asyncio.ensure_future(first("confirmed")), asyncio.ensure_future(first("disconnected"))],
        return_when=asyncio.FIRST_COMPLETED)
    for p in pending:
        p.cancel()
    return done.pop().result()


async def test_2w_plus_1_callers_exactly_2w_answered_and_a_503(tmp_path: Path) -> None:
    workers = 2
    async with running_gateway(tmp_path, workers=workers) as gw, contextlib.AsyncExitStack() as st:
        callers = [await st.enter_async_context(Phone(name=f"+4420794600{i:02d}"))
                   for i in range(2 * workers + 1)]
        legs = [await _dial(c, hotline_uri(gw)) for c in callers]
        outcomes = await asyncio.gather(*(_outcome(c, leg) for c, leg in zip(callers, legs, strict=True)))
        answered = [o for o in outcomes if o["state"] == "confirmed"]
        refused = [o for o in outcomes if o["state"] == "disconnected"]
        assert len(answered) == 2 * workers
        assert [o["code"] for o in refused] == [503]
        per_worker = sorted(
            sum(1 for c in gw.flow.calls.all() if c.worker == w) for w in gw.pool.links)
        assert per_worker == [2] * workers
        assert all(link.up and link.restarts == 0 for link in gw.pool.links.values())

        for c, leg, o in zip(callers, legs, outcomes, strict=True):
            if o["state"] == "confirmed":
                await c.command("hangup", leg=leg)
                await c.wait_for("leg.state", leg=leg, state="disconnected")
        await until(lambda: len(gw.flow.calls) == 0)

        # Every worker takes calls again: a second round fills all slots.
        legs2 = [await _dial(c, hotline_uri(gw)) for c in callers[: 2 * workers]]
        outcomes2 = await asyncio.gather(
            *(_outcome(c, leg) for c, leg in zip(callers, legs2, strict=False)))
        assert [o["state"] for o in outcomes2] == ["confirmed"] * (2 * workers)
        for c, leg in zip(callers, legs2, strict=False):
            await c.command("hangup", leg=leg)


def _ppid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[1])


@pytest.mark.parametrize("zygote", [True, False], ids=["forked", "spawned"])
async def test_killed_worker_ends_the_call_frees_the_advisor_and_comes_back(
    tmp_path: Path, zygote: bool,
) -> None:
    async with running_gateway(tmp_path, workers__fork_from_zygote=zygote) as gw, \
            Advisor(gw, "sofia") as sofia, \
            Phone(name="+34911234567") as caller, Phone(name="+34911234568") as caller2:
        await sofia.set_state("available")
        leg = await call_hotline(caller, gw, "32")
        incoming = await sofia.phone.wait_for("leg.incoming", timeout=20)
        await sofia.phone.command("answer", leg=incoming["leg"], code=200)
        connected = await sofia.stream.wait_for("call.connected")
        call_id = connected["call_id"]
        link = gw.pool.get(gw.flow.calls.get(call_id).worker)
        old_pid = link.process.pid
        # Forked: every worker is the zygote's child; spawned: ours.
        parent = gw.pool.zygote.process.pid if zygote else os.getpid()
        assert {_ppid(w.process.pid) for w in gw.pool.links.values()} == {parent}

        os.kill(old_pid, signal.SIGKILL)
        ended = await sofia.stream.wait_for("call.ended", call_id=call_id, timeout=2)
        assert ended["data"]["reason"] == "worker_failed"
        rec = gw.store.get_call(call_id)
        assert rec is not None and rec.end_reason == "worker_failed"
        assert gw.flow.distributor.advisor_state("sofia").value == "available"
        # The edge sends the caller the BYE the dead worker cannot.
        bye = await caller.wait_for("leg.state", leg=leg, state="disconnected", timeout=5)
        assert bye["code"] in (200, 503)
        # ... and the advisor's softphone too: she is not left in a dead call.
        await sofia.phone.wait_for("leg.state", leg=incoming["leg"], state="disconnected",
                                   timeout=5)
        loads = {d["duid"]: d["load"] for d in await gw.rpc.dispatcher_list()}
        assert loads[link.worker_id] == 0  # the dead worker's slots are free again

        await asyncio.wait_for(link.ready.wait(), 10)
        assert link.process.pid != old_pid and link.restarts == 1
        assert _ppid(link.process.pid) == parent
        # The next call is answered (by whichever worker the edge picks).
        leg2 = await _dial(caller2, hotline_uri(gw))
        assert (await _outcome(caller2, leg2))["state"] == "confirmed"
        await caller2.command("hangup", leg=leg2)


async def test_wrong_sip_password_is_refused_and_the_advisor_is_not_reachable(
    tmp_path: Path,
) -> None:
    async with running_gateway(tmp_path) as gw, \
            Advisor(gw, "sofia", sip_password="not-her-password") as sofia, \
            Phone(name="+34911234567") as caller:
        assert sofia.registration["code"] in (401, 403)
        assert not sofia.registration["active"]
        assert not await gw.rpc.registered("sofia")

        # No registered phone: she is away (phone_offline), never offered a call.
        await sofia.set_state("available")
        away = await sofia.stream.wait_for("agent.state", state="away", timeout=10)
        assert away["data"]["reason"] == "phone_offline"
        leg = await call_hotline(caller, gw, "32")
        queued = await bus_event(gw, "call.queued", timeout=20)
        assert not [e for e in sofia.stream.events if e["type"] == "call.offered"]
        assert not sofia.phone.received("leg.incoming")
        # The caller is not lost: still waiting in the queue.
        assert gw.flow.distributor.waiting_calls() == [queued["call_id"]]
        await caller.command("hangup", leg=leg)


async def test_a_worker_that_cannot_start_fails_the_start_with_its_error(
    tmp_path: Path,
) -> None:
    import socket as _socket

    from cti.controller.gateway import Gateway
    from tests.e2e.gateway_harness import gateway_settings

    settings = gateway_settings(tmp_path, workers=1)
    port = settings.workers.sip_port_base
    with _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", port))
        gw = Gateway(settings)
        with pytest.raises(RuntimeError, match=rf"media worker w1 exited during start "
                                               rf"\(sip port {port}\)"):
            await gw.start()
    assert not any(link.process and link.process.returncode is None
                   for link in gw.pool.links.values())

"""The SIP edge against a real Kamailio: start/stop, digest REGISTER, dispatching,
worker-to-advisor routing, malformed requests, port conflicts.

Every test gets its own free ports and its own runtime dir; Kamailio and SIPp are
always stopped in fixture teardown, also when the test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cti.edge import EdgeSettings, EdgeStartError, KamailioEdge, WorkerTarget
from cti.edge.probe import sip_answers
from cti.edge.render import TrunkTarget
from tests.peers.rawsip import (
    SDP,
    Dialog,
    SipMessage,
    SipUA,
    header_param,
    new_branch,
    new_tag,
    split_uris,
    uri_of,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio not installed"),
]

HOTLINE = "+31247247247"
REALM = "cti.test"
ADVISORS = {"alice": "alice-pw", "bob": "bob-pw"}
SIPP_WORKER = Path(__file__).parent / "sipp" / "worker_uas.xml"

EdgeFactory = Callable[..., Awaitable[KamailioEdge]]


# ---------------------------------------------------------------- helpers


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (Kamailio listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def group_members(pgid: int) -> list[int]:
    """Pids (not zombies) whose process group is `pgid`, read from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def edge_settings(runtime_dir: Path, port: int, workers: list[WorkerTarget]) -> EdgeSettings:
    return EdgeSettings(
        ip="127.0.0.1",
        port=port,
        runtime_dir=runtime_dir,
        realm=REALM,
        hotline_numbers=[HOTLINE],
        workers=workers,
        advisors=dict(ADVISORS),
    )


def hotline_uri(port: int, number: str = HOTLINE) -> str:
    return f"sip:{number}@127.0.0.1:{port}"


def loads(dests: list[dict[str, object]]) -> dict[object, object]:
    return {d["duid"]: d["load"] for d in dests}


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def runtime_dir() -> Iterator[Path]:
    # Short path on purpose: unix socket paths are limited to 107 bytes.
    path = Path(tempfile.mkdtemp(prefix="cti-edge-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def edge_port() -> int:
    return free_port()


@pytest.fixture
async def make_edge(runtime_dir: Path, edge_port: int) -> AsyncIterator[EdgeFactory]:
    """Start an edge on this test's port and run dir; always stopped afterwards."""
    started: list[KamailioEdge] = []

    async def make(workers: list[WorkerTarget] | None = None, **overrides: Any) -> KamailioEdge:
        settings = edge_settings(runtime_dir, edge_port, workers or [])
        edge = KamailioEdge(dataclasses.replace(settings, **overrides))
        started.append(edge)
        await edge.start()
        return edge

    yield make
    for edge in started:
        await edge.stop()
        if edge.pid is not None:
            assert group_members(edge.pid) == [], "kamailio processes left behind"


class SippWorkers:
    """SIPp fake workers (answer INVITE, wait for BYE, 200 to OPTIONS).

    `workers(n)` starts n of them as w1..wn; `kill(duid)` SIGKILLs one (a crashed
    media worker), `restart(duid)` starts a fresh one on the same port.
    """

    def __init__(self, runtime_dir: Path) -> None:
        self.runtime_dir = runtime_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.targets: dict[str, WorkerTarget] = {}
        self._all: list[subprocess.Popen[bytes]] = []

    def __call__(self, n: int) -> list[WorkerTarget]:
        workers = [WorkerTarget(f"w{i + 1}", "127.0.0.1", free_port()) for i in range(n)]
        for w in workers:
            self._spawn(w)
        for w in workers:
            wait_sip_alive(w.port)
        return workers

    def _spawn(self, w: WorkerTarget) -> None:
        cmd = [
            "sipp", "-sf", str(SIPP_WORKER), "-i", w.host, "-p", str(w.port),
            "-aa", "-nostdin", "-timeout", "90s", "-max_socket", "64",
        ]  # fmt: skip
        proc = subprocess.Popen(
            cmd, cwd=self.runtime_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._all.append(proc)
        self.procs[w.duid] = proc
        self.targets[w.duid] = w

    def kill(self, duid: str) -> None:
        proc = self.procs[duid]
        proc.kill()
        proc.wait(timeout=3)

    def restart(self, duid: str) -> WorkerTarget:
        w = self.targets[duid]
        assert self.procs[duid].poll() is not None, "kill the old worker first"
        self._spawn(w)
        wait_sip_alive(w.port)
        return w

    def stop_all(self) -> None:
        for proc in self._all:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._all:
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def sipp_workers(runtime_dir: Path) -> Iterator[SippWorkers]:
    workers = SippWorkers(runtime_dir)
    yield workers
    workers.stop_all()
    assert all(p.poll() is not None for p in workers._all), "sipp left behind"


def wait_sip_alive(port: int, timeout: float = 5.0) -> None:
    """Poll with OPTIONS until something answers SIP on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    with SipUA(("127.0.0.1", port)) as ua:
        while True:
            raw = ua.request(
                "OPTIONS", f"sip:127.0.0.1:{port}", call_id=f"probe-{time.monotonic_ns()}",
                cseq=1, from_hdr="<sip:probe@127.0.0.1>;tag=p", to_hdr=f"<sip:127.0.0.1:{port}>",
            )  # fmt: skip
            try:
                ua.transact(raw, timeout=0.2)
                return
            except (TimeoutError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


@pytest.fixture
def ua_factory(edge_port: int) -> Iterator[Callable[..., SipUA]]:
    uas: list[SipUA] = []

    def make(local: tuple[str, int] = ("127.0.0.1", 0), user: str = "caller") -> SipUA:
        ua = SipUA(("127.0.0.1", edge_port), local=local, user=user)
        uas.append(ua)
        return ua

    yield make
    for ua in uas:
        ua.close()


# ---------------------------------------------------------------- (a) lifecycle


async def test_start_ready_and_stop_leaves_no_process(make_edge: EdgeFactory) -> None:
    edge = await make_edge()
    assert edge.alive and edge.returncode is None
    assert edge.files is not None and edge.files.pid_file.exists()
    assert "kamailio 5." in await edge.rpc.version()
    pgid = edge.pid
    assert pgid is not None and len(group_members(pgid)) > 1  # main + children

    await edge.stop()
    assert not edge.alive and edge.returncode == 0
    assert group_members(pgid) == []
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    assert not edge.files.jsonrpc_socket.exists()
    await edge.stop()  # idempotent


async def test_wait_returns_when_kamailio_dies(make_edge: EdgeFactory) -> None:
    edge = await make_edge()
    assert edge.pid is not None
    os.kill(edge.pid, 15)
    assert await asyncio.wait_for(edge.wait(), 5) == 0
    assert not edge.alive


# ---------------------------------------------------------------- (b) REGISTER


async def test_register_digest_auth(
    make_edge: EdgeFactory, ua_factory: Callable[..., SipUA]
) -> None:
    edge = await make_edge()

    ok = ua_factory().register("alice", ADVISORS["alice"])
    assert ok.status == 200, ok
    assert await edge.rpc.registered("alice")

    wrong = ua_factory().register("bob", "not-bobs-password")
    assert wrong.status == 401
    assert not await edge.rpc.registered("bob")

    unknown = ua_factory().register("mallory", "whatever")
    assert unknown.status == 401
    assert not await edge.rpc.registered("mallory")


async def test_advisors_added_and_removed_at_run_time(
    make_edge: EdgeFactory, ua_factory: Callable[..., SipUA]
) -> None:
    edge = await make_edge()
    assert ua_factory().register("carol", "carol-pw").status == 401

    await edge.rpc.add_advisor("carol", "carol-pw")
    assert ua_factory().register("carol", "carol-pw").status == 200
    assert await edge.rpc.registered("carol")

    await edge.rpc.remove_advisor("carol")
    assert not await edge.rpc.registered("carol")
    assert ua_factory().register("carol", "carol-pw").status == 401


async def test_options_to_the_edge_is_answered(
    make_edge: EdgeFactory, ua_factory: Callable[..., SipUA], edge_port: int
) -> None:
    await make_edge()
    ua = ua_factory()
    raw = ua.request(
        "OPTIONS", f"sip:127.0.0.1:{edge_port}", call_id="ka-1", cseq=1,
        from_hdr="<sip:alice@127.0.0.1>;tag=k", to_hdr=f"<sip:127.0.0.1:{edge_port}>",
    )  # fmt: skip
    assert ua.transact(raw).status == 200


# ---------------------------------------------------------------- (c) dispatching


async def test_hotline_calls_are_spread_with_maxload_and_503_when_full(
    make_edge: EdgeFactory,
    sipp_workers: SippWorkers,
    ua_factory: Callable[..., SipUA],
    edge_port: int,
) -> None:
    edge = await make_edge(sipp_workers(2))
    callers = [ua_factory() for _ in range(5)]
    # The bare number (without '+') is a hotline too.
    numbers = [HOTLINE, HOTLINE.lstrip("+")] * 2 + [HOTLINE]
    dialogs = [
        ua.send_invite(hotline_uri(edge_port, n)) for ua, n in zip(callers, numbers, strict=True)
    ]
    replies = [ua.wait_invite(d) for ua, d in zip(callers, dialogs, strict=True)]

    assert sorted(r.status for r in replies) == [200, 200, 200, 200, 503]
    busy = next(r for r in replies if r.status == 503)
    assert busy.reason == "All workers busy" and "kamailio" in busy.get("Server")
    assert loads(await edge.rpc.dispatcher_list()) == {"w1": 2, "w2": 2}

    for ua, dialog, reply in zip(callers, dialogs, replies, strict=True):
        if reply.status == 200:
            assert "hl=1" in reply.get("Record-Route")
            assert ua.bye(dialog).status == 200
    assert loads(await edge.rpc.dispatcher_list()) == {"w1": 0, "w2": 0}


async def test_disabled_workers_get_no_calls(
    make_edge: EdgeFactory,
    sipp_workers: SippWorkers,
    ua_factory: Callable[..., SipUA],
    edge_port: int,
) -> None:
    edge = await make_edge(sipp_workers(1))
    await edge.rpc.set_worker_state("w1", active=False)
    ua = ua_factory()
    assert ua.wait_invite(ua.send_invite(hotline_uri(edge_port))).status == 503

    await edge.rpc.set_worker_state("w1", active=True)
    dialog = ua.send_invite(hotline_uri(edge_port))
    assert ua.wait_invite(dialog).status == 200
    assert ua.bye(dialog).status == 200
    assert loads(await edge.rpc.dispatcher_list()) == {"w1": 0}


async def test_dead_worker_fails_over_after_branch_timeout(
    make_edge: EdgeFactory,
    sipp_workers: SippWorkers,
    ua_factory: Callable[..., SipUA],
    edge_port: int,
) -> None:
    live = sipp_workers(1)[0]
    dead = WorkerTarget("dead", "127.0.0.1", free_port())  # nothing listens there
    edge = await make_edge([dead, live])
    # Two calls: both are tried on the dead worker first (the first to fill).
    ua = ua_factory()
    start = time.monotonic()
    dialogs = [ua.send_invite(hotline_uri(edge_port)) for _ in range(2)]
    replies = [ua.wait_invite(d, timeout=10) for d in dialogs]
    assert [r.status for r in replies] == [200, 200]
    assert 2.5 < time.monotonic() - start < 8  # one 3 s branch timeout, not more
    assert loads(await edge.rpc.dispatcher_list()) == {"dead": 0, "w1": 2}
    # Dialogs are tagged with the worker that answered, not the one tried first.
    assert await edge.rpc.worker_dialogs("dead") == []
    assert {d["call-id"] for d in await edge.rpc.worker_dialogs("w1")} == {
        d.call_id for d in dialogs
    }
    for d in dialogs:
        assert ua.bye(d).status == 200
    assert loads(await edge.rpc.dispatcher_list()) == {"dead": 0, "w1": 0}


async def test_a_worker_fills_before_the_next_one_gets_a_call(
    make_edge: EdgeFactory,
    sipp_workers: SippWorkers,
    ua_factory: Callable[..., SipUA],
    edge_port: int,
) -> None:
    """The cost is per busy worker: w1's two slots take the first two calls, w2's
    the next two; w1, once its probes go unanswered, is skipped."""
    edge = await make_edge(sipp_workers(3), ping_interval=1)
    ua = ua_factory()
    dialogs = []
    for expected in ({"w1": 1, "w2": 0, "w3": 0}, {"w1": 2, "w2": 0, "w3": 0},
                     {"w1": 2, "w2": 1, "w3": 0}):
        dialogs.append(ua.send_invite(hotline_uri(edge_port)))
        assert ua.wait_invite(dialogs[-1]).status == 200
        assert loads(await edge.rpc.dispatcher_list()) == expected
    # A slot freed on w1 is the next call's, although w2 and w3 have more room.
    assert ua.bye(dialogs.pop(0)).status == 200
    dialogs.append(ua.send_invite(hotline_uri(edge_port)))
    assert ua.wait_invite(dialogs[-1]).status == 200
    assert loads(await edge.rpc.dispatcher_list()) == {"w1": 2, "w2": 1, "w3": 0}
    for dialog in dialogs:
        assert ua.bye(dialog).status == 200

    # w1 stops answering: its OPTIONS go unanswered, the dispatcher marks it
    # inactive, and the next call goes straight to w2 (no branch timeout).
    sipp_workers.kill("w1")
    deadline = time.monotonic() + 15
    while "I" not in _flags(await edge.rpc.dispatcher_list(), "w1"):
        assert time.monotonic() < deadline, await edge.rpc.dispatcher_list()
        await asyncio.sleep(0.2)
    start = time.monotonic()
    dialog = ua.send_invite(hotline_uri(edge_port))
    assert ua.wait_invite(dialog).status == 200
    assert time.monotonic() - start < 2.5  # not tried on w1 first (3 s branch timeout)
    assert loads(await edge.rpc.dispatcher_list()) == {"w1": 0, "w2": 1, "w3": 0}
    assert ua.bye(dialog).status == 200


def _flags(dests: list[dict[str, object]], duid: str) -> str:
    return str(next(d["flags"] for d in dests if d["duid"] == duid))


def _ringing_hotline_call(caller: SipUA, worker_ua: SipUA, edge_port: int
                          ) -> tuple[Dialog, SipMessage]:
    """The caller dials the hotline; the (fake) worker w1 gets it and rings (180)."""
    dialog = caller.send_invite(hotline_uri(edge_port))
    invite = worker_ua.recv(2.0, lambda m: m.method == "INVITE" and not m.is_response)
    worker_ua.send(worker_ua.response_to(invite, 180, "Ringing", to_tag="w1"))
    ringing = caller.recv(2.0, lambda m: m.is_response and m.status == 180)
    assert ringing.call_id == dialog.call_id
    return dialog, invite


async def test_cancelled_hotline_call_frees_its_slot(
    make_edge: EdgeFactory, ua_factory: Callable[..., SipUA], edge_port: int
) -> None:
    worker = WorkerTarget("w1", "127.0.0.1", free_port())
    edge = await make_edge([worker])
    worker_ua = ua_factory(local=(worker.host, worker.port), user="worker")
    caller = ua_factory()

    dialog, invite = _ringing_hotline_call(caller, worker_ua, edge_port)
    assert loads(await edge.rpc.dispatcher_list()) == {"w1": 1}

    caller.send_cancel(dialog)
    cancel = worker_ua.recv(2.0, lambda m: m.method == "CANCEL" and not m.is_response)
    worker_ua.send(worker_ua.response_to(cancel, 200, "OK", to_tag="w1"))
    worker_ua.send(worker_ua.response_to(invite, 487, "Request Terminated", to_tag="w1"))
    assert caller.wait_invite(dialog).status == 487
    assert loads(await edge.rpc.dispatcher_list()) == {"w1": 0}


async def test_rejecting_workers_fail_over_then_503_without_load_drift(
    make_edge: EdgeFactory, ua_factory: Callable[..., SipUA], edge_port: int
) -> None:
    workers = [WorkerTarget(f"w{i}", "127.0.0.1", free_port()) for i in (1, 2)]
    edge = await make_edge(workers)
    worker_uas = [ua_factory(local=(w.host, w.port), user=w.duid) for w in workers]
    caller = ua_factory()

    dialog = caller.send_invite(hotline_uri(edge_port))
    for _ in workers:  # each worker is tried once, in load order, and says busy
        invite = None
        while invite is None:
            for ua in worker_uas:
                with contextlib.suppress(TimeoutError):
                    invite = ua.recv(0.2, lambda m: m.method == "INVITE" and not m.is_response)
                    ua.send(ua.response_to(invite, 486, "Busy Here", to_tag=ua.user))
                    ua.recv(2.0, lambda m: m.method == "ACK")
                    break
    reply = caller.wait_invite(dialog)
    assert (reply.status, reply.reason) == (503, "All workers busy")
    assert loads(await edge.rpc.dispatcher_list()) == {"w1": 0, "w2": 0}


async def test_unknown_number_404_and_other_destinations_need_auth(
    make_edge: EdgeFactory, ua_factory: Callable[..., SipUA], edge_port: int
) -> None:
    await make_edge()
    ua = ua_factory()
    assert ua.wait_invite(ua.send_invite(hotline_uri(edge_port, "+3100000"))).status == 404
    assert ua.wait_invite(ua.send_invite(f"sip:alice@127.0.0.1:{edge_port}")).status == 407


# ---------------------------------------------------------------- (d) worker -> advisor


async def test_worker_invite_reaches_registered_advisor(
    make_edge: EdgeFactory, ua_factory: Callable[..., SipUA], edge_port: int
) -> None:
    worker = WorkerTarget("w1", "127.0.0.1", free_port())
    edge = await make_edge([worker])
    advisor = ua_factory(user="alice")
    assert advisor.register("alice", ADVISORS["alice"]).status == 200
    worker_ua = ua_factory(local=(worker.host, worker.port), user="worker")

    dialog = worker_ua.send_invite(f"sip:alice@127.0.0.1:{edge_port}")
    invite = advisor.recv(2.0, lambda m: m.method == "INVITE" and not m.is_response)
    assert invite.call_id == dialog.call_id
    assert invite.request_uri == f"sip:alice@{advisor.host}:{advisor.port}"
    assert "hl=1" not in invite.get("Record-Route")  # not a dispatched dialog

    advisor.send(advisor.response_to(invite, 200, "OK", to_tag="adv1"))
    assert worker_ua.wait_invite(dialog).status == 200
    ack = advisor.recv(2.0, lambda m: m.method == "ACK")
    assert ack.call_id == dialog.call_id
    assert loads(await edge.rpc.dispatcher_list()) == {"w1": 0}  # not counted

    worker_ua.send_bye(dialog)
    bye = advisor.recv(2.0, lambda m: m.method == "BYE" and not m.is_response)
    advisor.send(advisor.response_to(bye, 200, "OK"))
    assert worker_ua.final_response(dialog.call_id, "BYE").status == 200
    assert loads(await edge.rpc.dispatcher_list()) == {"w1": 0}


async def test_worker_invite_to_unregistered_advisor_is_404(
    make_edge: EdgeFactory, ua_factory: Callable[..., SipUA], edge_port: int
) -> None:
    worker = WorkerTarget("w1", "127.0.0.1", free_port())
    await make_edge([worker])
    worker_ua = ua_factory(local=(worker.host, worker.port), user="worker")
    reply = worker_ua.wait_invite(worker_ua.send_invite(f"sip:bob@127.0.0.1:{edge_port}"))
    assert reply.status == 404


# ---------------------------------------------------------------- (e) malformed


async def test_bad_cseq_gets_400(
    make_edge: EdgeFactory, ua_factory: Callable[..., SipUA], edge_port: int
) -> None:
    await make_edge()
    ua = ua_factory()
    raw = ua.request(
        "INVITE", hotline_uri(edge_port), call_id="bad-cseq-1", cseq=1,
        from_hdr="<sip:x@127.0.0.1>;tag=b", to_hdr=f"<{hotline_uri(edge_port)}>",
    ).replace("CSeq: 1 INVITE", "CSeq: abc INVITE")  # fmt: skip
    # Over UDP a client retransmits (RFC 3261 timer A); a datagram sent while the
    # edge's children are still starting can go unanswered once.
    for _ in range(4):
        ua.send(raw)
        try:
            reply = ua.recv(1.0, lambda m: m.is_response and m.call_id == "bad-cseq-1")
            break
        except TimeoutError:
            continue
    else:
        raise AssertionError("no answer to a malformed INVITE after 4 tries")
    assert reply.status == 400


async def test_edge_survives_garbage(
    make_edge: EdgeFactory, ua_factory: Callable[..., SipUA]
) -> None:
    edge = await make_edge()
    ua = ua_factory()
    for junk in (b"\x00\x01garbage", b"INVITE\r\n\r\n", b"SIP/2.0 200 OK\r\n\r\n"):
        ua.send(junk)
    await asyncio.sleep(0.1)
    assert edge.alive
    assert "kamailio" in await edge.rpc.version()


# ---------------------------------------------------------------- (f) port in use


async def test_port_in_use_fails_start_with_the_reason(runtime_dir: Path, edge_port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", edge_port))
        edge = KamailioEdge(edge_settings(runtime_dir, edge_port, []))
        try:
            with pytest.raises(EdgeStartError, match="Address already in use") as exc:
                await edge.start(timeout=5)
            assert f"127.0.0.1:{edge_port}" in str(exc.value)
            assert not edge.alive
        finally:
            await edge.stop()
        assert edge.pid is not None and group_members(edge.pid) == []


# ---------------------------------------------------------------- (g) dead worker


def expect_edge_bye(ua: SipUA, call_id: str, edge_port: int) -> SipMessage:
    """The BYE the edge itself sends to a caller; answered with 200."""
    bye = ua.recv(3.0, lambda m: m.method == "BYE" and not m.is_response and m.call_id == call_id)
    ua.send(ua.response_to(bye, 200, "OK"))
    assert f"127.0.0.1:{edge_port}" in bye.get("Via")  # sent by the edge itself
    return bye


async def test_dialogs_of_a_killed_worker_are_ended_and_its_slots_freed(
    make_edge: EdgeFactory,
    sipp_workers: SippWorkers,
    ua_factory: Callable[..., SipUA],
    edge_port: int,
) -> None:
    edge = await make_edge(sipp_workers(2))
    callers = [ua_factory() for _ in range(4)]
    dialogs = [ua.send_invite(hotline_uri(edge_port)) for ua in callers]
    assert [ua.wait_invite(d).status for ua, d in zip(callers, dialogs, strict=True)] == [200] * 4
    assert loads(await edge.rpc.dispatcher_list()) == {"w1": 2, "w2": 2}

    # The edge knows which worker answered each dialog.
    on_w1 = {d["call-id"] for d in await edge.rpc.worker_dialogs("w1")}
    on_w2 = {d["call-id"] for d in await edge.rpc.worker_dialogs("w2")}
    assert len(on_w1) == len(on_w2) == 2
    assert on_w1 | on_w2 == {d.call_id for d in dialogs}

    sipp_workers.kill("w1")
    start = time.monotonic()
    assert await edge.rpc.end_worker_dialogs("w1") == 2
    for ua, dialog in zip(callers, dialogs, strict=True):
        if dialog.call_id in on_w1:
            bye = expect_edge_bye(ua, dialog.call_id, edge_port)
            assert bye.get("Reason") == 'SIP;cause=503;text="media worker failed"'
            assert bye.to_tag == header_param(dialog.from_hdr, "tag")  # the caller's dialog
    assert time.monotonic() - start < 1.0
    assert loads(await edge.rpc.dispatcher_list()) == {"w1": 0, "w2": 2}
    assert await edge.rpc.worker_dialogs("w1") == []
    assert await edge.rpc.end_worker_dialogs("w1") == 0  # nothing left: idempotent
    assert loads(await edge.rpc.dispatcher_list()) == {"w1": 0, "w2": 2}
    for ua in callers:  # the w2 callers got nothing
        with pytest.raises(TimeoutError):
            ua.recv(0.05, lambda m: m.method == "BYE" and m.call_id in on_w2)

    # The controller replaces the worker: out of rotation, restart, back in.
    await edge.rpc.set_worker_state("w1", active=False)
    sipp_workers.restart("w1")
    await edge.rpc.set_worker_state("w1", active=True)
    newcomer = ua_factory()
    dialog = newcomer.send_invite(hotline_uri(edge_port))
    assert newcomer.wait_invite(dialog).status == 200
    assert loads(await edge.rpc.dispatcher_list()) == {"w1": 1, "w2": 2}
    assert [d["call-id"] for d in await edge.rpc.worker_dialogs("w1")] == [dialog.call_id]

    assert newcomer.bye(dialog).status == 200
    for ua, d in zip(callers, dialogs, strict=True):
        if d.call_id in on_w2:
            assert ua.bye(d).status == 200
    assert loads(await edge.rpc.dispatcher_list()) == {"w1": 0, "w2": 0}


async def test_end_one_dialog_by_call_id(
    make_edge: EdgeFactory,
    sipp_workers: SippWorkers,
    ua_factory: Callable[..., SipUA],
    edge_port: int,
) -> None:
    edge = await make_edge(sipp_workers(1))
    first, second = ua_factory(), ua_factory()
    d1 = first.send_invite(hotline_uri(edge_port))
    d2 = second.send_invite(hotline_uri(edge_port))
    assert first.wait_invite(d1).status == 200 and second.wait_invite(d2).status == 200
    assert loads(await edge.rpc.dispatcher_list()) == {"w1": 2}

    assert await edge.rpc.end_dialog(d1.call_id) is True
    bye = expect_edge_bye(first, d1.call_id, edge_port)
    assert "media worker failed" in bye.get("Reason")
    # The (live) SIPp worker got its BYE too and answered: the slot is free.
    assert loads(await edge.rpc.dispatcher_list()) == {"w1": 1}
    assert [d["call-id"] for d in await edge.rpc.worker_dialogs("w1")] == [d2.call_id]

    assert await edge.rpc.end_dialog(d1.call_id) is False  # already ended
    assert await edge.rpc.end_dialog("no-such-call@nowhere") is False
    with pytest.raises(TimeoutError):
        second.recv(0.05, lambda m: m.method == "BYE")
    assert second.bye(d2).status == 200
    assert loads(await edge.rpc.dispatcher_list()) == {"w1": 0}


async def test_ringing_calls_are_not_ended(
    make_edge: EdgeFactory, ua_factory: Callable[..., SipUA], edge_port: int
) -> None:
    """dlg.end_dlg cannot end early dialogs: the API reports them as not ended."""
    worker = WorkerTarget("w1", "127.0.0.1", free_port())
    edge = await make_edge([worker])
    worker_ua = ua_factory(local=(worker.host, worker.port), user="worker")
    caller = ua_factory()

    dialog, invite = _ringing_hotline_call(caller, worker_ua, edge_port)
    assert await edge.rpc.end_dialog(dialog.call_id) is False
    assert await edge.rpc.end_worker_dialogs("w1") == 0  # tagged only once answered

    worker_ua.send(worker_ua.response_to(invite, 200, "OK", to_tag="w1"))
    assert caller.wait_invite(dialog).status == 200
    worker_ua.recv(2.0, lambda m: m.method == "ACK")
    assert await edge.rpc.end_worker_dialogs("w1") == 1
    expect_edge_bye(caller, dialog.call_id, edge_port)
    bye = worker_ua.recv(2.0, lambda m: m.method == "BYE" and not m.is_response)
    assert bye.get("Reason") == 'SIP;cause=503;text="media worker failed"'
    worker_ua.send(worker_ua.response_to(bye, 200, "OK"))
    assert loads(await edge.rpc.dispatcher_list()) == {"w1": 0}


# ---------------------------------------------------------------- (h) flood guard


def _drain(ua: SipUA, quiet: float = 0.3) -> int:
    """Read replies until none came for `quiet` seconds; how many there were."""
    count = 0
    while True:
        try:
            ua.recv(quiet, lambda m: m.is_response)
        except TimeoutError:
            return count
        count += 1


def _options_answered(ua: SipUA, edge_port: int, timeout: float) -> bool:
    raw = ua.request(
        "OPTIONS", f"sip:127.0.0.1:{edge_port}", call_id=f"ping-{time.monotonic_ns()}", cseq=1,
        from_hdr="<sip:ping@127.0.0.1>;tag=p", to_hdr=f"<sip:127.0.0.1:{edge_port}>",
    )  # fmt: skip
    try:
        return ua.transact(raw, timeout=timeout).status == 200
    except TimeoutError:
        return False


async def test_pike_cuts_a_flood_of_in_dialog_looking_requests(
    make_edge: EdgeFactory, ua_factory: Callable[..., SipUA], edge_port: int
) -> None:
    """A To-tag used to exempt a request from pike: forged BYEs could flood the edge."""
    await make_edge()
    # The flooder gets its own loopback address: pike blocks by source IP, and every
    # other client of this test is on 127.0.0.1.
    flooder = ua_factory(local=("127.0.0.2", 0))
    bystander = ua_factory()
    assert _options_answered(flooder, edge_port, 2.0)
    sent = 1500  # in well under 2 s: far above 400 requests per 2 s
    for i in range(sent):
        flooder.send(flooder.request(
            "BYE", f"sip:+31201234567@127.0.0.1:{edge_port}", call_id=f"flood-{i}", cseq=2,
            from_hdr="<sip:x@127.0.0.2>;tag=f", to_hdr="<sip:y@127.0.0.1>;tag=forged",
            extra=[f"Route: <sip:127.0.0.1:{edge_port};lr>"],
        ))  # fmt: skip
    answered = _drain(flooder)
    assert answered < sent  # the rest was dropped without a word
    # The flooder's IP is blocked now (even a plain OPTIONS), the bystander is not.
    assert not _options_answered(flooder, edge_port, 0.5)
    assert _options_answered(bystander, edge_port, 2.0)
    # ... until the flood has stopped for a while.
    deadline = time.monotonic() + 15
    while not _options_answered(flooder, edge_port, 0.5):
        assert time.monotonic() < deadline, "the flooder was never released"


# ---------------------------------------------------------------- (i) what passes the edge


def _invite(ua: SipUA, ruri: str, extra: list[str]) -> Dialog:
    """send_invite() with extra headers."""
    call_id, branch = uuid.uuid4().hex, new_branch()
    from_hdr = f"<sip:{ua.user}@{ua.host}:{ua.port}>;tag={new_tag()}"
    ua.send(ua.request("INVITE", ruri, call_id=call_id, cseq=1, from_hdr=from_hdr,
                       to_hdr=f"<{ruri}>", branch=branch, extra=extra, body=SDP))
    return Dialog(call_id, from_hdr, f"<{ruri}>", ruri, 1, branch)


def _cti_headers(msg: SipMessage) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in msg.headers:
        if name.lower().startswith("x-cti-"):
            found.setdefault(name.lower(), []).append(value)
    return found


async def test_workers_get_the_edge_secret_and_nobody_elses_cti_headers(
    make_edge: EdgeFactory, ua_factory: Callable[..., SipUA], edge_port: int
) -> None:
    worker = WorkerTarget("w1", "127.0.0.1", free_port())
    edge = await make_edge([worker])
    worker_ua = ua_factory(local=(worker.host, worker.port), user="worker")
    caller = ua_factory()
    dialog = _invite(caller, hotline_uri(edge_port), [
        "X-CTI-Edge: guessed", "x-cti-call-id: forged", "X-Cti-Consult: bob"])
    invite = worker_ua.recv(2.0, lambda m: m.method == "INVITE" and not m.is_response)
    # Only the edge's own secret, once; the caller's X-CTI-* (any case) are gone.
    assert _cti_headers(invite) == {"x-cti-edge": [edge.settings.edge_secret]}
    # The worker's answer names our call id: the caller never sees it.
    ok = worker_ua.response_to(invite, 200, "OK", to_tag="w1")
    worker_ua.send(ok.replace("Content-Length: 0", "X-CTI-Call-ID: cti-1\r\nContent-Length: 0"))
    reply = caller.wait_invite(dialog)
    assert reply.status == 200 and _cti_headers(reply) == {}
    worker_ua.recv(2.0, lambda m: m.method == "ACK")
    # Nor inside the dialog.
    dialog.cseq += 1
    caller.send(caller.request(
        "BYE", dialog.remote_target, call_id=dialog.call_id, cseq=dialog.cseq,
        from_hdr=dialog.from_hdr, to_hdr=dialog.to_hdr,
        extra=[*(f"Route: {r}" for r in dialog.route_set), "X-CTI-Edge: guessed"]))
    bye = worker_ua.recv(2.0, lambda m: m.method == "BYE" and not m.is_response)
    assert _cti_headers(bye) == {}
    worker_ua.send(worker_ua.response_to(bye, 200, "OK"))
    assert caller.final_response(dialog.call_id, "BYE").status == 200


async def test_a_worker_dials_a_directory_target_and_another_worker_through_the_edge(
    make_edge: EdgeFactory, ua_factory: Callable[..., SipUA], edge_port: int
) -> None:
    workers = [WorkerTarget(f"w{i}", "127.0.0.1", free_port()) for i in (1, 2)]
    edge = await make_edge(workers)
    w1, w2 = (ua_factory(local=(w.host, w.port), user=w.duid) for w in workers)
    team = ua_factory(user="crisis")
    route = f"Route: <sip:127.0.0.1:{edge_port};lr>"  # the edge as outbound proxy

    dialog = _invite(w1, f"sip:crisis@127.0.0.1:{team.port}", [route, "X-CTI-Call-ID: c1"])
    invite = team.recv(2.0, lambda m: m.method == "INVITE" and not m.is_response)
    assert invite.get("Via").startswith(f"SIP/2.0/UDP 127.0.0.1:{edge_port};")
    assert f"127.0.0.1:{edge_port};lr" in invite.get("Record-Route")
    assert invite.all("Route") == []  # the preloaded route was ours: consumed
    assert "x-cti-edge" not in _cti_headers(invite)  # the secret is for workers only
    team.send(team.response_to(invite, 200, "OK", to_tag="team"))
    assert w1.wait_invite(dialog).status == 200
    team.recv(2.0, lambda m: m.method == "ACK")
    assert loads(await edge.rpc.dispatcher_list()) == {"w1": 0, "w2": 0}  # not dispatched

    # A join between workers: the receiving worker gets the edge's secret.
    join = _invite(w1, f"sip:join-c1@127.0.0.1:{workers[1].port}", [route])
    joined = w2.recv(2.0, lambda m: m.method == "INVITE" and not m.is_response)
    assert _cti_headers(joined) == {"x-cti-edge": [edge.settings.edge_secret]}
    w2.send(w2.response_to(joined, 200, "OK", to_tag="w2"))
    assert w1.wait_invite(join).status == 200
    w2.recv(2.0, lambda m: m.method == "ACK")

    # Both are w1's dialogs: when w1 dies the edge ends them, the team gets a BYE.
    assert {d["call-id"] for d in await edge.rpc.worker_dialogs("w1")} == {
        dialog.call_id, join.call_id}
    assert await edge.rpc.end_worker_dialogs("w1") == 2
    bye = expect_edge_bye(team, dialog.call_id, edge_port)
    assert bye.get("Reason") == 'SIP;cause=503;text="media worker failed"'
    expect_edge_bye(w2, join.call_id, edge_port)


async def test_early_dialog_prack_and_update_pass_the_dialog_check(
    make_edge: EdgeFactory, ua_factory: Callable[..., SipUA], edge_port: int
) -> None:
    """Carriers answer with reliable 18x: PRACK and UPDATE come before the 200 OK."""
    worker = WorkerTarget("w1", "127.0.0.1", free_port())
    await make_edge([worker])
    advisor = ua_factory(user="alice")
    assert advisor.register("alice", ADVISORS["alice"]).status == 200
    worker_ua = ua_factory(local=(worker.host, worker.port), user="worker")
    dialog = worker_ua.send_invite(f"sip:alice@127.0.0.1:{edge_port}")
    invite = advisor.recv(2.0, lambda m: m.method == "INVITE" and not m.is_response)
    ringing = advisor.response_to(invite, 180, "Ringing", to_tag="adv1").replace(
        "Content-Length: 0", f"Require: 100rel\r\nRSeq: 1\r\nContact: {advisor.contact}\r\n"
        "Content-Length: 0")
    advisor.send(ringing)
    ring = worker_ua.recv(2.0, lambda m: m.is_response and m.status == 180)
    routes = [f"Route: {r}" for r in reversed(split_uris(ring.all("Record-Route")))]
    worker_ua.send(worker_ua.request(
        "PRACK", uri_of(ring.get("Contact")), call_id=dialog.call_id, cseq=2,
        from_hdr=dialog.from_hdr, to_hdr=ring.get("To"), extra=[*routes, "RAck: 1 1 INVITE"]))
    prack = advisor.recv(2.0, lambda m: m.method == "PRACK" and not m.is_response)
    advisor.send(advisor.response_to(prack, 200, "OK"))
    assert worker_ua.final_response(dialog.call_id, "PRACK").status == 200
    # The callee's UPDATE, upstream, in the same early dialog.
    advisor.send(advisor.request(
        "UPDATE", uri_of(invite.get("Contact")), call_id=dialog.call_id, cseq=1,
        from_hdr=ring.get("To"), to_hdr=dialog.from_hdr,
        extra=[f"Route: {r}" for r in split_uris(invite.all("Record-Route"))]))
    update = worker_ua.recv(2.0, lambda m: m.method == "UPDATE" and not m.is_response)
    worker_ua.send(worker_ua.response_to(update, 200, "OK"))
    assert advisor.final_response(dialog.call_id, "UPDATE").status == 200


# ---------------------------------------------------------------- (i) issue 12


async def test_registrations_survive_a_killed_edge(
    make_edge: EdgeFactory, ua_factory: Callable[..., SipUA]
) -> None:
    """usrloc writes through to a sqlite file in the run dir (0600) and loads it back."""
    edge = await make_edge()
    assert ua_factory().register("alice", ADVISORS["alice"]).status == 200
    assert edge.pid is not None and edge.files is not None
    os.killpg(edge.pid, 9)
    await asyncio.wait_for(edge.wait(), 5)
    await edge.stop()

    again = await make_edge()
    # (loaded from the file at start; on a loaded machine give it a moment)
    deadline = time.monotonic() + 5
    while not await again.rpc.registered("alice") and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert await again.rpc.registered("alice")
    assert not await again.rpc.registered("bob")
    assert again.files is not None
    assert again.files.location_db.stat().st_mode & 0o777 == 0o600


async def test_digest_guessing_locks_that_user_out_from_that_address_only(
    make_edge: EdgeFactory, ua_factory: Callable[..., SipUA]
) -> None:
    """100 wrong passwords from 127.0.0.2: the guesser is locked out (403, even with
    the right password); the advisor's own phone at 127.0.0.1 still registers."""
    edge = await make_edge()
    guesser = ua_factory(local=("127.0.0.2", 0))
    replies = [guesser.register("alice", f"guess-{i}").status for i in range(100)]
    lockout = edge.settings.auth_lockout_failures
    assert replies[: lockout - 1] == [401] * (lockout - 1)
    assert set(replies[lockout - 1:]) == {403}
    assert guesser.register("alice", ADVISORS["alice"]).status == 403
    assert not await edge.rpc.registered("alice")
    # Other users from that address are not locked, nor alice from her phone's.
    assert guesser.register("bob", ADVISORS["bob"]).status == 200
    assert ua_factory().register("alice", ADVISORS["alice"]).status == 200
    assert await edge.rpc.registered("alice")


def _flood(ua: SipUA, edge_port: int, count: int = 1500) -> None:
    for i in range(count):  # in well under 2 s: far above 400 requests per 2 s
        ua.send(ua.request(
            "OPTIONS", f"sip:127.0.0.1:{edge_port}", call_id=f"flood-{i}", cseq=1,
            from_hdr=f"<sip:x@{ua.host}>;tag=f", to_hdr=f"<sip:127.0.0.1:{edge_port}>",
        ))  # fmt: skip
    _drain(ua)


async def test_the_controllers_probe_and_a_trunk_pass_a_blocked_address(
    make_edge: EdgeFactory, ua_factory: Callable[..., SipUA], edge_port: int
) -> None:
    """Seen at 90 calls/s from one address: pike blocked it, the controller's probe
    (from the same address) went unanswered, and the edge was killed as hung. The
    probe proves itself with the edge's secret; a trunk is never flood-blocked."""
    trunk_ua = ua_factory(local=("127.0.0.3", 0))
    trunk = TrunkTarget("carrier", "127.0.0.3", trunk_ua.port, ["+31"])
    edge = await make_edge(trunks=[trunk])
    flooder = ua_factory()  # 127.0.0.1: the probe's own address
    _flood(flooder, edge_port)
    assert not _options_answered(flooder, edge_port, 0.5)  # blocked
    assert await sip_answers("127.0.0.1", edge_port, secret=edge.settings.edge_secret)
    assert not await sip_answers("127.0.0.1", edge_port, secret="not-the-secret-0000")
    _flood(trunk_ua, edge_port)
    assert _options_answered(trunk_ua, edge_port, 2.0)  # the carrier still gets through

"""Media workers: spawning, supervising and talking to them (docs/ipc.md).

The controller listens on a unix socket; each worker process connects to it
and says `ready`. A worker whose process exits or whose connection drops is
reported down at once and restarted after a short delay.

Workers are forked from a warm zygote (cti/controller/zygote.py, the default:
they share its pages, issue 15) or, with ``fork_from_zygote`` off, each spawned
as its own ``python -m cti.media.worker``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cti.controller.zygote import Zygote, ZygoteError
from cti.media.protocol import EDGE_SECRET_ENV, ProtocolError, decode, encode
from cti.procutil import die_with_parent

log = logging.getLogger("cti.workers")

COMMAND_TIMEOUT_S = 5.0
# Start fails when no further worker came up for this long (not a limit on the
# whole start: 500 workers take longer than 20 s on 2 cores).
START_PROGRESS_TIMEOUT_S = 20.0
# Workers connecting at once (asyncio's default backlog is 100).
ACCEPT_BACKLOG = 4096
# Workers starting (started, not yet ready) at a time: 500 at once starved each
# other and the zygote of CPU on 2 cores; a few at a time is faster overall.
STARTING_AT_ONCE = 8
READY_TIMEOUT_S = 30.0  # a started worker that neither says ready nor exits frees its turn


class WorkerProcess(Protocol):
    """What supervision uses of a worker's process: asyncio's, or a zygote's child."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...

    def terminate(self) -> None: ...


class WorkerCommandError(Exception):
    """A command a worker refused or did not answer."""


@dataclass
class WorkerSpec:
    worker_id: str
    ip: str
    sip_port: int
    rtp_port: int
    rtp_range: int
    # The edge, as every dialled leg's outbound proxy ("sip:<ip>:<port>"); empty:
    # the worker dials its targets directly.
    outbound_proxy: str = ""
    rtp_timeout_s: float = 0.0  # hang up a leg that received no RTP this long (0: off)
    session_expires_s: int = 0  # RFC 4028 session timers on every call (0: off)


@dataclass
class WorkerLink:
    """One worker: its process, its connection, its pending commands."""

    spec: WorkerSpec
    process: WorkerProcess | None = None
    writer: asyncio.StreamWriter | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    pending: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    restarts: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def worker_id(self) -> str:
        return self.spec.worker_id

    @property
    def up(self) -> bool:
        return self.ready.is_set() and self.writer is not None

    async def command(self, cmd: str, **fields: Any) -> dict[str, Any]:
        """Send one command and wait for its cmd.result; raise WorkerCommandError if refused."""
        if not self.up or self.writer is None:
            raise WorkerCommandError(f"worker {self.worker_id} is down")
        cid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[cid] = fut
        try:
            self.writer.write(encode({"cmd": cmd, "id": cid, **fields}))
            res = await asyncio.wait_for(fut, COMMAND_TIMEOUT_S)
        except (asyncio.TimeoutError, ConnectionError) as e:
            raise WorkerCommandError(f"worker {self.worker_id}: {cmd} failed: {e!r}") from None
        finally:
            self.pending.pop(cid, None)
        if not res.get("ok"):
            raise WorkerCommandError(f"worker {self.worker_id}: {cmd}: {res.get('error')}")
        return res

    def fail_pending(self) -> None:
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("worker down"))
        self.pending.clear()


EventHandler = Callable[[WorkerLink, dict[str, Any]], None]
StateHandler = Callable[[WorkerLink], Awaitable[None]]


class WorkerPool:
    """Starts N workers, keeps them running, routes their events."""

    def __init__(
        self,
        specs: list[WorkerSpec],
        socket_path: Path,
        log_dir: Path,
        on_event: EventHandler,
        on_up: StateHandler,
        on_down: StateHandler,
        restart_delay_s: float = 0.2,
        edge_secret: str = "",
        fork_from_zygote: bool = False,
    ) -> None:
        self.links = {s.worker_id: WorkerLink(s) for s in specs}
        self.socket_path = socket_path
        self.log_dir = log_dir
        self._on_event = on_event
        self._on_up = on_up
        self._on_down = on_down
        self._restart_delay_s = restart_delay_s
        # Handed to each worker in its environment (CTI_EDGE_SECRET), not in argv.
        self._edge_secret = edge_secret
        self._server: asyncio.AbstractServer | None = None
        self._supervisors: list[asyncio.Task[None]] = []
        self._stopping = False
        self.zygote = Zygote(log_dir / "zygote.log") if fork_from_zygote else None
        # When a worker was last started or came up (the start's timeout is on
        # progress: spawning hundreds blocks this loop for seconds on 2 cores).
        self._progress_at = 0.0
        self._starting = asyncio.Semaphore(STARTING_AT_ONCE)

    def get(self, worker_id: str) -> WorkerLink | None:
        return self.links.get(worker_id)

    async def start(self, progress_timeout: float = START_PROGRESS_TIMEOUT_S) -> None:
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        self._server = await asyncio.start_unix_server(self._accept, path=str(self.socket_path),
                                                       backlog=ACCEPT_BACKLOG)
        if self.zygote is not None:
            await self.zygote.start()
        for link in self.links.values():
            self._supervisors.append(asyncio.create_task(self._supervise(link)))
        loop = asyncio.get_running_loop()
        self._progress_at = loop.time()
        while (up := sum(link.ready.is_set() for link in self.links.values())) < len(self.links):
            self._fail_if_one_exited()
            if loop.time() - self._progress_at > progress_timeout:
                down = [w for w, link in self.links.items() if not link.ready.is_set()]
                raise RuntimeError(
                    f"media workers {', '.join(down[:20])}{' …' if len(down) > 20 else ''} "
                    f"did not start: none started or came up for {progress_timeout:.0f} s "
                    f"({up} of {len(self.links)} up; see {self.log_dir}/worker-*.log)")
            await asyncio.sleep(0.05)
        log.info("workers up count=%d", len(self.links))

    def _fail_if_one_exited(self) -> None:
        """A worker that exits before it is ready (a taken SIP port, a broken
        install) fails the start at once, with what it said."""
        failed = [link for link in self.links.values()
                  if link.restarts and not link.ready.is_set()]
        if failed:
            link = failed[0]
            log_path = self.log_dir / f"worker-{link.worker_id}.log"
            raise RuntimeError(f"media worker {link.worker_id} exited during start "
                               f"(sip port {link.spec.sip_port}): {_last_line(log_path)}")

    async def stop(self) -> None:
        self._stopping = True
        # All at once: one after the other, 500 workers took minutes to stop.
        await asyncio.gather(*(_shutdown(link) for link in self.links.values()))
        for task in self._supervisors:
            task.cancel()
        await asyncio.gather(*self._supervisors, return_exceptions=True)
        if self.zygote is not None:
            await self.zygote.stop()
        if self._server:
            self._server.close()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    def _argv(self, spec: WorkerSpec) -> list[str]:
        return [sys.executable, "-X", "faulthandler", "-m", "cti.media.worker",
                *self._worker_args(spec)]

    def _worker_args(self, spec: WorkerSpec) -> list[str]:
        return [
            "--id", spec.worker_id, "--controller", str(self.socket_path),
            "--ip", spec.ip, "--sip-port", str(spec.sip_port),
            "--rtp-port", str(spec.rtp_port), "--rtp-range", str(spec.rtp_range),
            *(["--outbound-proxy", spec.outbound_proxy] if spec.outbound_proxy else []),
            *(["--rtp-timeout", str(spec.rtp_timeout_s)] if spec.rtp_timeout_s > 0 else []),
            *(["--session-expires", str(spec.session_expires_s)]
              if spec.session_expires_s > 0 else []),
        ]

    def _env(self) -> dict[str, str] | None:
        if not self._edge_secret:
            return None  # inherit ours
        return {**os.environ, EDGE_SECRET_ENV: self._edge_secret}

    async def _launch(self, link: WorkerLink) -> WorkerProcess:
        log_path = self.log_dir / f"worker-{link.worker_id}.log"
        if self.zygote is not None:
            env = {EDGE_SECRET_ENV: self._edge_secret} if self._edge_secret else {}
            return await self.zygote.fork(link.worker_id, self._worker_args(link.spec),
                                          log_path, env)
        with open(log_path, "ab") as log_file:
            return await asyncio.create_subprocess_exec(
                *self._argv(link.spec), stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file, stderr=log_file, preexec_fn=die_with_parent(new_group=True),
                env=self._env(),
            )

    async def _supervise(self, link: WorkerLink) -> None:
        """Run the worker; when it dies, report it down and start it again."""
        while not self._stopping:
            async with self._starting:
                try:
                    link.process = await self._launch(link)
                except (ZygoteError, OSError) as e:
                    if self._stopping:
                        return
                    log.error("worker not started worker=%s: %s", link.worker_id, e)
                    link.restarts += 1
                    await asyncio.sleep(max(self._restart_delay_s, 0.5))
                    continue
                self._progress_at = asyncio.get_running_loop().time()
                log.info("worker started worker=%s pid=%s", link.worker_id, link.process.pid)
                await _ready_or_exited(link, link.process)
            code = await link.process.wait()
            if self._stopping:
                return
            log.error("worker exited worker=%s code=%s", link.worker_id, code)
            await self._mark_down(link)
            link.restarts += 1
            await asyncio.sleep(self._restart_delay_s)

    async def _mark_down(self, link: WorkerLink) -> None:
        was_up = link.ready.is_set()
        link.ready.clear()
        if link.writer:
            link.writer.close()
            link.writer = None
        link.fail_pending()
        if was_up:
            await self._on_down(link)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link: WorkerLink | None = None
        try:
            first = decode(await reader.readline())
            link = self.links.get(str(first.get("worker")))
            if first.get("event") != "ready" or link is None:
                log.error("unexpected worker hello: %r", first)
                return
            link.writer = writer
            link.ready.set()
            self._progress_at = asyncio.get_running_loop().time()
            log.info("worker ready worker=%s sip_port=%s", link.worker_id, first.get("sip_port"))
            await self._on_up(link)
            await self._read_events(link, reader)
        except (ProtocolError, ConnectionError) as e:
            log.error("worker connection error worker=%s: %s", link and link.worker_id, e)
        finally:
            writer.close()
            if link is not None and link.writer is writer and not self._stopping:
                # The connection dropped: the worker is useless even if alive.
                await _terminate(link.process)

    async def _read_events(self, link: WorkerLink, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            try:
                msg = decode(line)
            except ProtocolError as e:
                log.error("bad message from worker=%s: %s", link.worker_id, e)
                continue
            if msg.get("event") == "cmd.result":
                fut = link.pending.get(msg.get("id", -1))
                if fut and not fut.done():
                    fut.set_result(msg)
                continue
            try:
                self._on_event(link, msg)
            except Exception:
                log.exception("event handler failed worker=%s event=%s", link.worker_id, msg)


def _last_line(path: Path) -> str:
    """The last meaningful line a worker logged (its error), for a one-line message."""
    try:
        lines = [x.strip() for x in path.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return f"see {path}"
    failed = [x.split("cti.media: ", 1)[-1] for x in lines if "start failed" in x]
    return (failed or lines or [f"see {path}"])[-1][-300:]


async def _ready_or_exited(link: WorkerLink, proc: WorkerProcess) -> None:
    waits = [asyncio.ensure_future(link.ready.wait()), asyncio.ensure_future(proc.wait())]
    await asyncio.wait(waits, timeout=READY_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
    for w in waits:
        w.cancel()
    await asyncio.gather(*waits, return_exceptions=True)


async def _shutdown(link: WorkerLink) -> None:
    if link.up:
        with contextlib.suppress(WorkerCommandError):
            await link.command("shutdown")
    await _terminate(link.process)


async def _terminate(proc: WorkerProcess | None, grace: float = 3.0) -> None:
    if proc is None or proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except asyncio.TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()

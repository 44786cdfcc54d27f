"""The controller's end of the zygote (cti/media/zygote.py): ask it to fork workers,
learn when they exit.

A forked worker is the zygote's child, not ours: asyncio cannot wait for it. The
zygote reaps it and reports its exit code, which resolves the ``ForkedProcess``
that stands in for an ``asyncio.subprocess.Process`` in the pool's supervision
(pid, returncode, wait, terminate). When the zygote itself dies, its workers die
with it (PR_SET_PDEATHSIG): each is killed for sure and reported exited, and the
next fork starts a new zygote.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from cti.procutil import die_with_parent

log = logging.getLogger("cti.zygote")

START_TIMEOUT_S = 30.0  # importing pjsua2 on a loaded machine
FORK_TIMEOUT_S = 10.0
_PIPE_LIMIT = 1 << 20  # bytes a line from the zygote may hold (its lines are short)


class ZygoteError(Exception):
    """The zygote could not start or could not fork a worker."""


class ForkedProcess:
    """A worker forked by the zygote, with the part of asyncio's Process the pool uses."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._exited = asyncio.Event()

    async def wait(self) -> int:
        await self._exited.wait()
        assert self.returncode is not None
        return self.returncode

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def send_signal(self, sig: int) -> None:
        # Only while the zygote has not reported it reaped: its pid is still its own.
        if self.returncode is None:
            os.kill(self.pid, sig)

    def exited(self, code: int) -> None:
        if self.returncode is None:
            self.returncode = code
            self._exited.set()


class Zygote:
    """One zygote process; started on the first fork (or by ``start``)."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self._children: dict[int, ForkedProcess] = {}
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        # One fork in flight: the timeout is then the zygote's, not a queue's (500
        # requests at once timed out behind each other on a busy machine).
        self._fork_lock = asyncio.Lock()
        self._stopping = False

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        async with self._lock:
            if not self.alive:
                await self._start()

    async def _start(self) -> None:
        with open(self.log_path, "ab") as log_file:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-X", "faulthandler", "-m", "cti.media.zygote",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log_file,
                preexec_fn=die_with_parent(new_group=True), limit=_PIPE_LIMIT)
        self.starts += 1
        assert self.process.stdout is not None
        try:
            hello = json.loads(await asyncio.wait_for(self.process.stdout.readline(),
                                                      START_TIMEOUT_S) or b"{}")
        except (asyncio.TimeoutError, ValueError) as e:
            await self._kill()
            raise ZygoteError(f"zygote did not start: {e!r} (see {self.log_path})") from None
        if hello.get("event") != "ready":
            await self._kill()
            raise ZygoteError(f"zygote did not start: {hello!r} (see {self.log_path})")
        log.info("zygote started pid=%s", self.process.pid)
        self._reader = asyncio.create_task(self._read(self.process))

    async def fork(self, worker_id: str, argv: list[str], log_path: Path,
                   env: dict[str, str]) -> ForkedProcess:
        """Fork worker ``worker_id`` running ``cti.media.worker`` with ``argv``."""
        if self._stopping:
            raise ZygoteError("the pool is stopping")
        async with self._fork_lock:
            return await self._fork(worker_id, argv, log_path, env)

    async def _fork(self, worker_id: str, argv: list[str], log_path: Path,
                    env: dict[str, str]) -> ForkedProcess:
        await self.start()
        proc = self.process
        assert proc is not None and proc.stdin is not None
        rid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        req = {"cmd": "fork", "id": rid, "worker": worker_id, "argv": argv,
               "log": str(log_path), "env": env}
        try:
            proc.stdin.write(json.dumps(req).encode() + b"\n")
            reply = await asyncio.wait_for(fut, FORK_TIMEOUT_S)
        except (asyncio.TimeoutError, ConnectionError) as e:
            raise ZygoteError(f"worker {worker_id}: fork failed: {e!r}") from None
        finally:
            self._pending.pop(rid, None)
        if "pid" not in reply:
            raise ZygoteError(f"worker {worker_id}: fork failed: {reply.get('error')}")
        return self._children[int(reply["pid"])]

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        try:
            while line := await proc.stdout.readline():
                self._on_message(line)
        except (ConnectionError, ValueError) as e:  # ValueError: a line over the limit
            log.error("zygote pipe failed: %r", e)
        await self._kill()
        if not self._stopping:
            log.error("zygote exited code=%s: its %d workers are ended and restarted",
                      proc.returncode, len(self._children))
        self._lost_children()

    def _on_message(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            log.error("bad line from the zygote: %r", line[:200])
            return
        event = msg.get("event")
        if event == "forked":
            # Registered here, in order: the zygote's "exited" for it comes after.
            fut = self._pending.get(msg.get("id", -1))
            if "pid" in msg:
                self._children[int(msg["pid"])] = ForkedProcess(int(msg["pid"]))
                if fut is None or fut.done():  # too late: its worker was forked again
                    log.error("late fork of worker=%s pid=%s: ended", msg.get("worker"),
                              msg["pid"])
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(msg["pid"]), signal.SIGKILL)
            if fut is not None and not fut.done():
                fut.set_result(msg)
        elif event == "exited":
            child = self._children.pop(int(msg["pid"]), None)
            if child is not None:
                child.exited(int(msg["code"]))
        else:
            log.error("zygote: %s", msg)

    def _lost_children(self) -> None:
        """The zygote is gone: its children get SIGTERM from the kernel; make sure
        (a worker still shutting down would hold its SIP port) and report them."""
        for pid, child in list(self._children.items()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            child.exited(-signal.SIGKILL)
        self._children.clear()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("zygote exited"))

    async def _kill(self) -> None:
        proc = self.process
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()

    async def stop(self, grace: float = 3.0) -> None:
        """Close the zygote's stdin: it ends its remaining workers and exits."""
        self._stopping = True
        proc = self.process
        if proc is not None and proc.returncode is None and proc.stdin is not None:
            proc.stdin.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(proc.wait(), grace)
        await self._kill()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

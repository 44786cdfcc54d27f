"""A child process of `cti serve` in its own session: spawned with a parent-death
signal, stopped with SIGTERM and then SIGKILL to its whole process group.

Kamailio and rtpengine both run like this (cti.edge.process, cti.edge.rtpengine).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

from cti.procutil import die_with_parent


def log_tail(path: Path, offset: int = 0, lines: int = 15) -> str:
    """Last lines a child wrote since `offset` (the log is appended across restarts)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class ChildProcess:
    """Spawn, watch and stop one program (and whatever it forks)."""

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        self._pgid: int | None = None
        self._log_offset = 0
        self._exit_task: asyncio.Future[int] | None = None
        self.restarts = 0  # counted by the supervisor (cti.controller.supervise)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def _spawn_logged(self, cmd: list[str], log_file: Path) -> None:
        with open(log_file, "ab") as log:
            self._log_offset = log.tell()
            self._proc = await asyncio.create_subprocess_exec(
                *cmd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd="/",
                start_new_session=True,  # own process group: killpg reaches all children
                preexec_fn=die_with_parent(),
            )
        self._pgid = self._proc.pid  # session leader: pgid == pid
        # One waiter for the process' lifetime, polled with timeouts.
        self._exit_task = asyncio.ensure_future(self._proc.wait())

    async def _exited(self, wait: float) -> bool:
        assert self._exit_task is not None
        await asyncio.wait({self._exit_task}, timeout=wait)
        return self._exit_task.done()

    async def stop(self, grace: float = 2.0) -> None:
        """SIGTERM, then SIGKILL the whole process group after `grace` seconds. Idempotent."""
        if self._proc is None:
            return
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGTERM)
            if not await self._exited(grace):
                self._killpg()
                await self._proc.wait()
        # Children may need a moment to exit after the main process; they survive a
        # SIGKILLed main process though (ports stay bound): sweep the group.
        await self._wait_group_gone(0.5)
        if self._group_alive():
            self._killpg()
            await self._wait_group_gone(1.0)

    def kill(self) -> None:
        """SIGKILL the whole process group at once (a hung process ignores SIGTERM);
        wait() then returns and the supervisor starts a new one."""
        self._killpg()

    def _killpg(self) -> None:
        if self._pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._pgid, signal.SIGKILL)

    def _group_alive(self) -> bool:
        if self._pgid is None:
            return False
        try:
            os.killpg(self._pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    async def _wait_group_gone(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._group_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def wait(self) -> int:
        """Wait for the main process to exit (for supervision); its exit code.
        Its children may still be running then: stop() sweeps the process group."""
        if self._exit_task is None:
            raise RuntimeError(f"{type(self).__name__} was not started")
        return await asyncio.shield(self._exit_task)

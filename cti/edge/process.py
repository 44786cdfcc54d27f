"""Run Kamailio as a supervised child process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from pathlib import Path

from cti.edge.render import EdgeSettings, RenderedEdge, render
from cti.edge.rpc import EdgeRpc, EdgeRpcError
from cti.procutil import die_with_parent


class EdgeStartError(RuntimeError):
    """Kamailio did not become ready; the message carries the end of its log."""


def _log_tail(path: Path, offset: int = 0, lines: int = 15) -> str:
    """Last lines Kamailio wrote since `offset` (the log is appended across restarts)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class KamailioEdge:
    """One Kamailio instance: render, spawn, wait until ready, stop."""

    def __init__(self, settings: EdgeSettings, binary: str = "kamailio") -> None:
        self.settings = settings
        self.binary = shutil.which(binary) or "/usr/sbin/kamailio"
        self.files: RenderedEdge | None = None
        self.rpc = EdgeRpc("", realm=settings.realm, timeout=2.0)
        self._proc: asyncio.subprocess.Process | None = None
        self._pgid: int | None = None
        self._log_offset = 0
        self._exit_task: asyncio.Future[int] | None = None
        self.restarts = 0  # counted by the supervisor (cti.controller.gateway)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self, timeout: float = 10.0) -> None:
        """Render the config, spawn Kamailio and return once its JSON-RPC answers."""
        if self.alive:
            return
        self.files = render(self.settings)
        self.rpc.socket_path = str(self.files.jsonrpc_socket)
        # Stale sockets/pid from a killed predecessor would confuse the ready check.
        for stale in (self.files.jsonrpc_socket, self.files.ctl_socket, self.files.pid_file):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        await self._spawn(self.files)
        try:
            await self._wait_ready(timeout)
        except BaseException:
            await self.stop()
            raise

    async def _spawn(self, files: RenderedEdge) -> None:
        cmd = [
            self.binary, "-DD", "-E",
            "-f", str(files.config),
            "-P", str(files.pid_file),
            "-Y", str(files.runtime_dir),
        ]  # fmt: skip
        with open(files.log_file, "ab") as log:
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

    async def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None and self.files is not None
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.returncode is not None or await self._exited(0.02):
                raise EdgeStartError(
                    f"kamailio on {self.settings.ip}:{self.settings.port} exited with "
                    f"{self._proc.returncode} during start; log {self.files.log_file}:\n"
                    + _log_tail(self.files.log_file, self._log_offset)
                )
            if self.files.jsonrpc_socket.exists() and await self._answers():
                return
            if time.monotonic() > deadline:
                raise EdgeStartError(
                    f"kamailio on {self.settings.ip}:{self.settings.port} not ready after "
                    f"{timeout:.0f} s; log {self.files.log_file}:\n"
                    + _log_tail(self.files.log_file, self._log_offset)
                )

    async def _exited(self, wait: float) -> bool:
        assert self._exit_task is not None
        await asyncio.wait({self._exit_task}, timeout=wait)
        return self._exit_task.done()

    async def _answers(self) -> bool:
        try:
            await self.rpc.call("core.version", timeout=0.3)
        except EdgeRpcError:
            return False
        return True

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
        """SIGKILL the whole process group at once (a hung edge ignores SIGTERM);
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
        """Wait for Kamailio's main process to exit (for supervision); its exit code.
        Its children may still be serving then: stop() sweeps the process group."""
        if self._exit_task is None:
            raise RuntimeError("KamailioEdge was not started")
        return await asyncio.shield(self._exit_task)

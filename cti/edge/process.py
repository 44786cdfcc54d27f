"""Run Kamailio as a supervised child process."""

from __future__ import annotations

import contextlib
import shutil
import time

from cti.edge.child import ChildProcess
from cti.edge.child import log_tail as _log_tail
from cti.edge.render import EdgeSettings, RenderedEdge, render
from cti.edge.rpc import EdgeRpc, EdgeRpcError


class EdgeStartError(RuntimeError):
    """Kamailio did not become ready; the message carries the end of its log."""


class KamailioEdge(ChildProcess):
    """One Kamailio instance: render, spawn, wait until ready, stop."""

    def __init__(self, settings: EdgeSettings, binary: str = "kamailio") -> None:
        super().__init__()
        self.settings = settings
        self.binary = shutil.which(binary) or "/usr/sbin/kamailio"
        self.files: RenderedEdge | None = None
        self.rpc = EdgeRpc("", realm=settings.realm, timeout=2.0)

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
        await self._spawn_logged(cmd, files.log_file)

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

    async def _answers(self) -> bool:
        try:
            await self.rpc.call("core.version", timeout=0.3)
        except EdgeRpcError:
            return False
        return True

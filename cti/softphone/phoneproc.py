"""The softphone's SIP side: ``cti phone`` (cti.media.phone) as a child process.

All of pjsua2 lives in that child, driven by JSON lines (docs/ipc.md), so the
textual process holds no pjsua2 object and none of its thread asserts apply.
The child ends on EOF of its stdin: if the softphone dies, so does its phone.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cti.ports import free_port, free_port_range

log = logging.getLogger("cti.softphone")

RTP_RANGE = 40
EventHandler = Callable[[dict[str, Any]], None]


class PhoneProcessError(RuntimeError):
    pass


class PhoneProcess:
    """One ``cti.media.phone`` child: send commands, get their results, stream events."""

    def __init__(self, name: str, ip: str, on_event: EventHandler, log_path: Path,
                 sip_port: int = 0, rtp_port: int = 0, sound: bool = True) -> None:
        self.name = name
        self.sound = sound  # the machine's sound card when there is one
        self.ip = ip
        self.sip_port = sip_port or free_port(ip)
        self.rtp_port = rtp_port or free_port_range(RTP_RANGE, ip)
        self.log_path = log_path
        self._on_event = on_event
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[dict[str, Any]] | None = None
        self._log_file: Any = None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    async def start(self, timeout: float = 15) -> dict[str, Any]:
        """Spawn the child and wait for its ``ready`` event."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self._ready = asyncio.get_running_loop().create_future()
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-X", "faulthandler", "-m", "cti.media.phone",
            "--name", self.name, "--ip", self.ip, "--sip-port", str(self.sip_port),
            "--rtp-port", str(self.rtp_port), "--rtp-range", str(RTP_RANGE),
            *(["--sound"] if self.sound else []),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=self._log_file, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.info("phone started pid=%s sip=%s:%s log=%s", self._proc.pid, self.ip,
                 self.sip_port, self.log_path)
        self._reader = asyncio.create_task(self._read())
        try:
            return await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except asyncio.TimeoutError:
            raise PhoneProcessError(f"phone not ready within {timeout}s "
                                    f"(see {self.log_path})") from None

    async def command(self, cmd: str, timeout: float = 10, **fields: Any) -> dict[str, Any]:
        """Send a command; its cmd.result (PhoneProcessError when ok is false)."""
        if not self.alive or self._proc is None or self._proc.stdin is None:
            raise PhoneProcessError("the phone process is not running")
        cid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[cid] = fut
        try:
            self._proc.stdin.write(json.dumps({"cmd": cmd, "id": cid, **fields}).encode() + b"\n")
            await self._proc.stdin.drain()
            res = await asyncio.wait_for(fut, timeout)
        except (asyncio.TimeoutError, ConnectionError) as e:
            raise PhoneProcessError(f"{cmd}: no result ({e or 'timeout'})") from None
        finally:
            self._pending.pop(cid, None)
        if not res.get("ok"):
            raise PhoneProcessError(f"{cmd}: {res.get('error')}")
        return res

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            async for line in self._proc.stdout:
                try:
                    ev = json.loads(line)
                except ValueError:
                    log.warning("phone: unparsable line %r", line[:200])
                    continue
                self._dispatch(ev)
        finally:
            err = PhoneProcessError("the phone process ended")
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(err)
            if self._ready is not None and not self._ready.done():
                self._ready.set_exception(err)
            self._on_event({"event": "phone.exited"})

    def _dispatch(self, ev: dict[str, Any]) -> None:
        name = ev.get("event")
        if name == "cmd.result":
            fut = self._pending.get(ev.get("id", -1))
            if fut is not None and not fut.done():
                fut.set_result(ev)
            return
        if name == "ready" and self._ready is not None and not self._ready.done():
            self._ready.set_result(ev)
        try:
            self._on_event(ev)
        except Exception:  # a view bug must not stop the event stream
            log.exception("phone event handler failed on %s", name)

    async def stop(self, timeout: float = 5) -> None:
        """Shut the child down (it hangs up and unregisters); kill it if it hangs."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(Exception):
                assert proc.stdin is not None
                proc.stdin.write(b'{"cmd": "shutdown", "id": 0}\n')
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                log.warning("phone pid=%s did not exit: killing it", proc.pid)
                proc.kill()
                await proc.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reader, 2)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

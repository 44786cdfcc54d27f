"""A real SIP phone for tests: ``cti.media.phone`` in a subprocess.

    async with Phone(name="sofia") as p:
        await p.command("dial", leg="l1", uri=other.uri("bob"))
        ev = await p.wait_for("leg.state", leg="l1", state="confirmed")

Events are kept in ``p.events``; ``wait_for`` scans them from the start and
returns the first matching one not returned before, so an event that arrived
before the wait is never missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.peers.ports import free_port, free_port_range

REPO = Path(__file__).resolve().parents[2]
RTP_RANGE = 40


class PhoneError(RuntimeError):
    pass


class Phone:
    def __init__(self, name: str = "phone", ip: str = "127.0.0.1", log_dir: str | None = None,
                 pj_log_level: int = 1, tls_ca: Path | None = None,
                 rtp_range: int = RTP_RANGE, paced: bool = False) -> None:
        self.name = name
        self.rtp_range = rtp_range
        self.paced = paced  # clock the bridge as a media worker does (cti/media/pacing.py)
        self.tls_ca = tls_ca  # a CA file: the phone can register over TLS
        self.ip = ip
        self.sip_port = free_port(ip)
        self.rtp_port = free_port_range(rtp_range, ip)
        self.pj_log_level = pj_log_level
        self._own_log_dir = log_dir is None  # removed after a clean run
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix=f"phone-{name}-"))
        self.stderr_path = self.log_dir / f"{name}.stderr.log"
        self.events: list[dict[str, Any]] = []
        self.ready: dict[str, Any] = {}
        self._returned: set[int] = set()  # indexes of events already given out
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._stderr_file: Any = None

    def uri(self, user: str | None = None) -> str:
        return f"sip:{user or self.name}@{self.ip}:{self.sip_port}"

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    # ------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Phone:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await self.stop(failed=exc_type is not None)

    async def start(self, timeout: float = 10) -> None:
        self._stderr_file = open(self.stderr_path, "wb")  # noqa: SIM115 (closed in stop)
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-X", "faulthandler", "-m", "cti.media.phone",
            "--name", self.name, "--ip", self.ip, "--sip-port", str(self.sip_port),
            "--rtp-port", str(self.rtp_port), "--rtp-range", str(self.rtp_range),
            "--pj-log-level", str(self.pj_log_level),
            *(["--tls-ca", str(self.tls_ca)] if self.tls_ca is not None else []),
            *(["--paced"] if self.paced else []),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=self._stderr_file, cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._reader = asyncio.create_task(self._read_events())
        self.ready = await self.wait_for("ready", timeout=timeout)

    async def stop(self, failed: bool = False, timeout: float = 5) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(Exception):
                self._send({"cmd": "shutdown", "id": next(self._ids)})
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                proc.kill()
                await proc.wait()
                failed = True
        if self._reader is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._reader, 2)
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None
        if proc is not None and (failed or proc.returncode != 0):
            self.dump_stderr(f"returncode={proc.returncode}")
        elif self._own_log_dir:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    def dump_stderr(self, why: str = "") -> None:
        with contextlib.suppress(OSError):
            text = self.stderr_path.read_text(errors="replace")
            print(f"\n----- phone {self.name} stderr ({why}) {self.stderr_path} -----\n"
                  f"{text[-20000:]}", file=sys.stderr)

    # ------------------------------------------------------------ protocol
    def _send(self, msg: dict[str, Any]) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(msg).encode() + b"\n")

    async def _read_events(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            async for line in self._proc.stdout:
                try:
                    ev = json.loads(line)
                except ValueError:
                    ev = {"event": "garbage", "line": line.decode(errors="replace")}
                async with self._changed:
                    self.events.append(ev)
                    self._changed.notify_all()
        finally:
            async with self._changed:
                self._changed.notify_all()

    async def command(self, cmd: str, check: bool = True, timeout: float = 10,
                      **fields: Any) -> dict[str, Any]:
        """Send a command; return its cmd.result (PhoneError if ok is false and check)."""
        cid = next(self._ids)
        self._send({"cmd": cmd, "id": cid, **fields})
        await self._proc.stdin.drain()
        res = await self.wait_for("cmd.result", timeout=timeout, id=cid)
        if check and not res.get("ok"):
            raise PhoneError(f"{self.name}: {cmd} {fields} failed: {res.get('error')}")
        return res

    def _match(self, name: str, match: dict[str, Any]) -> dict[str, Any] | None:
        for i, ev in enumerate(self.events):
            if i in self._returned or ev.get("event") != name:
                continue
            if all(ev.get(k) == v for k, v in match.items()):
                self._returned.add(i)
                return ev
        return None

    async def wait_for(self, event: str, timeout: float = 10, **match: Any) -> dict[str, Any]:
        """First event named ``event`` with the given field values, not returned before."""

        async def scan() -> dict[str, Any]:
            async with self._changed:
                while True:
                    ev = self._match(event, match)
                    if ev is not None:
                        return ev
                    if self._reader is None or self._reader.done():
                        raise PhoneError(f"{self.name}: process ended while waiting for "
                                         f"{event} {match}")
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(scan(), timeout)
        except asyncio.TimeoutError:
            tail = "\n  ".join(json.dumps(e) for e in self.events[-15:])
            raise PhoneError(f"{self.name}: no {event} {match} within {timeout}s; "
                             f"last events:\n  {tail}") from None

    def received(self, event: str, **match: Any) -> list[dict[str, Any]]:
        """All events so far with that name and field values (returned or not)."""
        return [e for e in self.events
                if e.get("event") == event and all(e.get(k) == v for k, v in match.items())]

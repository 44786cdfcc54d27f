"""A real third-party SIP client for tests: baresip 1.0.0 driven over ctrl_tcp.

Usage::

    async with Baresip(tmp_path / "caller", tone_wav) as caller:
        await caller.dial("sip:callee@127.0.0.1:5070")
        await caller.wait_event("CALL_ESTABLISHED")
        await caller.send_digits("12#")
        await caller.hangup()
        await caller.wait_event("CALL_CLOSED")

Control protocol: netstrings ``<len>:<json>,`` both ways. Commands are
``{"command": ..., "params": "<string>", "token": ...}``; baresip answers with
``{"response": true, "ok": ..., "data": ..., "token": ...}`` and pushes events
``{"event": true, "type": "CALL_ESTABLISHED", "id": <call id>, ...}``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

BARESIP = "baresip"
MODULE_PATH = "/usr/lib/baresip/modules"
START_TIMEOUT = 5.0
# quit; then SIGTERM (unregisters, like quit); a second SIGTERM forces; then SIGKILL
STOP_STEPS: tuple[tuple[signal.Signals | None, float], ...] = (
    (None, 1.0),
    (signal.SIGTERM, 0.5),
    (signal.SIGTERM, 1.0),
    (signal.SIGKILL, 1.0),
)


class BaresipError(RuntimeError):
    """baresip failed to start, answered a command with an error or died."""


def _port_free(port: int) -> bool:
    """True when `port` is bindable on 127.0.0.1 for both UDP and TCP."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _free_port(span: int = 1) -> int:
    """A port p with p .. p+span-1 free on 127.0.0.1 (UDP and TCP) right now.

    baresip's `sip_listen` binds UDP+TCP on the port and SIP-TLS on port+1: use span=2.
    """
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + span <= 65536 and all(_port_free(port + i) for i in range(span)):
            return port
    raise BaresipError("no free port found on 127.0.0.1")


def read_wav_lenient(path: Path) -> tuple[int, bytes]:
    """(sample rate, S16LE mono PCM) of a WAV even while it is still being written.

    libsndfile fills in the RIFF/data sizes only when the file is closed, so the
    `wave` module sees 0 frames for a recording in progress. This reads the fmt
    chunk and takes everything after the data chunk header.
    """
    raw = path.read_bytes()
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise BaresipError(f"{path}: not a WAV file")
    pos, rate = 12, 0
    while pos + 8 <= len(raw):
        cid, size = raw[pos : pos + 4], struct.unpack("<I", raw[pos + 4 : pos + 8])[0]
        body = pos + 8
        if cid == b"fmt ":
            fmt, channels, rate = struct.unpack("<HHI", raw[body : body + 8])
            bits = struct.unpack("<H", raw[body + 14 : body + 16])[0]
            if (fmt, channels, bits) != (1, 1, 16):
                raise BaresipError(f"{path}: not 16-bit mono PCM ({fmt}, {channels}, {bits})")
        elif cid == b"data":
            data = raw[body:]
            if 0 < size <= len(data):
                data = data[:size]
            return rate, data[: len(data) // 2 * 2]
        pos = body + size + (size & 1)
    raise BaresipError(f"{path}: no data chunk")


def _check_source(wav: Path) -> None:
    with wave.open(str(wav), "rb") as w:
        fmt = (w.getframerate(), w.getnchannels(), w.getsampwidth())
    if fmt != (8000, 1, 2):
        raise ValueError(f"{wav}: audio_source must be 8000 Hz mono 16-bit, got {fmt}")


class Baresip:
    """One baresip process with one SIP account (async context manager).

    - ``name``: SIP user; the account AOR is ``sip:<name>@<registrar or 127.0.0.1>``.
    - ``registrar`` ("127.0.0.1:5060"): register there (regint 600) with
      ``auth_pass`` if given; otherwise no REGISTER at all (regint=0).
    - ``answermode``: "manual" (call :meth:`accept`) or "auto".
    - ``account``: a full ``uanew`` account line, overriding all of the above.
    """

    def __init__(
        self,
        tmp_dir: Path,
        audio_source: Path,
        name: str = "caller",
        *,
        registrar: str | None = None,
        auth_pass: str | None = None,
        answermode: str = "manual",
        account: str | None = None,
    ) -> None:
        _check_source(audio_source)
        self.name = name
        Path(tmp_dir).mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix=f"baresip-{name}-", dir=tmp_dir))
        self.snd_dir = self.dir / "snd"
        self.audio_source = Path(audio_source).resolve()
        self.account = account or self._account_line(name, registrar, auth_pass, answermode)
        self.sip_port = 0
        self.ctrl_port = 0
        self.events: list[dict[str, Any]] = []  # every event, in order
        self._pending: list[dict[str, Any]] = []  # not yet returned by wait_event
        self._changed = asyncio.Condition()
        self._responses: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._read_task: asyncio.Task[None] | None = None
        self._closed = False
        self._token = 0

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _account_line(
        name: str, registrar: str | None, auth_pass: str | None, answermode: str
    ) -> str:
        host = registrar or "127.0.0.1"
        line = f"<sip:{name}@{host}>;answermode={answermode}"
        if auth_pass is not None:
            line += f";auth_pass={auth_pass}"
        return line + (";regint=600" if registrar else ";regint=0")

    @property
    def uri(self) -> str:
        """Where to call this instance directly (without a registrar)."""
        return f"sip:{self.name}@127.0.0.1:{self.sip_port}"

    @property
    def pid(self) -> int:
        """The baresip process id, also its process group id."""
        if self._proc is None:
            raise BaresipError(f"{self.name}: not started")
        return self._proc.pid

    @property
    def log_path(self) -> Path:
        return self.dir / "baresip.log"

    def _write_config(self) -> None:
        self.snd_dir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"sip_listen 127.0.0.1:{self.sip_port}",
            "net_interface 127.0.0.1",
            f"audio_source aufile,{self.audio_source}",
            "audio_player aubridge,nil",
            "ausrc_srate 8000",
            "auplay_srate 8000",
            "statmode_default off",
            f"snd_path {self.snd_dir}",
            f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}",
            f"module_path {MODULE_PATH}",
            "module g711.so",
            "module aufile.so",
            "module aubridge.so",
            "module sndfile.so",
            "module_app account.so",
            "module_app menu.so",
            "module_app ctrl_tcp.so",
        ]
        (self.dir / "config").write_text("\n".join(lines) + "\n")
        (self.dir / "accounts").write_text("")

    async def start(self) -> None:
        if shutil.which(BARESIP) is None:
            raise BaresipError("baresip not found: apt-get install baresip-core")
        self.sip_port, self.ctrl_port = _free_port(span=2), _free_port()
        self._write_config()
        with self.log_path.open("wb") as log:
            self._proc = await asyncio.create_subprocess_exec(
                BARESIP, "-f", str(self.dir),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,
            )  # fmt: skip
        atexit.register(self._kill_now)
        await self._connect()
        await self.command("uanew", self.account)

    async def _connect(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            self._raise_if_exited("while starting")
            try:
                self._reader, self._writer = await asyncio.open_connection(
                    "127.0.0.1", self.ctrl_port
                )
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise BaresipError(f"ctrl_tcp did not accept: {self.log_tail()}") from None
                await asyncio.sleep(0.02)
        self._read_task = asyncio.create_task(self._read_loop())

    def _raise_if_exited(self, when: str) -> None:
        if self._proc is not None and self._proc.returncode is not None:
            raise BaresipError(
                f"{self.name}: baresip exited ({self._proc.returncode}) {when}: {self.log_tail()}"
            )

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # --------------------------------------------------------- control channel
    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                head = await self._reader.readuntil(b":")
                body = await self._reader.readexactly(int(head[:-1]) + 1)
                self._dispatch(json.loads(body[:-1]))
                async with self._changed:
                    self._changed.notify_all()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            self._closed = True
            for fut in self._responses.values():
                if not fut.done():
                    fut.set_exception(BaresipError(f"{self.name}: control connection closed"))
            async with self._changed:
                self._changed.notify_all()

    def _dispatch(self, msg: dict[str, Any]) -> None:
        if msg.get("event"):
            self.events.append(msg)
            self._pending.append(msg)
        elif msg.get("response"):
            fut = self._responses.pop(str(msg.get("token")), None)
            if fut is not None and not fut.done():
                fut.set_result(msg)

    async def command(self, command: str, params: str = "", timeout: float = 5.0) -> str:
        """Send a ctrl_tcp command; return its `data`, raise BaresipError if not ok."""
        if self._writer is None or self._closed:
            raise BaresipError(f"{self.name}: not connected")
        self._token += 1
        token = str(self._token)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._responses[token] = fut
        msg = json.dumps({"command": command, "params": params, "token": token}).encode()
        self._writer.write(b"%d:%s," % (len(msg), msg))
        await self._writer.drain()
        resp = await asyncio.wait_for(fut, timeout)
        if not resp.get("ok"):
            raise BaresipError(f"{self.name}: {command} {params!r} failed: {resp.get('data')}")
        return str(resp.get("data", ""))

    # --------------------------------------------------------------- call API
    async def dial(self, uri: str) -> None:
        await self.command("dial", uri)

    async def accept(self) -> None:
        await self.command("accept")

    async def send_digits(self, digits: str) -> None:
        """One RFC 2833 `sndcode` per digit (0-9, *, #, A-D)."""
        for digit in digits:
            await self.command("sndcode", digit)

    async def hangup(self) -> None:
        await self.command("hangup")

    async def wait_event(self, type: str, timeout: float = 10) -> dict[str, Any]:
        """The oldest event of `type` not yet returned by wait_event (waits for one)."""
        async with self._changed:
            try:
                found = await asyncio.wait_for(
                    self._changed.wait_for(lambda: self._pop(type) or self._closed), timeout
                )
            except TimeoutError:
                seen = [e.get("type") for e in self.events]
                raise TimeoutError(f"{self.name}: no {type} in {timeout}s; seen {seen}") from None
        if not isinstance(found, dict):
            raise BaresipError(f"{self.name}: closed while waiting for {type}: {self.log_tail()}")
        return found

    def _pop(self, type: str) -> dict[str, Any] | None:
        for i, event in enumerate(self._pending):
            if event.get("type") == type:
                return self._pending.pop(i)
        return None

    # ------------------------------------------------------------------ audio
    def received_wav(self) -> Path | None:
        """The newest sndfile recording of what this instance heard (…-dec.wav)."""
        return self._newest("*-dec*")  # 1.0.0 names some files without .wav

    def sent_wav(self) -> Path | None:
        """The newest sndfile recording of what this instance sent (…-enc.wav)."""
        return self._newest("*-enc*")

    def _newest(self, pattern: str) -> Path | None:
        files = sorted(self.snd_dir.glob(pattern), key=lambda p: p.stat().st_mtime)
        return files[-1] if files else None

    async def wait_received_audio(self, seconds: float, timeout: float = 10) -> Path:
        """Poll until the newest -dec.wav holds at least `seconds` of 8 kHz audio."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            path = self.received_wav()
            if path is not None and path.stat().st_size >= 44 + seconds * 16000:
                return path
            self._raise_if_exited("while waiting for audio")
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{self.name}: less than {seconds}s of received audio")

    # ---------------------------------------------------------------- cleanup
    async def stop(self) -> None:
        """quit, then SIGTERM twice, then SIGKILL to the process group. Idempotent."""
        if self._writer is not None and not self._closed:
            with contextlib.suppress(Exception):
                msg = b'{"command":"quit","params":""}'
                self._writer.write(b"%d:%s," % (len(msg), msg))
                await self._writer.drain()
        proc = self._proc
        if proc is not None:
            for sig, grace in STOP_STEPS:
                if sig is not None:
                    self._killpg(sig)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), grace)
                    break
            self._killpg(signal.SIGKILL)  # anything left in the group
        await self._close_connection()
        atexit.unregister(self._kill_now)

    async def _close_connection(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        if self._read_task is not None:
            self._read_task.cancel()
            with contextlib.suppress(BaseException):
                await self._read_task

    def _killpg(self, sig: signal.Signals) -> None:
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, sig)

    def _kill_now(self) -> None:
        """Last resort at interpreter exit (the event loop may be gone)."""
        self._killpg(signal.SIGKILL)

    async def __aenter__(self) -> Baresip:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

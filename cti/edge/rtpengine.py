"""rtpengine as a supervised child of `cti serve`: the media relay between browsers
(DTLS-SRTP, ICE, rtcp-mux) and the media workers' plain RTP/AVP.

Debian's rtpengine-daemon runs in user space here (``--table=-1``: no kernel
module), driven by Kamailio's rtpengine module over the ng protocol (bencoded
dictionaries over UDP, each datagram prefixed with a cookie).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cti.edge.child import ChildProcess, log_tail

NG_HOST = "127.0.0.1"  # the control socket never leaves the host


class RtpEngineError(RuntimeError):
    """rtpengine did not start, or did not answer an ng command."""


@dataclass(frozen=True)
class RtpEngineSettings:
    media_ip: str  # the address offered to browsers and to the workers
    ng_port: int
    port_min: int
    port_max: int
    runtime_dir: Path


def bencode(value: Any) -> bytes:
    """The ng protocol's encoding (dicts, lists, strings and integers)."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    if isinstance(value, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError(f"cannot bencode {type(value).__name__}")


def bdecode(data: bytes) -> Any:
    value, end = _decode(data, 0)
    if end != len(data):
        raise ValueError("trailing bytes after a bencoded value")
    return value


def _decode(data: bytes, i: int) -> tuple[Any, int]:
    lead = data[i:i + 1]
    if lead == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1:end]), end + 1
    if lead in (b"l", b"d"):
        items: list[Any] = []
        i += 1
        while data[i:i + 1] != b"e":
            item, i = _decode(data, i)
            items.append(item)
        # Strings inside containers are text (rtpengine's keys and values are).
        texts = [v.decode(errors="replace") if isinstance(v, bytes) else v for v in items]
        if lead == b"l":
            return texts, i + 1
        return dict(zip(texts[0::2], texts[1::2], strict=True)), i + 1
    colon = data.index(b":", i)
    size = int(data[i:colon])
    return data[colon + 1:colon + 1 + size], colon + 1 + size


class _NgProtocol(asyncio.DatagramProtocol):
    def __init__(self, cookie: bytes) -> None:
        self.cookie = cookie
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        cookie, _, body = data.partition(b" ")
        if cookie == self.cookie and not self.reply.done():
            self.reply.set_result(body)


async def ng_command(port: int, command: dict[str, Any], timeout: float = 1.0) -> dict[str, Any]:
    """One ng command to rtpengine on 127.0.0.1:port; its reply dictionary."""
    cookie = secrets.token_hex(6).encode()
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: _NgProtocol(cookie), remote_addr=(NG_HOST, port))
    try:
        transport.sendto(cookie + b" " + bencode(command))
        body = await asyncio.wait_for(proto.reply, timeout)
    except (OSError, asyncio.TimeoutError) as exc:
        raise RtpEngineError(f"rtpengine ng {command.get('command')}: no answer on "
                             f"{NG_HOST}:{port}") from exc
    finally:
        transport.close()
    reply = bdecode(body)
    if not isinstance(reply, dict) or reply.get("result") == "error":
        raise RtpEngineError(f"rtpengine ng {command.get('command')}: {reply!r}")
    return reply


class RtpEngine(ChildProcess):
    """One rtpengine daemon in the foreground, logging to runtime_dir/rtpengine.log."""

    def __init__(self, settings: RtpEngineSettings, binary: str = "rtpengine") -> None:
        super().__init__()
        self.settings = settings
        self.binary = shutil.which(binary) or binary
        self.log_file = settings.runtime_dir / "rtpengine.log"

    def command_line(self) -> list[str]:
        s = self.settings
        return [
            self.binary, "--config-file=none", "--foreground", "--log-stderr",
            "--table=-1",  # user space relay: no kernel module in a container
            f"--interface={s.media_ip}",
            f"--listen-ng={NG_HOST}:{s.ng_port}",
            f"--port-min={s.port_min}", f"--port-max={s.port_max}",
            f"--pidfile={s.runtime_dir / 'rtpengine.pid'}",
            # A browser that vanished without BYE: its call is dropped after 60 s
            # without media (held calls send none for up to an hour).
            "--timeout=60", "--silent-timeout=3600",
            # An ended call is gone at once (the default keeps it 30 s after delete).
            "--delete-delay=0",
            "--num-threads=2", "--log-level=5",
        ]

    async def start(self, timeout: float = 10.0) -> None:
        """Spawn rtpengine and return once it answers an ng ping."""
        if self.alive:
            return
        if shutil.which(self.binary) is None:
            raise RtpEngineError(f"rtpengine not found ({self.binary}): install Debian's "
                                 "rtpengine-daemon (scripts/setup.sh does), or set "
                                 "webrtc.enabled: false")
        self.settings.runtime_dir.mkdir(parents=True, exist_ok=True)
        await self._spawn_logged(self.command_line(), self.log_file)
        try:
            await self._wait_ready(timeout)
        except BaseException:
            await self.stop()
            raise

    async def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        where = f"rtpengine (ng {NG_HOST}:{self.settings.ng_port})"
        while True:
            if self._proc.returncode is not None or await self._exited(0.02):
                raise RtpEngineError(f"{where} exited with {self._proc.returncode} during "
                                     f"start; log {self.log_file}:\n"
                                     + log_tail(self.log_file, self._log_offset))
            with contextlib.suppress(RtpEngineError):
                await ng_command(self.settings.ng_port, {"command": "ping"}, timeout=0.2)
                return
            if time.monotonic() > deadline:
                raise RtpEngineError(f"{where} not ready after {timeout:.0f} s; log "
                                     f"{self.log_file}:\n"
                                     + log_tail(self.log_file, self._log_offset))

    async def sessions(self) -> int:
        """Calls rtpengine relays now (ng "statistics")."""
        reply = await ng_command(self.settings.ng_port, {"command": "statistics"})
        stats = reply.get("statistics", {}).get("currentstatistics", {})
        return int(stats.get("sessionsown", 0))

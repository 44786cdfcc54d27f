"""WebSocket clients of the fan-out benchmark: many supervisors' event sockets in a
few processes (one asyncio loop each), and a client that stops reading.

Each reading client notes, for every event it gets, ``receive time - event ts`` (the
event's ``ts`` is the bus's clock when the event was made, ms resolution, same
machine) and which sequence numbers it got; the driver adds the processes' results
up (fanout.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import multiprocessing as mp
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import websockets

CONNECT_AT_ONCE = 50  # per process: a burst of 1,000 handshakes is the test of another day
CONNECT_TIMEOUT_S = 30.0


@dataclass
class ClientsResult:
    """What one process's clients received."""

    connected: int = 0
    failed_connects: int = 0
    closed_early: int = 0  # closed by the gateway before the end
    latencies_ms: list[float] = field(default_factory=list)
    seqs: list[set[int]] = field(default_factory=list)  # per client, the event seqs


def latency_ms(event: dict[str, Any], received_at: float) -> float | None:
    """Event -> client delay of one received message; None if it is not an event."""
    ts = event.get("ts")
    if "seq" not in event or not isinstance(ts, int | float):
        return None
    return (received_at - ts) * 1000.0


async def _one(url: str, sem: asyncio.Semaphore, res: ClientsResult, ready: list[int],
               stop: asyncio.Event) -> None:
    seqs: set[int] = set()
    try:
        async with sem:
            ws = await asyncio.wait_for(
                websockets.connect(url, max_size=None), CONNECT_TIMEOUT_S)
            await ws.recv()  # the hello
    except Exception:  # refused, reset, timed out, a 4xx: counted, and the run goes on
        res.failed_connects += 1
        return
    res.connected += 1
    res.seqs.append(seqs)
    ready[0] += 1
    reader = asyncio.create_task(_read(ws, res, seqs))
    await stop.wait()
    if reader.done():
        res.closed_early += 1
    reader.cancel()
    with contextlib.suppress(BaseException):
        await reader
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(), 5)


async def _read(ws: Any, res: ClientsResult, seqs: set[int]) -> None:
    with contextlib.suppress(websockets.ConnectionClosed):
        async for raw in ws:
            at = time.time()
            ev = json.loads(raw)
            delay = latency_ms(ev, at)
            if delay is not None and ev.get("type") == "agent.state":
                res.latencies_ms.append(delay)
                seqs.add(int(ev["seq"]))


async def _clients(url: str, n: int, ready_q: Any, stop_ev: Any) -> ClientsResult:
    res, ready, stop = ClientsResult(), [0], asyncio.Event()
    sem = asyncio.Semaphore(CONNECT_AT_ONCE)
    tasks = [asyncio.create_task(_one(url, sem, res, ready, stop)) for _ in range(n)]
    deadline = time.monotonic() + CONNECT_TIMEOUT_S * (1 + n / CONNECT_AT_ONCE)
    while ready[0] + res.failed_connects < n and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    ready_q.put(("ready", os.getpid(), ready[0]))
    while not stop_ev.is_set():  # a multiprocessing Event: polled, not awaited
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*tasks)
    return res


def client_process(url: str, n: int, ready_q: Any, stop_ev: Any, out_q: Any) -> None:
    """Entry of one client process: n clients, until stop_ev; its result on out_q."""
    res = asyncio.run(_clients(url, n, ready_q, stop_ev))
    out_q.put(res)


def start_processes(url: str, clients: int, processes: int
                    ) -> tuple[list[Any], Any, Any, Any]:
    ctx = mp.get_context("spawn")
    ready_q, out_q, stop_ev = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = []
    for i in range(processes):
        n = clients // processes + (1 if i < clients % processes else 0)
        p = ctx.Process(target=client_process, args=(url, n, ready_q, stop_ev, out_q),
                        daemon=True)
        p.start()
        procs.append(p)
    return procs, ready_q, out_q, stop_ev


class StalledClient:
    """A WebSocket client that completes the handshake and then never reads: a small
    receive buffer, so the gateway's socket fills after a few events."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(10)
        self.sock.connect((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)  # byte by byte: not one byte of the frames after
            if not chunk:
                raise ConnectionError("the gateway closed the stalled client's handshake")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"no WebSocket: {head.splitlines()[0]!r}")

    def read_all(self, timeout: float) -> bytes:
        """Start reading again: every byte until the gateway closes (or timeout)."""
        self.sock.settimeout(timeout)
        data = b""
        with contextlib.suppress(TimeoutError, OSError):
            while chunk := self.sock.recv(65536):
                data += chunk
        return data

    def read_until_close(self, timeout: float) -> bytes:
        """Start reading again: every byte until the gateway's close frame (or EOF, or
        timeout)."""
        self.sock.settimeout(timeout)
        data = b""
        with contextlib.suppress(TimeoutError, OSError):
            while chunk := self.sock.recv(65536):
                data += chunk
                if any(op == 0x8 for op, _ in frames(data)):
                    break
        return data

    def close(self) -> None:
        self.sock.close()


def frames(data: bytes) -> list[tuple[int, bytes]]:
    """Unmasked server frames (opcode, payload) in data; a cut-off last frame is left
    out."""
    out, i = [], 0
    while i + 2 <= len(data):
        op, n, i = data[i] & 0x0F, data[i + 1] & 0x7F, i + 2
        if n == 126:
            if i + 2 > len(data):
                break
            n, i = int.from_bytes(data[i:i + 2], "big"), i + 2
        elif n == 127:
            if i + 8 > len(data):
                break
            n, i = int.from_bytes(data[i:i + 8], "big"), i + 8
        if i + n > len(data):
            break
        out.append((op, data[i:i + n]))
        i += n
    return out


def close_code(payload: bytes) -> tuple[int, str]:
    """A close frame's code and reason."""
    if len(payload) < 2:
        return 1005, ""
    return int.from_bytes(payload[:2], "big"), payload[2:].decode(errors="replace")

"""The advisors' side through the gateway's API: logins, state, and a supervisor's
WebSocket that counts the calls' events (every call, every event)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import websockets

from scripts.load.gwconfig import ADVISOR_PASSWORD, SUPERVISOR, LoadConfig


async def wait_healthy(http: httpx.AsyncClient, timeout: float,
                       gateway: subprocess.Popen[bytes] | None = None,
                       log: Path | None = None) -> None:
    """Until GET /health answers 200 (the gateway is up: edge, workers, API).

    A gateway that exits on the way (a taken port, a worker that would not start)
    fails at once with the end of its log, not after the whole timeout."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        with contextlib.suppress(httpx.HTTPError):
            r = await http.get("/api/v1/health")
            if r.status_code == 200:
                return
            last = f"{r.status_code} {r.text[:300]}"
        if gateway is not None and gateway.poll() is not None:
            raise RuntimeError(f"the gateway exited with {gateway.returncode} before it was "
                               f"healthy:\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the gateway was not healthy within {timeout:.0f} s "
                               f"(last /health: {last}):\n{_tail(log)}")
        await asyncio.sleep(0.2)


def _tail(log: Path | None, lines: int = 25) -> str:
    if log is None or not log.exists():
        return "(no log)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


async def login(http: httpx.AsyncClient, name: str, password: str) -> str:
    r = await http.post("/api/v1/login", json={"username": name, "password": password})
    r.raise_for_status()
    return str(r.json()["token"])


async def set_available(http: httpx.AsyncClient, names: list[str]) -> int:
    """Log every advisor in and set them available; the number that failed."""
    async def one(name: str) -> bool:
        try:
            token = await login(http, name, ADVISOR_PASSWORD)
            r = await http.post("/api/v1/agents/me/state", json={"state": "available"},
                                headers={"Authorization": f"Bearer {token}"})
            return r.status_code == 200
        except httpx.HTTPError:
            return False

    results = await asyncio.gather(*(one(n) for n in names))
    return results.count(False)


async def wait_available(http: httpx.AsyncClient, token: str, names: list[str],
                         timeout: float) -> int:
    """Until every advisor is available (state follows the phone: their registration
    is seen by the controller's poll of the edge); how many are not, at the end."""
    deadline, want = time.monotonic() + timeout, set(names)
    while True:
        r = await http.get("/api/v1/advisors", headers={"Authorization": f"Bearer {token}"})
        ready = {a["name"] for a in r.json() if a.get("state") == "available"}
        if want <= ready or time.monotonic() > deadline:
            return len(want - ready)
        await asyncio.sleep(0.2)


class CallEvents:
    """A supervisor's WebSocket: counts of call events, the queued calls' menus."""

    def __init__(self, cfg: LoadConfig) -> None:
        self.cfg = cfg
        self.counts: Counter[str] = Counter()
        self.queued_for: Counter[tuple[str, str]] = Counter()
        self.end_reasons: Counter[str] = Counter()
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ws: Any = None

    async def connect(self, http: httpx.AsyncClient) -> str:
        token = await login(http, *SUPERVISOR)
        ws_url = self.cfg.api.replace("http", "ws", 1) + f"/api/v1/ws?token={token}"
        self._ws = await websockets.connect(ws_url, max_size=None)
        await self._ws.recv()  # the hello
        self._task = asyncio.create_task(self._read())
        return token

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self._ws:
                self._count(json.loads(raw))

    def _count(self, ev: dict[str, Any]) -> None:
        type_ = str(ev.get("type", ""))
        if not type_.startswith("call."):
            return
        self.counts[type_] += 1
        data = ev.get("data") or {}
        if type_ == "call.queued":
            self.queued_for[(str(data.get("language")), str(data.get("topic")))] += 1
        if type_ == "call.ended":
            self.end_reasons[str(data.get("reason"))] += 1
        self.changed.set()

    async def until(self, type_: str, count: int, timeout: float) -> bool:
        """Until ``count`` events of a type were seen; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.counts[type_] < count:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)
        return True

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task

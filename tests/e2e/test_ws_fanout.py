"""The CTI WebSocket's fan-out with a client that stops reading (issue 15): real
uvicorn, a real reading client and a raw TCP client that completes the handshake
and then reads nothing. The others get every event while it is stalled; its send
queue fills and it is closed (4408, logged and counted in /metrics), and a
reconnect with the `since` of its close reason gets what it missed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from cti.api.ws import SLOW_CLOSE_CODE
from cti.events import make_event
from scripts.load.wsclients import StalledClient, close_code, frames
from tests.e2e.gateway_harness import EventStream, running_gateway, until

pytestmark = pytest.mark.e2e

SEND_QUEUE = 50
BATCH = 10  # a burst under the queue: a reading client keeps up
MAX_EVENTS = 5000  # bounded: 20 MB


def ws_path(token: str, since: int | None = None) -> str:
    return f"/api/v1/ws?token={token}" + (f"&since={since}" if since is not None else "")


BULK = "fanout.bulk"  # 4 KB events: the stalled client's socket buffers (up to
# the kernel's 4 MiB send buffer) fill after a thousand, not tens of thousands
BULK_SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}},
               "required": ["text"], "additionalProperties": False}


def publish_bulk(gw: Any, i: int) -> int:
    ev = gw.bus.publish(make_event(BULK, {"text": f"{i:06d}" * 680}))
    return int(ev["seq"])


@pytest.mark.timeout(120)
async def test_a_client_that_stops_reading_stalls_no_one_is_closed_and_resumes(
        tmp_path: Path) -> None:
    async with running_gateway(tmp_path, http__ws_send_queue=SEND_QUEUE) as gw:
        gw.bus.types.declare("test", BULK, BULK_SCHEMA)
        host, port = gw.settings.http.host, gw.settings.http.port
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
            r = await http.post("/api/v1/login",
                                json={"username": "nadia", "password": "demo-nadia"})
            token = r.json()["token"]
            reader = EventStream(f"ws://{host}:{port}{ws_path(token)}")
            await reader.connect()
            # in a thread: its handshake blocks, and the gateway runs on this loop
            stalled = await asyncio.to_thread(StalledClient, host, port, ws_path(token))
            try:
                await until(lambda: len(gw.hub.clients) == 2)
                # Events in batches until the hub gives the stalled client up; after
                # each batch the reader has it all: the stalled one holds no one back.
                published: list[int] = []
                while gw.hub.slow_closes == 0 and len(published) < MAX_EVENTS:
                    published += [publish_bulk(gw, i) for i in range(BATCH)]
                    await reader.wait_for(BULK, seq=published[-1])
                assert gw.hub.slow_closes == 1, f"not closed after {len(published)} events"
                assert len(gw.hub.clients) == 1
                # Missed by the stalled client: these, and what was still queued.
                after = [publish_bulk(gw, i) for i in range(5)]
                await reader.wait_for(BULK, seq=after[-1])
                got = [e["seq"] for e in reader.events if e.get("type") == BULK]
                assert got == published + after, "the reader lost or reordered events"
                metrics = (await http.get("/metrics")).text
                assert "cti_websocket_slow_closes_total 1" in metrics

                # It reads again: what the gateway had sent it, then the close.
                data = await asyncio.to_thread(stalled.read_until_close, 20)
            finally:
                stalled.close()
            parts = frames(data)
            assert parts and parts[-1][0] == 0x8, "no close frame"
            code, reason = close_code(parts[-1][1])
            assert code == SLOW_CLOSE_CODE, (code, reason)
            assert reason.startswith("too slow: resume with since="), reason
            since = int(reason.rsplit("=", 1)[1])
            assert published[0] <= since < published[-1]
            seen = [int(p.split(b'"seq":')[1].split(b",")[0]) for op, p in parts
                    if op == 0x1 and b'"seq":' in p]
            assert seen and seen[-1] == since, "the close names the last event it got"

            # Back with that since: every event it missed, in order, once.
            again = EventStream(f"ws://{host}:{port}{ws_path(token, since)}")
            hello = await again.connect()
            assert hello["replay_complete"] is True
            await again.wait_for(BULK, seq=after[-1])
            await again.close()
            await reader.close()
            resumed = [e["seq"] for e in again.events if e.get("type") == BULK]
            assert resumed == [s for s in published + after if s > since]

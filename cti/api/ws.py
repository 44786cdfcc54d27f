"""WebSocket hub: pushes bus events to connected clients, in order, with replay,
heartbeats and command replies.

A client connects with `?since=<seq>` to receive what it missed; every event
carries its sequence number. Everything a client receives goes through one
queue per client and one sender task, so events, heartbeats and replies keep
their order and no two sends overlap. The flow can wait until a given event
reached an advisor's client (the screen pop goes out before the phone rings).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import WebSocket, WebSocketDisconnect

from cti.api.auth import Principal
from cti.events import Event, EventBus, visible_to

log = logging.getLogger("cti.ws")


#: How often an open socket re-checks its token (logout, expiry).
TOKEN_RECHECK_S = 1.0
#: Put on a client's queue: its sender closes the socket with 4401.
CLOSE_EXPIRED: dict[str, Any] = {"type": "close", "code": 4401}


class CommandHandler(Protocol):
    """Answers a client's command frame (cti/api/commands.py: Commands)."""

    def handle(self, p: Principal, raw: str) -> dict[str, Any]: ...


@dataclass(eq=False)
class Client:
    principal: Principal
    ws: WebSocket
    # Events (with a seq) and messages without one (heartbeat, reply), in send order.
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    sent_seq: int = 0


class Hub:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.clients: set[Client] = set()
        self._sent = asyncio.Condition()
        bus.subscribe(self._fan_out)

    def _fan_out(self, event: Event) -> None:
        for c in self.clients:
            if visible_to(event, c.principal.user, c.principal.role):
                c.queue.put_nowait(event)

    async def serve(self, ws: WebSocket, principal: Principal, since: int | None,
                    commands: CommandHandler | None = None, heartbeat_s: float = 15.0,
                    valid: Callable[[], bool] | None = None,
                    recheck_s: float = TOKEN_RECHECK_S) -> None:
        """``valid``: whether the client's token still holds (checked every
        ``recheck_s`` and before each command); once not, the socket is closed with
        4401 (logged out or expired)."""
        client = Client(principal, ws)
        # Register before reading the backlog so nothing falls between the two
        # (no await in between: the bus cannot publish meanwhile).
        self.clients.add(client)
        backlog = self.bus.since(since) if since is not None else []
        last = self.bus.last_seq
        # Complete: the buffer still holds every event after `since`. A `since`
        # beyond the last seq means the gateway restarted: what was missed is lost.
        complete = since is None or (since + 1 >= self.bus.oldest_seq() and since <= last)
        hello = {"type": "hello", "user": principal.user, "role": principal.role,
                 "last_seq": last, "replay_complete": complete,
                 "heartbeat_s": heartbeat_s}
        sender = asyncio.create_task(self._send_loop(client, hello, backlog))
        beat = asyncio.create_task(self._heartbeat(client, heartbeat_s))
        tasks = [sender, beat]
        if valid is not None:
            tasks.append(asyncio.create_task(self._recheck(client, valid, recheck_s)))
        try:
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                raw = msg.get("text")
                if valid is not None and not valid():
                    client.queue.put_nowait(CLOSE_EXPIRED)
                elif raw is None:
                    client.queue.put_nowait({"type": "reply", "id": None, "ok": False,
                                             "error": "commands are JSON text frames"})
                elif commands is not None:
                    client.queue.put_nowait(commands.handle(principal, raw))
        except WebSocketDisconnect:
            pass
        finally:
            self.clients.discard(client)
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _recheck(self, client: Client, valid: Callable[[], bool], every_s: float
                       ) -> None:
        while valid():
            await asyncio.sleep(every_s)
        client.queue.put_nowait(CLOSE_EXPIRED)

    async def _heartbeat(self, client: Client, every_s: float) -> None:
        """last_seq: every event up to it that this client may see was sent before
        the heartbeat, so a client may resume from it (`since`) when it is newer
        than its last event."""
        while True:
            await asyncio.sleep(every_s)
            client.queue.put_nowait({"type": "heartbeat", "last_seq": self.bus.last_seq,
                                     "ts": round(time.time(), 3)})

    async def _send_loop(self, client: Client, hello: dict[str, Any],
                         backlog: list[Event]) -> None:
        try:
            await client.ws.send_json(hello)
            last = 0
            for ev in backlog:
                if visible_to(ev, client.principal.user, client.principal.role):
                    await client.ws.send_json(ev)
                    client.sent_seq = last = ev["seq"]
            while True:
                msg = await client.queue.get()
                if msg is CLOSE_EXPIRED:
                    log.info("ws closed user=%s: token logged out or expired",
                             client.principal.user)
                    await client.ws.close(code=4401, reason="token logged out or expired")
                    return
                seq = msg.get("seq")
                if seq is not None and seq <= last:
                    continue  # already sent from the backlog
                await client.ws.send_json(msg)
                if seq is not None:
                    client.sent_seq = last = seq
                    async with self._sent:
                        self._sent.notify_all()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the socket is gone; the reader ends the client
            log.info("ws send failed user=%s: %s", client.principal.user, e)

    async def delivered(self, user: str, seq: int, timeout: float) -> bool:
        """Wait until a client of `user` has been sent event `seq` (False on timeout)."""
        def done() -> bool:
            return any(c.principal.user == user and c.sent_seq >= seq for c in self.clients)

        if not any(c.principal.user == user for c in self.clients):
            return False
        try:
            async with self._sent:
                await asyncio.wait_for(self._sent.wait_for(done), timeout)
            return True
        except asyncio.TimeoutError:
            return False

"""WebSocket hub: pushes bus events to connected clients, in order, with replay,
heartbeats and command replies.

A client connects with `?since=<seq>` to receive what it missed; every event
carries its sequence number. Everything a client receives goes through one
queue per client and one sender task, so events, heartbeats and replies keep
their order and no two sends overlap. The flow can wait until a given event
reached an advisor's client (the screen pop goes out before the phone rings).

Fan-out to many clients (docs/benchmarks.md, "WebSocket fan-out"): an event is
serialised to JSON once for every client that sees it, and each client's queue
is bounded: a client that stops reading fills it and is closed (4408, "too
slow") instead of holding the gateway's memory; it reconnects with `since`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from fastapi import WebSocket, WebSocketDisconnect

from cti.api.auth import Principal
from cti.events import Event, EventBus, visible_to

log = logging.getLogger("cti.ws")


#: How often an open socket re-checks its token (logout, expiry).
TOKEN_RECHECK_S = 1.0
#: Put on a client's queue: its sender closes the socket with 4401.
CLOSE_EXPIRED: Final = ("close", 4401)
#: A client whose send queue is full is closed with this code.
SLOW_CLOSE_CODE = 4408
#: How long the close frame to a too-slow client may wait for room in its socket.
SLOW_CLOSE_WAIT_S = 10.0
#: Messages a client may have unsent before it is closed as too slow (http.ws_send_queue).
SEND_QUEUE = 1000

#: A queued message: (seq, JSON text), seq 0 for what is not an event (heartbeat,
#: reply), or CLOSE_EXPIRED.
Outgoing = tuple[int, str] | tuple[str, int]


def dumps(message: dict[str, Any]) -> str:
    """The JSON text of a message, as Starlette's send_json writes it."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


class CommandHandler(Protocol):
    """Answers a client's command frame (cti/api/commands.py: Commands)."""

    def handle(self, p: Principal, raw: str) -> dict[str, Any]: ...


@dataclass(eq=False)
class Client:
    principal: Principal
    ws: WebSocket
    # Events (with a seq) and messages without one (heartbeat, reply), in send order.
    queue: asyncio.Queue[Outgoing] = field(default_factory=asyncio.Queue)
    sent_seq: int = 0
    sender: asyncio.Task[None] | None = None
    closer: asyncio.Task[None] | None = None  # closing it as too slow


class Hub:
    def __init__(self, bus: EventBus, send_queue: int = SEND_QUEUE) -> None:
        self.bus = bus
        self.send_queue = send_queue
        self.clients: set[Client] = set()
        #: Clients closed because their send queue was full (/metrics).
        self.slow_closes = 0
        # user -> (seq, future) of delivered() calls waiting for that user's client.
        self._waiters: dict[str, list[tuple[int, asyncio.Future[None]]]] = {}
        bus.subscribe(self._fan_out)

    def _fan_out(self, event: Event) -> None:
        text: str | None = None  # serialised once, for the first client that sees it
        for c in list(self.clients):
            if visible_to(event, c.principal.user, c.principal.role):
                if text is None:
                    text = dumps(event)
                self._offer(c, (event["seq"], text))

    def _offer(self, client: Client, item: Outgoing) -> None:
        if client.closer is not None:
            return  # being closed as too slow: nothing more for it
        try:
            client.queue.put_nowait(item)
        except asyncio.QueueFull:
            self._too_slow(client)

    def _too_slow(self, client: Client) -> None:
        """Its queue is full: it stops reading. Drop it from the fan-out and close it;
        it resumes with `since` (the replay)."""
        self.clients.discard(client)
        self.slow_closes += 1
        p = client.principal
        log.warning("ws client too slow user=%s role=%s: %d messages unsent, last event "
                    "sent seq=%d; closing it with %d", p.user, p.role, client.queue.qsize(),
                    client.sent_seq, SLOW_CLOSE_CODE)
        client.closer = asyncio.get_running_loop().create_task(self._close_slow(client))

    async def _close_slow(self, client: Client) -> None:
        if client.sender is not None:
            client.sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await client.sender
        reason = f"too slow: resume with since={client.sent_seq}"
        try:
            # The close frame waits for room in the socket: it arrives once the
            # client reads again; a client gone for good ends by the keepalive.
            await asyncio.wait_for(client.ws.close(code=SLOW_CLOSE_CODE, reason=reason),
                                   SLOW_CLOSE_WAIT_S)
        except asyncio.TimeoutError:
            log.info("ws close of a too slow client user=%s not sent within %.0f s",
                     client.principal.user, SLOW_CLOSE_WAIT_S)
        except Exception as e:  # the socket is gone already
            log.info("ws close of a too slow client user=%s: %s", client.principal.user, e)

    async def serve(self, ws: WebSocket, principal: Principal, since: int | None,
                    commands: CommandHandler | None = None, heartbeat_s: float = 15.0,
                    valid: Callable[[], bool] | None = None,
                    recheck_s: float = TOKEN_RECHECK_S) -> None:
        """``valid``: whether the client's token still holds (checked every
        ``recheck_s`` and before each command); once not, the socket is closed with
        4401 (logged out or expired)."""
        client = Client(principal, ws, asyncio.Queue(self.send_queue))
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
        client.sender = asyncio.create_task(self._send_loop(client, hello, backlog))
        tasks = [client.sender, asyncio.create_task(self._heartbeat(client, heartbeat_s))]
        if valid is not None:
            tasks.append(asyncio.create_task(self._recheck(client, valid, recheck_s)))
        try:
            await self._receive(client, commands, valid)
        finally:
            self.clients.discard(client)
            if client.closer is not None:
                tasks.append(client.closer)
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _receive(self, client: Client, commands: CommandHandler | None,
                       valid: Callable[[], bool] | None) -> None:
        """The client's frames (commands) until it disconnects."""
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                msg = await client.ws.receive()
                if msg["type"] == "websocket.disconnect":
                    return
                raw = msg.get("text")
                if valid is not None and not valid():
                    self._offer(client, CLOSE_EXPIRED)
                elif raw is None:
                    self._offer(client, (0, dumps({
                        "type": "reply", "id": None, "ok": False,
                        "error": "commands are JSON text frames"})))
                elif commands is not None:
                    self._offer(client, (0, dumps(commands.handle(client.principal, raw))))

    async def _recheck(self, client: Client, valid: Callable[[], bool], every_s: float
                       ) -> None:
        while valid():
            await asyncio.sleep(every_s)
        self._offer(client, CLOSE_EXPIRED)

    async def _heartbeat(self, client: Client, every_s: float) -> None:
        """last_seq: every event up to it that this client may see was sent before
        the heartbeat, so a client may resume from it (`since`) when it is newer
        than its last event."""
        while True:
            await asyncio.sleep(every_s)
            self._offer(client, (0, dumps({"type": "heartbeat", "last_seq": self.bus.last_seq,
                                           "ts": round(time.time(), 3)})))

    async def _send_loop(self, client: Client, hello: dict[str, Any],
                         backlog: list[Event]) -> None:
        try:
            await client.ws.send_text(dumps(hello))
            last = 0
            for ev in backlog:
                if visible_to(ev, client.principal.user, client.principal.role):
                    await client.ws.send_text(dumps(ev))
                    client.sent_seq = last = ev["seq"]
            while True:
                item = await client.queue.get()
                if item == CLOSE_EXPIRED:
                    log.info("ws closed user=%s: token logged out or expired",
                             client.principal.user)
                    await client.ws.close(code=4401, reason="token logged out or expired")
                    return
                seq, text = item
                assert isinstance(seq, int) and isinstance(text, str)
                if seq and seq <= last:
                    continue  # already sent from the backlog
                await client.ws.send_text(text)
                if seq:
                    client.sent_seq = last = seq
                    self._wake(client)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the socket is gone; the reader ends the client
            log.info("ws send failed user=%s: %s", client.principal.user, e)

    def _wake(self, client: Client) -> None:
        """Resolve the delivered() waits this client's last send satisfies."""
        waiting = self._waiters.get(client.principal.user)
        for seq, fut in waiting or ():
            if seq <= client.sent_seq and not fut.done():
                fut.set_result(None)

    async def delivered(self, user: str, seq: int, timeout: float) -> bool:
        """Wait until a client of `user` has been sent event `seq` (False on timeout)."""
        mine = [c for c in self.clients if c.principal.user == user]
        if not mine:
            return False
        if any(c.sent_seq >= seq for c in mine):
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (seq, fut)
        self._waiters.setdefault(user, []).append(entry)
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            waiting = self._waiters.get(user, [])
            waiting.remove(entry)
            if not waiting:
                self._waiters.pop(user, None)

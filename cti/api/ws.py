"""WebSocket hub: pushes bus events to connected clients, in order, with replay.

A client connects with `?since=<seq>` to receive what it missed; every event
carries its sequence number. The flow can wait until a given event reached an
advisor's client (the screen pop goes out before the phone rings).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from fastapi import WebSocket, WebSocketDisconnect

from cti.api.auth import Principal
from cti.events import Event, EventBus, visible_to

log = logging.getLogger("cti.ws")


@dataclass(eq=False)
class Client:
    principal: Principal
    ws: WebSocket
    queue: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)
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

    async def serve(self, ws: WebSocket, principal: Principal, since: int | None) -> None:
        client = Client(principal, ws)
        # Register before reading the backlog so nothing falls between the two.
        self.clients.add(client)
        backlog = self.bus.since(since) if since is not None else []
        await ws.send_json({"type": "hello", "user": principal.user, "role": principal.role,
                            "last_seq": self.bus.last_seq,
                            "replay_complete": since is None or since + 1 >= self.bus.oldest_seq()})
        sender = asyncio.create_task(self._send_loop(client, backlog))
        try:
            while True:
                await ws.receive_text()  # commands come with a later issue; keep alive
        except WebSocketDisconnect:
            pass
        finally:
            self.clients.discard(client)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    async def _send_loop(self, client: Client, backlog: list[Event]) -> None:
        last = 0
        for ev in backlog:
            if visible_to(ev, client.principal.user, client.principal.role):
                await client.ws.send_json(ev)
                last = ev["seq"]
        while True:
            ev = await client.queue.get()
            if ev["seq"] <= last:
                continue  # already sent from the backlog
            try:
                await client.ws.send_json(ev)
            except Exception as e:  # the socket is gone; the reader ends the client
                log.info("ws send failed user=%s: %s", client.principal.user, e)
                return
            client.sent_seq = last = ev["seq"]
            async with self._sent:
                self._sent.notify_all()

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

"""State follows the phone: advisors whose phone has no registered contact are away.

The controller polls the edge's location table (``ul.dump`` over JSON-RPC) rather
than being told by Kamailio, because:

- a poll cannot lose a notice: an expiry, an unREGISTER, a contact loaded back
  from the sqlite usrloc after an edge restart, or an edge that was down while a
  phone left are all seen on the next poll, with nothing to replay or resync;
- this Kamailio has no HTTP client or event-socket module to push with
  (no http_client, http_async_client, evapi), and the controller has no SIP stack
  of its own to receive a SIP MESSAGE;
- the table is a handful of advisors: one dump every half second is a few
  hundred bytes on a local datagram socket.

An advisor is online while any of their contacts is registered (a desk phone and
a softphone, or one phone that registered twice): only the last one gone sets
them away. An edge that does not answer changes nobody: "unknown" is not "gone".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from cti.edge.rpc import EdgeRpc
from cti.routing import Distributor

log = logging.getLogger("cti.presence")

POLL_INTERVAL_S = 0.5  # with the 2 s budget of issue 13: a phone gone is seen in <= 0.5 s


class PhonePresence:
    """Feeds each advisor's registration (online / offline) to the distributor."""

    def __init__(self, distributor: Distributor, apply: Callable[[list[Any]], None],
                 rpc: Callable[[], EdgeRpc | None], interval_s: float = POLL_INTERVAL_S) -> None:
        self._distributor = distributor
        self._apply = apply
        self._rpc = rpc  # the edge's client of the moment (a restarted edge has a new one)
        self.interval_s = interval_s
        self.online: dict[str, bool] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def refresh(self) -> None:
        """One look now (an advisor asking to be available right after their phone
        registered should not wait for the next poll); no edge: nothing changes."""
        rpc = self._rpc()
        if self._task is None or rpc is None:
            return
        try:
            self.update(await rpc.registered_users())
        except Exception as e:
            log.debug("registrations not refreshed: %s", e)

    async def _run(self) -> None:
        failing = False
        while True:
            rpc = self._rpc()
            if rpc is not None:
                try:
                    self.update(await rpc.registered_users())
                    failing = False
                except Exception as e:  # the edge restarting: keep what we knew
                    if not failing:
                        log.warning("registrations unknown (edge RPC failed: %s); "
                                    "advisors keep their state", e)
                    failing = True
            await asyncio.sleep(self.interval_s)

    def update(self, registered: set[str]) -> None:
        """One look at the location table: the advisors with at least one contact."""
        for name in self._distributor.advisor_names():
            online = name in registered
            if self.online.get(name) == online:
                continue
            self.online[name] = online
            log.info("phone %s advisor=%s", "registered" if online else "offline", name)
            self._apply(self._distributor.set_phone(name, online, time.time()))

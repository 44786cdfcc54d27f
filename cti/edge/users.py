"""The edge's users table (advisor name -> digest HA1) kept in step with the
advisor directory while the gateway runs: a live Kamailio is told through
JSON-RPC, and the rendered table a new Kamailio starts from is the same map."""

from __future__ import annotations

import logging

from cti.edge.process import KamailioEdge
from cti.edge.rpc import EdgeRpcError

log = logging.getLogger("cti.edge")


class EdgeUsers:
    def __init__(self, edge: KamailioEdge) -> None:
        self._edge = edge

    async def set(self, name: str, ha1: str) -> None:
        # The map first: an edge (re)started from here on renders it.
        self._edge.settings.advisor_ha1[name] = ha1
        if not self._edge.alive:
            return
        try:
            await self._edge.rpc.set_advisor_ha1(name, ha1)
        except EdgeRpcError as e:
            log.error("SIP edge not told of advisor=%s (%s): their phone registers once "
                      "the edge restarts", name, e)

    async def remove(self, name: str) -> None:
        """No more registrations, and the current ones are dropped."""
        self._edge.settings.advisor_ha1.pop(name, None)
        if not self._edge.alive:
            return
        try:
            await self._edge.rpc.remove_advisor(name)
        except EdgeRpcError as e:
            log.error("SIP edge not told that advisor=%s is removed (%s): their phone may "
                      "register until the edge restarts", name, e)

"""The logic: who is a VIP, what a VIP call gets, the counts. Hooks are synchronous;
what they store runs in tasks kept here (a failure is logged, the call goes on)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Coroutine
from typing import Any
from zoneinfo import ZoneInfo

from cti.core.views import CallView
from cti.plugins.api import ActionError, RoutingRequest, Services
from cti_plugin_hello.schemas import HelloSettings, VipOut, normalize
from cti_plugin_hello.storage import VipRepository

#: The call flag of a VIP call (shown with the call; other plugins may read it).
FLAG = "vip"
EVENT = "hello.vip_call"
#: The JSON schema of the data of EVENT (declared in the manifest, checked at publish).
EVENT_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "required": ["number", "dialled", "priority"],
    "properties": {"number": {"type": "string"}, "dialled": {"type": "string"},
                   "priority": {"type": "integer", "minimum": 0}},
}


def vip_call_data(call: CallView, priority: int) -> dict[str, Any]:
    return {"number": normalize(call.caller_number), "dialled": call.dialled,
            "priority": priority}


class Vips:
    def __init__(self, services: Services) -> None:
        self.s = services
        self.cfg: HelloSettings = services.settings
        self.repo = VipRepository(services.store)
        self.numbers: set[str] = set(self.cfg.vip_numbers)
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        """Before the first call: the config's numbers in the table, and those added before."""
        for number in self.cfg.vip_numbers:
            await self.repo.add(number, None, self.s.now())
        self.numbers |= self.repo.numbers()

    async def stop(self) -> None:
        """At stop (every call has ended): let the last counts reach the store."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def today(self) -> str:
        """The contact centre's date (its opening hours' zone, else the host's)."""
        hours = self.s.gateway.ivr.opening_hours
        zone = ZoneInfo(hours.timezone) if hours is not None else None
        return dt.datetime.fromtimestamp(self.s.now(), zone).date().isoformat()

    def is_vip(self, call: CallView) -> bool:
        return normalize(call.caller_number) in self.numbers

    # -------------------------------------------------------------- hooks
    def incoming(self, call: CallView) -> None:
        if not self.is_vip(call):
            return
        self.s.calls.set_flag(call.call_id, FLAG, True)
        self.s.events.publish(EVENT, vip_call_data(call, self.cfg.priority),
                              call_id=call.call_id)
        self._spawn(self.repo.count_call(normalize(call.caller_number), self.today()))

    def routing(self, call: CallView) -> RoutingRequest | None:
        return RoutingRequest(priority=self.cfg.priority) if call.flags.get(FLAG) else None

    # -------------------------------------------------------------- API
    def list(self) -> list[VipOut]:
        return [VipOut(**row) for row in self.repo.all(self.today())]

    async def add(self, number: str, by: str | None) -> VipOut:
        if number in self.numbers:
            raise ActionError(f"{number} is already a VIP")
        self.numbers.add(number)  # before the await: a second POST sees it
        try:
            await self.repo.add(number, by, self.s.now())
        except BaseException:
            self.numbers.discard(number)
            raise
        await self.s.audit.record("hello.vip_added", by, {"number": number})
        return VipOut(number=number, calls_today=0, added_by=by)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and (exc := t.exception()) is not None:
                self.s.log.error("hello: storing a VIP call failed: %s", exc)

        task.add_done_callback(done)

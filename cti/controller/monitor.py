"""Live monitoring: a supervisor or coach listens to a call, whispers to its advisor,
or barges in.

The call's media worker (it holds the caller's and the advisor's legs, bridged)
dials the monitoring user's phone through the edge (``sip:<name>@edge``,
``X-CTI-Monitor: <mode>``): a third leg on the same conference bridge. A bridge
lives in one process, so that leg cannot be placed on another worker. Its audio
follows a matrix of one-way ``listen`` links (docs/ipc.md):

- ``listen``: the monitor hears the caller and the advisor; nobody hears the monitor;
- ``whisper``: the advisor hears the monitor too, the caller does not;
- ``barge``: the caller hears the monitor too.

A worker holds 4 calls; the monitor takes one. On a worker with no free line a
start is refused (409 "the call's media worker has no free line ..."); a worker
left with fewer than 2 leaves the edge's rotation, as with a consult
(:meth:`WorkerRooms.guard_room`). The monitor leg failing (the phone busy or not
registered, hung up) never touches the caller's or the advisor's legs; it ends
with the call, when its phone hangs up, or on request. Every start, change of
mode and end is in the audit (``monitor.start``, ``monitor.mode``,
``monitor.end``) and on the bus as ``call.monitor``, addressed to the monitoring
user (supervisors see every event; the advisor is not told of a silent listen).
Every log line carries the call id.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from cti.controller.calls import Call, Leg
from cti.controller.capacity import WorkerRooms
from cti.controller.context import CallControlError, FlowContext
from cti.controller.workers import WorkerCommandError

log = logging.getLogger("cti.flow")

MonitorMode = Literal["listen", "whisper", "barge"]
MODES: tuple[str, ...] = ("listen", "whisper", "barge")
#: Who hears the monitor in each mode (the monitor always hears both).
HEARD_BY: dict[str, tuple[str, ...]] = {
    "listen": (), "whisper": ("advisor",), "barge": ("advisor", "customer")}
NO_FREE_LINE = ("the call's media worker has no free line for a monitor (4 calls a "
                "worker): try again when a call or consult on it ends")

#: Whether a user's phone is registered at the edge (None: cannot tell now).
PhoneRegistered = Callable[[str], Awaitable[bool | None]]


@dataclass
class Monitor:
    call_id: str
    by: str
    mode: str
    leg: Leg
    state: str = "ringing"  # ringing -> active -> ended
    started_at: float = field(default_factory=time.time)
    end_audited: bool = False  # a stop request wrote its line before the hang-up


class Monitors:
    def __init__(self, ctx: FlowContext, rooms: WorkerRooms) -> None:
        self.ctx = ctx
        self.rooms = rooms
        #: call id -> monitoring user -> monitor
        self.by_call: dict[str, dict[str, Monitor]] = {}
        #: Set by the gateway: asks the edge's registrar (a clear refusal up front).
        self.phone_registered: PhoneRegistered | None = None

    def of_call(self, call_id: str) -> list[dict[str, Any]]:
        """Who monitors the call, how: for the list of live calls."""
        return [{"by": m.by, "mode": m.mode, "state": m.state}
                for m in self.by_call.get(call_id, {}).values()]

    def _monitor(self, call_id: str, by: str) -> Monitor:
        self.ctx.active(call_id)  # KeyError: no such call
        mon = self.by_call.get(call_id, {}).get(by)
        if mon is None:
            raise CallControlError(f"{by} is not monitoring this call")
        return mon

    # ------------------------------------------------------------ requests
    async def start(self, call_id: str, by: str, mode: str, address: str | None = None
                    ) -> dict[str, str]:
        """Monitor the call (or change the mode of one's monitor); the state after."""
        if mode not in MODES:
            raise CallControlError(f"mode must be one of {', '.join(MODES)}")
        if by in self.by_call.get(call_id, {}):
            return await self.set_mode(call_id, by, mode, address)
        self._startable(call_id, by)
        if self.phone_registered is not None and await self.phone_registered(by) is False:
            raise CallControlError(f"{by}'s phone is not registered: register a phone "
                                   f"as {by} to monitor calls")
        call = self._startable(call_id, by)  # checked again after each wait
        await self.ctx.store.audit.record("monitor.start", by, {
            "call_id": call_id, "mode": mode, "advisor": call.advisor}, address)
        call = self._startable(call_id, by)
        leg = Leg(uuid.uuid4().hex, call.worker, "monitor", by)
        mon = Monitor(call_id, by, mode, leg)
        self.by_call.setdefault(call_id, {})[by] = mon
        self.ctx.add_leg(call, leg)
        self.rooms.guard_room(call.worker)
        log.info("monitor start call_id=%s by=%s mode=%s worker=%s leg=%s", call_id, by,
                 mode, call.worker, leg.leg_id)
        self._publish(call_id, mon, {})
        self.ctx.spawn(self._dial(call, mon), call_id)
        return {"mode": mode, "state": mon.state}

    def _startable(self, call_id: str, by: str) -> Call:
        call = self.ctx.active(call_id)
        leg = call.advisor_leg
        if call.state != "connected" or leg is None or leg.state != "confirmed":
            raise CallControlError("the call is not talking to an advisor now")
        if by == call.advisor:
            raise CallControlError("you are the call's advisor")
        if by in self.by_call.get(call_id, {}):
            raise CallControlError(f"{by} is monitoring this call already")
        if self.rooms.free_calls(call.worker) < 1:
            raise CallControlError(NO_FREE_LINE)
        return call

    async def set_mode(self, call_id: str, by: str, mode: str, address: str | None = None
                       ) -> dict[str, str]:
        if mode not in MODES:
            raise CallControlError(f"mode must be one of {', '.join(MODES)}")
        mon = self._monitor(call_id, by)
        if mon.mode != mode:
            await self.ctx.store.audit.record("monitor.mode", by, {
                "call_id": call_id, "mode": mode, "was": mon.mode}, address)
            was, mon.mode = mon.mode, mode
            log.info("monitor mode call_id=%s by=%s mode=%s was=%s", call_id, by, mode, was)
            call = self.ctx.calls.get(call_id)
            if call is not None and mon.state == "active":
                await self._links(call, mon)  # in place when this answers
            self._publish(call_id, mon, {"was": was})
        return {"mode": mon.mode, "state": mon.state}

    async def stop(self, call_id: str, by: str, address: str | None = None) -> None:
        """End one's monitor: its phone is hung up, the call goes on."""
        mon = self._monitor(call_id, by)
        await self.ctx.store.audit.record("monitor.end", by, {
            "call_id": call_id, "mode": mon.mode, "reason": "stopped",
            "duration_s": round(time.time() - mon.started_at, 1)}, address)
        mon.end_audited = True
        call = self.ctx.calls.get(call_id)
        if call is not None and mon.leg.state != "disconnected":
            self.ctx.send_to(mon.leg.worker, call, "hangup", leg=mon.leg.leg_id)
        self._end(mon, "stopped")

    # ------------------------------------------------------------ the monitor's leg
    async def _dial(self, call: Call, mon: Monitor) -> None:
        if not await self.ctx.dial_leg(call, mon.leg, self.ctx.advisor_uri(mon.by),
                                       headers={"X-CTI-Monitor": mon.mode}):
            self._end(mon, "failed", "the monitor's phone could not be dialled")

    def leg_changed(self, call: Call, leg: Leg) -> None:
        """A monitor leg answered or ended (WorkerEvents)."""
        mon = self.by_call.get(call.call_id, {}).get(leg.peer)
        if mon is None or mon.leg is not leg:
            return
        if leg.state == "confirmed" and mon.state == "ringing":
            mon.state = "active"
            self.ctx.spawn(self._activate(call, mon), call.call_id)
        elif leg.state == "disconnected":
            if mon.state == "ringing":
                self._end(mon, "failed", f"{mon.by}'s phone did not answer "
                                         f"({leg.end_code or 'no answer'})")
            else:
                self._end(mon, "hung_up")

    def advisor_up(self, call: Call, leg: Leg) -> None:
        """The call has a new advisor leg (a transfer, a consulted colleague): the
        monitors' links follow it."""
        if leg is not call.advisor_leg:
            return
        for mon in self.by_call.get(call.call_id, {}).values():
            if mon.state == "active":
                self.ctx.spawn(self._links(call, mon), call.call_id)

    async def _links(self, call: Call, mon: Monitor) -> None:
        """The mode's matrix, as one-way links on the call's worker; returns once the
        worker applied them (a failure is logged: the call itself is not touched)."""
        link = self.ctx.pool.get(mon.leg.worker)
        heard_by = HEARD_BY[mon.mode]
        parties = (("customer", call.customer), ("advisor", call.advisor_leg))
        try:
            for name, party in parties:
                if party is None or party.worker != mon.leg.worker \
                        or party.state == "disconnected":
                    continue  # e.g. a consult's target on another worker: not here
                if link is None or not link.up:
                    raise WorkerCommandError("worker gone")
                await link.command("listen", leg=mon.leg.leg_id, source=party.leg_id)
                await link.command("listen", leg=party.leg_id, source=mon.leg.leg_id,
                                   on=name in heard_by)
        except WorkerCommandError as e:
            log.warning("monitor links not applied call_id=%s by=%s: %s", call.call_id,
                        mon.by, e)

    async def _activate(self, call: Call, mon: Monitor) -> None:
        await self._links(call, mon)
        if mon.state == "active":  # not ended meanwhile
            log.info("monitor active call_id=%s by=%s mode=%s", call.call_id, mon.by,
                     mon.mode)
            self._publish(call.call_id, mon, {})

    def call_ended(self, call: Call) -> None:
        """The call ends (its legs, the monitors' too, are hung up by the ending)."""
        for mon in list(self.by_call.get(call.call_id, {}).values()):
            self._end(mon, "call_ended")

    def _end(self, mon: Monitor, reason: str, error: str | None = None) -> None:
        mons = self.by_call.get(mon.call_id, {})
        if mons.get(mon.by) is not mon:
            return  # ended already
        del mons[mon.by]
        if not mons:
            self.by_call.pop(mon.call_id, None)
        mon.state = "ended"
        duration = round(time.time() - mon.started_at, 1)
        log.info("monitor ended call_id=%s by=%s reason=%s error=%s", mon.call_id, mon.by,
                 reason, error)
        if not mon.end_audited:
            details: dict[str, Any] = {"call_id": mon.call_id, "mode": mon.mode,
                                       "reason": reason, "duration_s": duration}
            if error:
                details["error"] = error
            self.ctx.spawn(self.ctx.store.audit.record("monitor.end", mon.by, details),
                           mon.call_id)
        extra: dict[str, Any] = {"reason": reason}
        if error:
            extra["error"] = error
        self._publish(mon.call_id, mon, extra)

    def _publish(self, call_id: str, mon: Monitor, extra: dict[str, Any]) -> None:
        self.ctx.publish_id("call.monitor", call_id, {
            "state": mon.state, "mode": mon.mode, "by": mon.by, **extra}, advisor=mon.by)

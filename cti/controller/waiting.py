"""The wait for an advisor: joining a queue, position announcements, the max wait.

:class:`Waiting` puts calls into the distributor (after the IVR, or again after
a transfer) and keeps each waiting caller's two timers: the next position
announcement and ``routing.max_wait_s``. It applies distributor actions through
:class:`cti.controller.offers.Offers` (given in the constructor); it needs no
other service. Every log line carries the call id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from cti.controller.calls import Call, call_view
from cti.controller.context import FlowContext
from cti.controller.offers import Offers
from cti.ivr.announce import wait_announcement

log = logging.getLogger("cti.flow")

#: A call offered when its max wait is reached is looked at again this much later.
MAX_WAIT_RECHECK_S = 5.0


class Waiting:
    def __init__(self, ctx: FlowContext, offers: Offers) -> None:
        self.ctx = ctx
        self.offers = offers
        self._announce_timers: dict[str, asyncio.TimerHandle] = {}
        self._max_wait_timers: dict[str, asyncio.TimerHandle] = {}

    def enqueue(self, call: Call) -> None:
        """A call the IVR finished with (state queued): its timers, then the distributor."""
        ctx = self.ctx
        self._schedule_announcement(call, ctx.settings.ivr.announce_first_s)
        if ctx.settings.routing.max_wait_s > 0:
            self._timer(self._max_wait_timers, call, ctx.settings.routing.max_wait_s,
                        self._max_wait)
        ctx.plugins.call("cti_call_queued", call_id=call.call_id, call=call_view(call))
        ctx.publish("call.queued", call, {"language": call.language, "topic": call.topic,
                                          "priority": call.priority})
        self.offers.apply(ctx.distributor.add_call(
            call.call_id, language=call.language or "",
            topic=call.topic or ctx.settings.ivr.default_topic, priority=call.priority,
            trainings=call.trainings, reserve=call.reserve, now=time.time()))

    def requeue(self, call: Call, topic: str, preferred: str | None = None,
                at_head: bool = False) -> None:
        """Back to a queue, keeping the caller's place in time (music while waiting);
        ``at_head``: ahead of the calls of the same or a lower priority."""
        call.state, call.advisor, call.held = "queued", None, False
        call.topic = topic
        call.ivr_path.append(f"transfer->{preferred or topic}")
        self.ctx.play_music(call)
        self.offers.apply(self.ctx.distributor.add_call(
            call.call_id, language=call.language or "", topic=topic, priority=call.priority,
            trainings=call.trainings, reserve=call.reserve, preferred_advisor=preferred,
            direct=preferred is not None, now=time.time(), enqueued_at=call.queued_at,
            at_head=at_head))

    def move(self, call: Call, topic: str, why: str) -> None:
        """A waiting call to another topic's queue, keeping its place in time."""
        now = time.time()
        actions = self.ctx.distributor.remove_call(call.call_id, now)
        call.topic = topic
        call.ivr_path.append(f"{why}->{topic}")
        self.offers.apply(actions + self.ctx.distributor.add_call(
            call.call_id, language=call.language or "", topic=topic, priority=call.priority,
            trainings=call.trainings, reserve=call.reserve, now=now,
            enqueued_at=call.queued_at))

    def forget(self, call: Call) -> None:
        """The call ended: its timers go."""
        for timers in (self._announce_timers, self._max_wait_timers):
            if (t := timers.pop(call.call_id, None)) is not None:
                t.cancel()

    # ------------------------------------------------------------ max wait
    def _timer(self, timers: dict[str, asyncio.TimerHandle], call: Call, delay: float,
               fn: Callable[[Call], None]) -> None:
        timers[call.call_id] = asyncio.get_running_loop().call_later(delay, fn, call)

    def _max_wait(self, call: Call) -> None:
        """The call waited routing.max_wait_s: a plugin acts, or it changes queue."""
        ctx = self.ctx
        self._max_wait_timers.pop(call.call_id, None)
        if call.state == "offered":  # ringing an advisor now: look again shortly
            self._timer(self._max_wait_timers, call, MAX_WAIT_RECHECK_S, self._max_wait)
            return
        if call.state != "queued":
            return
        action = ctx.settings.routing.max_wait_action
        log.info("max wait reached call_id=%s action=%s", call.call_id, action)
        if action == "hook":
            handled = bool(ctx.plugins.first("cti_call_max_wait", call_id=call.call_id,
                                             call=call_view(call)))
            ctx.publish("call.max_wait", call, {"action": action, "handled": handled})
            return
        topic = action.partition(":")[2]
        ctx.publish("call.max_wait", call, {"action": action, "topic": topic})
        self.move(call, topic, why="max_wait")

    # ------------------------------------------------------------ announcements
    def _schedule_announcement(self, call: Call, delay: float) -> None:
        if delay <= 0:
            return
        handle = asyncio.get_running_loop().call_later(delay, self._announce, call)
        self._announce_timers[call.call_id] = handle

    def _announce(self, call: Call) -> None:
        """Tell a waiting caller their position and expected wait, then music again."""
        self._announce_timers.pop(call.call_id, None)
        if call.state == "ended":
            return
        distributor = self.ctx.distributor
        position = distributor.position(call.call_id) if call.state == "queued" else None
        if position is not None and call.language:
            wait = distributor.expected_wait_s(call.call_id, time.time())
            call.announcements += 1
            refs = [(r.language, r.key)
                    for r in wait_announcement(call.language, position, wait)]
            self.ctx.play(call, f"announce-{call.announcements}", refs, "announcement",
                          position=position, expected_wait_s=wait)
        self._schedule_announcement(call, self.ctx.settings.ivr.announce_every_s)

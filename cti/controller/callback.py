"""Calls back: work that waits in the distributor without a caller on the line.

A call back (``Call.kind == "callback"``) is queued like the call it came from —
same language, topic, priority, trainings, and its original enqueue time, so it
keeps the caller's place. It has no worker until an advisor takes it: then
:class:`CallbackCall` puts it on a worker with room for two legs, rings the
advisor's phone first, and once they answer dials the customer through the edge
(which routes numbers to the carrier trunk). The customer picking up
(``call.reached``) first hears the call back's greeting, if it has one (prompt
keys in the call's language, e.g. "the consular hotline, calling you back"), and
is bridged to the advisor when it has played (``call.bridged``); a greeting whose
prompt is missing is left out (a warning), never the call. A customer who does
not pick up (busy, no answer, failure) ends the call back as ``unreached``, which
frees the advisor — the plugin that asked for it decides whether to try again
(``cti_call_ended`` with that reason).

:class:`Callbacks` is what plugins use (``services.tasks``) to create and cancel
them. Every log line carries the call id.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cti.controller.calls import Call, Leg, call_view
from cti.controller.capacity import WorkerRooms
from cti.controller.context import FlowContext
from cti.controller.ending import CallEnding
from cti.controller.offers import Offers
from cti.core.views import WorkKind

log = logging.getLogger("cti.flow")

#: The end reason of a call back whose customer did not pick up.
UNREACHED = "unreached"
#: The kinds of work that call the customer out: a caller's call back, a campaign's call.
OUTBOUND_KINDS: tuple[WorkKind, ...] = ("callback", "outbound")
#: The play id of a call back's greeting to the customer (its play.done bridges).
GREETING_PLAY = "callback-greeting"


class CallbackCall:
    """The TaskHandler of a call back: the advisor first, then the customer."""

    kind: WorkKind = "callback"

    def __init__(self, ctx: FlowContext, rooms: WorkerRooms) -> None:
        self.ctx = ctx
        self.rooms = rooms
        self.ending: CallEnding | None = None  # bound by the flow (ending needs offers)

    def outbound_uri(self, number: str) -> str:
        """A number, reached through the edge (its trunk route)."""
        return f"sip:{number}@{self.ctx.settings.sip.ip}:{self.ctx.settings.sip.port}"

    async def reach_advisor(self, call: Call, leg: Leg, advisor: str) -> bool:
        if not call.worker:
            worker = self.rooms.consult_worker("")  # any worker with room for two legs
            if worker is None:
                log.warning("call back: no worker with room call_id=%s", call.call_id)
                return False
            self.ctx.calls.place(call, worker)
            self.rooms.guard_room(worker)  # the edge counts callers, not these legs
            log.info("call back placed call_id=%s worker=%s", call.call_id, worker)
        return await self.ctx.dial_leg(call, leg, self.ctx.advisor_uri(advisor))

    def advisor_answered(self, call: Call, leg: Leg) -> None:
        customer = call.customer
        uri = self.outbound_uri(call.caller_number)
        log.info("call back dialling call_id=%s number=%s", call.call_id, call.caller_number)

        async def dial() -> None:
            if not await self.ctx.dial_leg(call, customer, uri):
                self.customer_gone(call)
                return
            # A phone that rings on and on (no voicemail, a carrier without a timer)
            # must not hold the advisor: after callee_ring_s the ringing is cancelled.
            asyncio.get_running_loop().call_later(
                self.ctx.settings.routing.callee_ring_s, self._ring_too_long, call)

        self.ctx.spawn(dial(), call.call_id)

    def _ring_too_long(self, call: Call) -> None:
        if call.reached_at is not None or call.ended_at is not None or \
                call.customer.state in ("disconnected", "confirmed"):
            return
        log.info("call back: the customer did not pick up within %ss call_id=%s",
                 self.ctx.settings.routing.callee_ring_s, call.call_id)
        self.ctx.send(call, "hangup", leg=call.customer.leg_id)

    def customer_answered(self, call: Call, leg: Leg) -> None:
        if call.advisor_leg is None or call.state != "connected":
            return
        call.reached_at = time.time()
        log.info("call back reached call_id=%s advisor=%s", call.call_id, call.advisor)
        self.ctx.publish("call.reached", call, {"number": call.caller_number})
        if not self._greet(call):
            self._bridge(call, greeted=False)

    def _greet(self, call: Call) -> bool:
        """Play the call's greeting to the customer; False if it has none or cannot."""
        if not call.greeting:
            return False
        language = call.language or self.ctx.settings.ivr.default_language
        refs = [(language, key) for key in call.greeting]
        try:
            missing = self.ctx.prompts.missing(refs)
            if missing:
                raise FileNotFoundError(f"no prompt {missing[0][0]}/{missing[0][1]}.wav")
            self.ctx.play(call, GREETING_PLAY, refs, "greeting")
        except (OSError, ValueError) as e:
            log.warning("call back greeting left out call_id=%s: %s", call.call_id, e)
            return False
        log.info("call back greeting call_id=%s prompts=%s", call.call_id,
                 ",".join(f"{lg}/{key}" for lg, key in refs))
        return True

    def customer_play_done(self, call: Call, play_id: str) -> bool:
        if play_id != GREETING_PLAY:
            return False
        # The customer or the advisor may have hung up while it played; an advisor
        # who put the customer on hold meanwhile bridges when they take them back.
        if call.state == "connected" and call.reached_at is not None and not call.held \
                and call.customer.state != "disconnected":
            self._bridge(call, greeted=True)
        return True

    def _bridge(self, call: Call, greeted: bool) -> None:
        advisor_leg = call.advisor_leg
        if advisor_leg is None or advisor_leg.state == "disconnected":
            return
        self.ctx.send(call, "bridge", a=call.customer.leg_id, b=advisor_leg.leg_id)
        log.info("call back bridged call_id=%s advisor=%s greeted=%s", call.call_id,
                 call.advisor, greeted)
        self.ctx.publish("call.bridged", call, {"number": call.caller_number,
                                                "greeted": greeted})

    def customer_gone(self, call: Call) -> bool:
        """The customer's leg ended: True if this handler ended the call (unreached)."""
        if call.reached_at is not None or self.ending is None:
            return False
        log.info("call back unreached call_id=%s code=%s", call.call_id,
                 call.customer.end_code)
        self.ending.end_call(call, UNREACHED)
        return True


class Callbacks:
    """Create and cancel calls back (the plugins' ``services.tasks``)."""

    def __init__(self, ctx: FlowContext, offers: Offers, ending: CallEnding) -> None:
        self.ctx = ctx
        self.offers = offers
        self.ending = ending

    def callback(self, number: str, *, language: str, topic: str, priority: int = 0,
                 trainings: Iterable[str] = (), reserve: Iterable[str] = (),
                 enqueued_at: float | None = None, flags: Mapping[str, Any] | None = None,
                 origin_call_id: str | None = None, ivr_path: Iterable[str] = (),
                 dialled: str = "", greeting: Sequence[str] = (),
                 kind: WorkKind = "callback") -> str:
        """Queue a call back to ``number`` (``kind`` "outbound" for a campaign's call);
        returns its call id. ``greeting``: prompt keys played to the customer (in
        ``language``) before they are bridged."""
        settings = self.ctx.settings
        if kind not in OUTBOUND_KINDS:
            raise ValueError(f"callback: kind {kind!r} is not one of {OUTBOUND_KINDS}")
        if language not in {m.code for m in settings.ivr.languages}:
            raise ValueError(f"callback: {language!r} is not an IVR language")
        if topic not in {m.code for m in settings.ivr.topics}:
            raise ValueError(f"callback: {topic!r} is not an IVR topic")
        if isinstance(greeting, str) or not all(isinstance(k, str) and k for k in greeting):
            raise ValueError("callback: greeting must be a sequence of prompt keys")
        now = time.time()
        customer = Leg(uuid.uuid4().hex, "", "customer", number)
        call = Call(worker="", customer=customer, caller_number=number, dialled=dialled,
                    kind=kind, state="queued", language=language, topic=topic,
                    priority=priority, trainings=set(trainings), reserve=set(reserve),
                    flags={kind: True, **(flags or {})}, ivr_path=list(ivr_path),
                    origin_call_id=origin_call_id, queued_at=enqueued_at or now,
                    greeting=tuple(greeting))
        self.ctx.calls.add(call)
        self.ctx.store.save_call(call.to_record())  # the row from the first second
        log.info("call back queued call_id=%s number=%s origin=%s", call.call_id, number,
                 origin_call_id)
        self.ctx.plugins.call("cti_call_queued", call_id=call.call_id, call=call_view(call))
        self.ctx.publish("call.queued", call, {"language": language, "topic": topic,
                                               "priority": priority})
        self.offers.apply(self.ctx.distributor.add_call(
            call.call_id, language=language, topic=topic, priority=priority,
            trainings=call.trainings, reserve=call.reserve, now=now,
            enqueued_at=call.queued_at))
        return call.call_id

    def cancel(self, call_id: str, by: str | None = None) -> bool:
        """A call back not yet taken is withdrawn (False if it is gone or ringing)."""
        call = self.ctx.calls.get(call_id)
        if call is None or call.kind not in OUTBOUND_KINDS or call.state != "queued":
            return False
        log.info("call back cancelled call_id=%s by=%s", call_id, by)
        self.ending.end_call(call, "cancelled")
        return True

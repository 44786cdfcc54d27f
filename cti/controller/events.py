"""Worker events in: each goes to the service that owns the leg it is about.

:class:`WorkerEvents` keeps no state of its own: it finds the call of a leg,
updates the leg, and dispatches — a new call or the caller's media, digits and
prompts to :class:`~cti.controller.inbound.Inbound`, the advisor's phone to
:class:`~cti.controller.offers.Offers`, consult legs to
:class:`~cti.controller.consult.Consults`, the caller hanging up to
:class:`~cti.controller.ending.CallEnding`. It also handles a worker going down
(its calls end) and coming back. All collaborators come in the constructor.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from cti.controller.calls import Call
from cti.controller.capacity import WorkerRooms
from cti.controller.consult import Consults
from cti.controller.context import FlowContext
from cti.controller.ending import CallEnding
from cti.controller.inbound import Inbound
from cti.controller.monitor import Monitors
from cti.controller.offers import Offers
from cti.controller.quality import LineQuality
from cti.controller.recorder import CallRecorder
from cti.controller.workers import WorkerLink

log = logging.getLogger("cti.flow")

CONSULT_ROLES = ("consult_advisor", "consult_target", "join")


class WorkerEvents:
    def __init__(self, ctx: FlowContext, inbound: Inbound, offers: Offers,
                 consults: Consults, ending: CallEnding, rooms: WorkerRooms,
                 recorder: CallRecorder, monitors: Monitors, quality: LineQuality) -> None:
        self.ctx = ctx
        self.quality = quality
        self.recorder = recorder
        self.monitors = monitors
        self.inbound = inbound
        self.offers = offers
        self.consults = consults
        self.ending = ending
        self.rooms = rooms

    def on_event(self, link: WorkerLink, msg: dict[str, Any]) -> None:
        kind = msg.get("event")
        if kind == "leg.incoming":
            self.inbound.incoming(link.worker_id, msg)
            return
        if str(kind).startswith("record.") and "rec_id" in msg:
            self.recorder.on_worker_event(link.worker_id, msg)
            return
        call = self.ctx.calls.by_leg(link.worker_id, str(msg.get("leg")))
        if call is None:
            if kind == "leg.state" and msg.get("state") != "disconnected":
                log.warning("event for unknown leg worker=%s: %s", link.worker_id, msg)
            self.quality.late_leg(link.worker_id, msg)  # a leg of a call that ended
            return
        on_customer = msg.get("leg") == call.customer.leg_id
        if kind == "leg.state":
            self._leg_state(call, msg)
        elif kind == "leg.media" and msg.get("active"):
            if on_customer and call.state == "incoming":
                self.inbound.start_ivr(call)
        elif kind == "leg.dtmf" and on_customer:
            self.inbound.digit(call, str(msg.get("digit", "")), str(msg.get("method", "")))
        elif kind == "play.done" and on_customer:
            play_id = str(msg.get("play_id", ""))
            if not self.offers.handlers[call.kind].customer_play_done(call, play_id):
                self.inbound.play_done(call, play_id)

    def _leg_state(self, call: Call, msg: dict[str, Any]) -> None:
        state = str(msg.get("state"))
        leg = next((x for x in call.legs if x.leg_id == msg.get("leg")), None)
        if leg is None:
            return
        leg.state = state
        leg.sip_call_id = leg.sip_call_id or msg.get("sip_call_id")
        if state == "confirmed":
            self.recorder.leg_up(call, leg)
        if state == "disconnected":
            leg.ended_at = time.time()
            leg.end_code = msg.get("code")
            self.quality.leg_ended(call, leg, msg)
            cause = str(msg.get("cause") or "")
            if cause:  # the worker ended the leg itself (docs/ipc.md: leg.state cause)
                log.warning("leg ended by its worker call_id=%s leg=%s role=%s cause=%s",
                            call.call_id, leg.leg_id, leg.role, cause)
            if self.rooms.out_of_rotation:  # after this event's effects on the legs
                asyncio.get_running_loop().call_soon(self.rooms.recheck_rotation)
            if leg is call.customer:
                if not self.offers.handlers[call.kind].customer_gone(call):
                    self.ending.customer_gone(call, cause)
            elif leg is call.advisor_leg and call.consult is not None \
                    and call.consult.state == "talking":
                # The advisor hung up the held call while consulting: hand it over.
                self.consults.complete(call.call_id, call.advisor or "")
            elif leg is call.advisor_leg:
                self.offers.advisor_leg_gone(call, leg)
        elif state == "confirmed" and leg is call.advisor_leg:
            self.offers.advisor_answered(call, leg)
            self.monitors.advisor_up(call, leg)
        elif state == "confirmed" and leg is call.customer:
            self.offers.handlers[call.kind].customer_answered(call, leg)
        if leg.role == "monitor" and state in ("confirmed", "disconnected"):
            self.monitors.leg_changed(call, leg)
        elif leg is call.external_leg and state in ("confirmed", "disconnected"):
            self.inbound.external_leg_changed(call, leg)
        elif call.consult is not None and leg.role in CONSULT_ROLES \
                and state in ("confirmed", "disconnected"):
            self.consults.leg_changed(call, leg)

    # ------------------------------------------------------------ workers
    async def on_worker_down(self, link: WorkerLink) -> list[str]:
        """A worker died: its calls are lost media-wise; end them with a reason.

        Returns the SIP Call-IDs of the advisor legs that were up, so the edge
        can send those advisors the BYE the dead worker cannot.
        """
        self.recorder.worker_down(link.worker_id)
        calls = self.ctx.calls
        advisor_dialogs = [
            c.advisor_leg.sip_call_id for c in calls.on_worker(link.worker_id)
            if c.advisor_leg is not None and c.advisor_leg.sip_call_id
            and c.advisor_leg.state not in ("disconnected", "new")
        ]
        for call in calls.all():
            if call.consult is not None and call.consult.worker == link.worker_id \
                    and call.worker != link.worker_id:
                for leg in (call.consult.advisor_leg, call.consult.target_leg):
                    leg.state = "disconnected"
                if call.consult.state in ("ringing", "talking"):
                    self.consults.finish(call, "failed")
                else:  # the caller was joined to the target there: that is gone
                    self.ending.end_call(call, "worker_failed")
        for call in calls.on_worker(link.worker_id):
            log.error("worker failed during call call_id=%s worker=%s", call.call_id,
                      link.worker_id)
            self.ending.end_call(call, "worker_failed", worker_alive=False)
        return advisor_dialogs

    async def on_worker_up(self, link: WorkerLink) -> None:
        log.info("worker up worker=%s restarts=%s", link.worker_id, link.restarts)

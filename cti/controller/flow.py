"""The call flow: worker events in, IVR and distributor decisions, media commands out.

This is the only place that ties telephony (worker legs) to logic (the pure
IVR engine and distributor). :class:`CallFlow` composes the services, one per
use case, and is the thin facade the gateway, the API and the tests use:

- ``ctx``      :class:`~cti.controller.context.FlowContext` — shared dependencies, helpers
- ``handlers`` kind of work -> :class:`~cti.controller.work.TaskHandler` (``inbound`` today)
- ``rooms``    :class:`~cti.controller.capacity.WorkerRooms` — worker room, edge rotation
- ``offers``   :class:`~cti.controller.offers.Offers` — distributor actions, the advisor's phone
- ``waiting``  :class:`~cti.controller.waiting.Waiting` — queueing, announcements, max wait
- ``ivr_sessions`` :class:`~cti.controller.inbound.IvrSessions` — callers in the IVR
- ``ending``   :class:`~cti.controller.ending.CallEnding` — ending a call
- ``consults`` :class:`~cti.controller.consult.Consults` — consult transfers
- ``monitors`` :class:`~cti.controller.monitor.Monitors` — listen, whisper, barge
- ``inbound``  :class:`~cti.controller.inbound.Inbound` — new calls, the IVR, transfers out
- ``control``  :class:`~cti.controller.control.CallControl` — advisors' and supervisors' actions
- ``quality``  :class:`~cti.controller.quality.LineQuality` — the legs' RTP loss and jitter
- ``events``   :class:`~cti.controller.events.WorkerEvents` — worker events to the services
- ``plugin_calls`` :class:`~cti.controller.plugin_actions.PluginCalls` — what plugins see and do

Each service gets its collaborators in its constructor, in the order below; the
one cycle (offers ↔ ending) is closed by ``offers.bind_ending`` after both exist.
The facade delegates explicitly and adds no logic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cti.config import Settings
from cti.controller.callback import OUTBOUND_KINDS, CallbackCall, Callbacks
from cti.controller.calls import CallRegistry
from cti.controller.capacity import EdgeRotation, WorkerRooms
from cti.controller.consult import Consults
from cti.controller.context import FlowContext, MediaWorkers
from cti.controller.control import CallControl, TargetType, TransferKind
from cti.controller.ending import CallEnding
from cti.controller.events import WorkerEvents
from cti.controller.inbound import Inbound, IvrSessions
from cti.controller.monitor import Monitors
from cti.controller.offers import Delivered, Offers
from cti.controller.plugin_actions import PluginCalls
from cti.controller.prompts import PromptLibrary
from cti.controller.quality import LineQuality
from cti.controller.recorder import CallRecorder
from cti.controller.recovery import RecoveryBreaks
from cti.controller.skills import SkillBook, Skills
from cti.controller.waiting import Waiting
from cti.controller.work import TaskHandler, inbound_only
from cti.controller.workers import WorkerLink
from cti.core.advisors import AdvisorDirectory
from cti.core.views import WorkKind
from cti.events import EventBus
from cti.plugins import PluginHost
from cti.routing import Distributor
from cti.store.db import Store


class CallFlow:
    def __init__(
        self,
        settings: Settings,
        pool: MediaWorkers,
        bus: EventBus,
        store: Store,
        plugins: PluginHost,
        prompts: PromptLibrary,
        delivered: Delivered,
        handlers: Mapping[WorkKind, TaskHandler] | None = None,
    ) -> None:
        ctx = self.ctx = FlowContext(settings, pool, bus, store, plugins, prompts)
        self.rooms = WorkerRooms(ctx)
        callback = CallbackCall(ctx, self.rooms)
        self.handlers = dict(handlers) if handlers is not None else {
            **inbound_only(ctx), **{kind: callback for kind in OUTBOUND_KINDS}}
        self.offers = Offers(ctx, self.handlers, delivered)
        self.waiting = Waiting(ctx, self.offers)
        self.ivr_sessions = IvrSessions()
        self.recorder = CallRecorder(ctx)
        self.monitors = Monitors(ctx, self.rooms)
        self.quality = LineQuality(ctx)
        # (the recording is stopped first, so the worker finishes it before the hangups)
        self.ending = CallEnding(ctx, self.offers, forget=(
            self.recorder.stop, self.ivr_sessions.end, self.waiting.forget,
            self.monitors.call_ended, self.quality.call_ended))
        self.offers.bind_ending(self.ending)
        callback.ending = self.ending
        self.callbacks = Callbacks(ctx, self.offers, self.ending)
        self.consults = Consults(ctx, self.offers, self.rooms, self.ending,
                                 advisor_changed=self.monitors.advisor_up)
        self.inbound = Inbound(ctx, self.ivr_sessions, self.waiting, self.ending,
                               self.consults)
        self.recovery = RecoveryBreaks(ctx, self.offers)
        self.control = CallControl(ctx, self.offers, self.consults, self.waiting,
                                   self.inbound, self.ending, self.recovery)
        self.events = WorkerEvents(ctx, self.inbound, self.offers, self.consults,
                                   self.ending, self.rooms, self.recorder, self.monitors,
                                   self.quality)
        self.plugin_calls = PluginCalls(ctx, self.waiting, self.offers, self.control,
                                        self.inbound, self.ending)

    # ------------------------------------------------------------ state
    @property
    def calls(self) -> CallRegistry:
        return self.ctx.calls

    @property
    def distributor(self) -> Distributor:
        return self.ctx.distributor

    @property
    def skills(self) -> SkillBook:
        return self.ctx.skills

    @property
    def advisors(self) -> AdvisorDirectory:
        return self.ctx.advisors

    @property
    def flags(self) -> dict[str, bool]:
        return self.ctx.flags

    @property
    def edge_rotation(self) -> EdgeRotation | None:
        return self.rooms.edge_rotation

    @edge_rotation.setter
    def edge_rotation(self, fn: EdgeRotation | None) -> None:
        """Set by the gateway: take a worker out of or back into the edge's rotation."""
        self.rooms.edge_rotation = fn

    @property
    def _out_of_rotation(self) -> set[str]:  # read by the e2e tests
        return self.rooms.out_of_rotation

    def _free_calls(self, worker: str) -> int:  # read by the e2e tests
        return self.rooms.free_calls(worker)

    def recheck_rotation(self) -> None:
        self.rooms.recheck_rotation()

    def active_calls(self) -> list[dict[str, Any]]:
        return [
            {"call_id": c.call_id, "state": c.state, "advisor": c.advisor,
             "recording": self.recorder.state(c.call_id),
             "monitors": self.monitors.of_call(c.call_id), **self.offers.screen_pop(c),
             # The screens' timers: talk time, hold time, wait.
             "queued_at": c.queued_at, "offered_at": c.offered_at,
             "answered_at": c.answered_at,
             "held_at": c.held_at if c.held else None}
            for c in self.ctx.calls.all()
        ]

    # ------------------------------------------------------------ workers
    def on_worker_event(self, link: WorkerLink, msg: dict[str, Any]) -> None:
        self.events.on_event(link, msg)

    async def on_worker_up(self, link: WorkerLink) -> None:
        await self.events.on_worker_up(link)

    async def on_worker_down(self, link: WorkerLink) -> list[str]:
        return await self.events.on_worker_down(link)

    def hangup_all(self) -> None:
        self.ending.hangup_all()

    # ------------------------------------------------------------ lookups
    def advisor_of(self, call_id: str) -> str | None:
        return self.control.advisor_of(call_id)

    def handled_by(self, call_id: str, advisor: str) -> bool:
        return self.control.handled_by(call_id, advisor)

    def consulted(self, call_id: str) -> str | None:
        return self.consults.consulted(call_id)

    # ------------------------------------------------------------ the API
    async def update_skills(self, advisor: str, skills: Skills, by: str | None = None,
                            address: str | None = None) -> None:
        await self.offers.update_skills(advisor, skills, by, address)

    def set_advisor_state(self, advisor: str, state: str, reason: str | None = None) -> None:
        self.offers.set_advisor_state(advisor, state, reason)

    async def set_flag(self, name: str, value: bool, by: str | None = None,
                       address: str | None = None) -> None:
        await self.inbound.set_flag(name, value, by, address)

    def accept_offer(self, call_id: str, advisor: str) -> None:
        self.control.accept_offer(call_id, advisor)

    def reject_offer(self, call_id: str, advisor: str) -> None:
        self.control.reject_offer(call_id, advisor)

    def hangup_call(self, call_id: str, by: str) -> None:
        self.control.hangup_call(call_id, by)

    def hold_call(self, call_id: str, by: str, on: bool) -> None:
        self.control.hold_call(call_id, by, on)

    def pause_recording(self, call_id: str, by: str, paused: bool) -> str | None:
        """Pause or resume the call's recording; its state after ("recording" or
        "paused"). KeyError: no such call; ActionError (a ValueError): not recorded."""
        if self.ctx.calls.get(call_id) is None:
            raise KeyError(call_id)
        if paused:
            self.recorder.pause(call_id, by)
        else:
            self.recorder.resume(call_id, by)
        return self.recorder.state(call_id)

    async def monitor_call(self, call_id: str, by: str, mode: str,
                           address: str | None = None) -> dict[str, str]:
        """Listen to, whisper in or barge into the call (or change the mode); audited."""
        return await self.monitors.start(call_id, by, mode, address)

    async def monitor_mode(self, call_id: str, by: str, mode: str,
                           address: str | None = None) -> dict[str, str]:
        return await self.monitors.set_mode(call_id, by, mode, address)

    async def monitor_stop(self, call_id: str, by: str, address: str | None = None) -> None:
        await self.monitors.stop(call_id, by, address)

    def transfer_call(self, call_id: str, by: str, kind: TransferKind, target_type: TargetType,
                      target: str) -> None:
        self.control.transfer_call(call_id, by, kind, target_type, target)

    def consult_complete(self, call_id: str, by: str) -> None:
        self.consults.complete(call_id, by)

    def consult_cancel(self, call_id: str, by: str) -> None:
        self.consults.cancel(call_id, by)

    def wrap_up(self, call_id: str, advisor: str, code: str, note: str,
                distressing: bool = False) -> None:
        self.control.wrap_up(call_id, advisor, code, note, distressing)

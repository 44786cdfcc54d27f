"""What plugins may see and do to calls (cti.plugins.services.PluginActions).

:class:`PluginCalls` is the controller's side of the plugins' services handle:
read-only views, and actions that go through the same services the API uses
(waiting, offers, control, inbound). Each action checks the call's state and
refuses with :class:`cti.plugins.api.ActionError` (one line) what does not fit;
an unknown call id raises KeyError. Every log line carries the call id.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from typing import Any

from cti.controller.calls import Call, call_view
from cti.controller.context import FlowContext
from cti.controller.control import CallControl
from cti.controller.ending import CallEnding
from cti.controller.inbound import Inbound
from cti.controller.offers import Offers
from cti.controller.waiting import Waiting
from cti.core.views import AdvisorView, CallView, QueueView
from cti.plugins.api import ActionError

log = logging.getLogger("cti.flow")

#: Where a plugin's transfer goes when the target does not answer.
FALLBACKS = ("queue_head", "queue", "hangup")


class PluginCalls:
    def __init__(self, ctx: FlowContext, waiting: Waiting, offers: Offers,
                 control: CallControl, inbound: Inbound, ending: CallEnding) -> None:
        self.ctx = ctx
        self.ending = ending
        self.waiting = waiting
        self.offers = offers
        self.control = control
        self.inbound = inbound
        self._plays = 0

    # ------------------------------------------------------------ views
    def call_views(self) -> list[CallView]:
        return [call_view(c) for c in self.ctx.calls.all()]

    def call_view(self, call_id: str) -> CallView | None:
        call = self.ctx.calls.get(call_id)
        return call_view(call) if call is not None else None

    def advisor_views(self) -> list[AdvisorView]:
        d, now = self.ctx.distributor, time.time()
        views = []
        for a in self.ctx.advisors.all():
            if a.name not in d.advisor_names():
                continue  # a supervisor: takes no calls
            profile = d.advisor_profile(a.name)
            views.append(AdvisorView(
                name=a.name, display_name=a.display_name or a.name,
                state=d.advisor_state(a.name).value, reason=d.advisor_reason(a.name),
                call_id=d.advisor_call(a.name), languages=dict(profile.languages),
                topics=dict(profile.topics),
                trainings=frozenset(profile.valid_trainings(now))))
        return views

    def waiting_views(self) -> QueueView:
        calls = [self.ctx.calls.get(cid) for cid in self.ctx.distributor.waiting_calls()]
        return QueueView(tuple(call_view(c) for c in calls if c is not None))

    # ------------------------------------------------------------ actions
    def _call(self, call_id: str) -> Call:
        call = self.ctx.calls.get(call_id)
        if call is None:
            raise KeyError(call_id)
        return call

    def _waiting(self, call_id: str, what: str) -> Call:
        call = self._call(call_id)
        if call.state != "queued":
            raise ActionError(f"{what}: the call is {call.state}, not waiting")
        return call

    def play_prompts(self, call_id: str, keys: Sequence[str],
                     before_bridge: bool = False) -> None:
        call = self._call(call_id)
        if call.state not in ("queued", "transferring"):
            raise ActionError(f"play: the call is {call.state}, not waiting")
        language = call.language or self.ctx.settings.ivr.default_language
        missing = self.ctx.prompts.missing([(language, k) for k in keys])
        if missing:
            raise ActionError(f"play: no prompt {missing[0][0]}/{missing[0][1]}.wav")
        self._plays += 1
        play_id = f"announce-plugin-{self._plays}"
        if before_bridge:  # the advisor is put through once it has played
            call.bridge_after_play = play_id
        # "announce-": music again when it has played (Inbound.play_done).
        self.ctx.play(call, play_id, [(language, k) for k in keys], "announcement")

    def set_call_flag(self, call_id: str, name: str, value: Any) -> None:
        call = self._call(call_id)
        call.flags[name] = value

    def hangup_for_plugin(self, call_id: str, reason: str) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", reason):
            raise ActionError(f"hangup: reason {reason!r}: lower-case words with '_'")
        self.ending.end_call(self._call(call_id), reason)

    def set_call_priority(self, call_id: str, priority: int) -> None:
        call = self._call(call_id)
        call.priority = priority
        if self.ctx.distributor.has_call(call_id):
            self.offers.apply(self.ctx.distributor.update_call(
                call_id, time.time(), priority=priority))

    def set_call_requirements(self, call_id: str, trainings: frozenset[str] | None,
                              reserve: frozenset[str] | None) -> None:
        call = self._call(call_id)
        if trainings is not None:
            call.trainings = set(trainings)
        if reserve is not None:
            call.reserve = set(reserve)
        if self.ctx.distributor.has_call(call_id):
            self.offers.apply(self.ctx.distributor.update_call(
                call_id, time.time(), trainings=trainings, reserve=reserve))

    def move_call(self, call_id: str, topic: str) -> None:
        call = self._waiting(call_id, "move")
        if topic not in {m.code for m in self.ctx.settings.ivr.topics}:
            raise ActionError(f"move: {topic!r} is not a queue (an IVR topic)")
        self.waiting.move(call, topic, why="plugin")

    def transfer_for_plugin(self, call_id: str, target: str, fallback: str, by: str) -> None:
        """A waiting or connected call to a directory entry, a sip: URI or queue:<topic>."""
        call = self._call(call_id)
        if fallback not in FALLBACKS:
            raise ActionError(f"transfer: fallback {fallback!r} is not one of {FALLBACKS}")
        topic = target.removeprefix("queue:") if target.startswith("queue:") else None
        if call.state == "connected":
            call.transfer_fallback = fallback
            if topic is not None:
                self.control.transfer_call(call_id, by, "blind", "queue", topic)
            else:
                self.control.transfer_call(call_id, by, "blind", "external", target)
            return
        if call.state != "queued":
            raise ActionError(f"transfer: the call is {call.state}, not waiting or connected")
        if topic is not None:
            self.move_call(call_id, topic)
            return
        if target not in {d.key for d in self.ctx.settings.directory} \
                and not target.startswith("sip:"):
            raise ActionError(f"transfer: {target!r} is not in the directory")
        log.info("plugin transfer call_id=%s target=%s by=%s fallback=%s", call_id, target,
                 by, fallback)
        self.offers.apply(self.ctx.distributor.remove_call(call_id, time.time()))
        call.transfer_fallback = fallback
        self.ctx.publish("call.transferring", call, {
            "target": target, "target_type": "external", "kind": "blind", "by": by})
        self.inbound.blind_external(call, target, by)

"""The callbacks plugin's logic: the offer to a caller who waits long, the dialogue,
the request in the store (one pending per number), the call back queued with the
caller's place in time when due (within the calling window), retries, and the
supervisors' list / cancel / reorder.

Hooks are synchronous; store writes and timers run in tasks (``services.spawn``).
Every time comes from ``services.now()``.
"""

from __future__ import annotations

from typing import Any

from cti.core.views import CallView
from cti.plugins.api import ActionError, Services
from plugins.callbacks.dialogue import GREETING, Action, Commit, Dialogue, GiveUp, Play
from plugins.callbacks.schemas import CallbacksSettings
from plugins.callbacks.storage import Request, RequestRepository
from plugins.callbacks.timing import (
    When,
    later_slot,
    next_call_time,
    normalize_number,
    start_of_today,
    zone_for,
)

#: Durable timers (kind): the offer to a waiting caller, no input in the dialogue,
#: the end of the call after "we will call you back", a request that is due.
OFFER_T, INPUT_T, HANGUP_T, DUE_T = "offer", "no_input", "hangup", "due"
#: The end reason of the call of a caller who asked to be called back.
HANGUP_REASON = "callback_requested"
#: The flag of a call back naming its request.
FLAG = "callback_id"
UNREACHED = "unreached"


class Callbacks:
    def __init__(self, services: Services) -> None:
        self.s = services
        self.cfg: CallbacksSettings = services.settings
        self.repo = RequestRepository(services.store)
        #: Callers in a dialogue (call id -> dialogue).
        self.dialogues: dict[str, Dialogue] = {}
        #: Call backs queued by this run: call id -> request id (their cti_call_ended
        #: counts as an attempt; one withdrawn by the plugin is taken out first).
        self.live: dict[str, int] = {}
        self.reached: set[str] = set()
        for kind, handler in ((OFFER_T, self._offer_due), (INPUT_T, self._no_input),
                              (HANGUP_T, self._hangup_due), (DUE_T, self._due)):
            services.timers.on(kind, handler)

    @property
    def default_zone(self) -> str:
        return self.cfg.zone_default(self.s.gateway)

    # ------------------------------------------------------------ restart
    async def resume(self) -> None:
        """Pending requests again, in their order: those due (or queued when the
        gateway stopped) back into the distributor with their original enqueue
        time; future ones on their (durable) timers."""
        now = self.s.now()
        pending = self.repo.pending()
        for req in pending:
            if req.status == "queued" or req.due_at <= now:
                self._queue(req)
                await self.repo.save(req)
            else:
                await self.s.timers.schedule(DUE_T, req.due_at, {FLAG: req.callback_id},
                                             key=f"due:{req.callback_id}")
        if pending:
            self.s.log.info("call backs pending since a previous run: %d", len(pending))

    # ------------------------------------------------------------ the offer
    def queued(self, call: CallView) -> None:
        if call.kind != "inbound" or (self.cfg.topics and call.topic not in self.cfg.topics):
            return
        at = (call.queued_at or self.s.now()) + self.cfg.offer_after_s
        self.s.spawn(self.s.timers.schedule(OFFER_T, at, {"call_id": call.call_id},
                                            key=f"offer:{call.call_id}"))

    def escalated(self, call: CallView) -> None:
        """A step of routing.escalation marked escalate: offered now (if so configured)."""
        if not self.cfg.offer_on_escalation or call.kind != "inbound" or (
                self.cfg.topics and call.topic not in self.cfg.topics):
            return
        self.s.spawn(self._offer_due("", {"call_id": call.call_id}))

    def caller_number(self, call: CallView) -> str | None:
        number = call.caller_number.strip()
        if number.startswith("+") and number[1:].isdigit():
            return number
        return normalize_number(number, call.caller_country)

    async def _offer_due(self, timer_id: str, payload: dict[str, Any]) -> None:
        call = self.s.calls.get(str(payload.get("call_id")))
        if call is None or call.state != "queued" or call.kind != "inbound":
            return
        if self.cfg.repeat_offer_s is not None:
            await self.s.timers.schedule(OFFER_T, self.s.now() + self.cfg.repeat_offer_s,
                                         {"call_id": call.call_id},
                                         key=f"offer:{call.call_id}")
        current = self.dialogues.get(call.call_id)
        if current is not None and current.state not in ("offered", "over"):
            return  # in the middle of it
        number = self.caller_number(call)
        if number is None:
            return
        dialogue = Dialogue(number, lambda keyed: normalize_number(keyed, call.caller_country),
                            max_repeats=self.cfg.max_repeats)
        self.dialogues[call.call_id] = dialogue
        self._run(call, dialogue, dialogue.offer())
        self.s.metrics.inc("offers", "Callers offered a call back.")

    # ------------------------------------------------------------ the dialogue
    def digit(self, call: CallView, digit: str) -> bool | None:
        dialogue = self.dialogues.get(call.call_id)
        if dialogue is None:
            return None
        actions = dialogue.on_digit(digit)
        if actions is None:
            return None
        self._run(call, dialogue, actions)
        return True

    async def _no_input(self, timer_id: str, payload: dict[str, Any]) -> None:
        call_id = str(payload.get("call_id"))
        dialogue = self.dialogues.get(call_id)
        call = self.s.calls.get(call_id)
        if dialogue is None or call is None or call.state != "queued":
            return
        self._run(call, dialogue, dialogue.on_no_input(int(payload.get("step", -1))))

    def _run(self, call: CallView, dialogue: Dialogue, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Play):
                self._play(call.call_id, action.prompts)
            elif isinstance(action, Commit):
                self.s.spawn(self._commit(call, dialogue, action))
            elif isinstance(action, GiveUp):
                self.dialogues.pop(call.call_id, None)
                self.s.metrics.inc("dialogues_abandoned",
                                   "Dialogues that ended without a request.")
        if dialogue.asking:  # a newer question replaces the timer (same key)
            self.s.spawn(self.s.timers.schedule(
                INPUT_T, self.s.now() + self.cfg.no_input_s,
                {"call_id": call.call_id, "step": dialogue.step}, key=f"input:{call.call_id}"))

    def _play(self, call_id: str, prompts: tuple[str, ...]) -> None:
        try:
            self.s.calls.play(call_id, list(prompts))
        except (ActionError, KeyError) as e:
            self.s.log.warning("call back prompt not played call_id=%s: %s", call_id, e)

    async def _commit(self, call: CallView, dialogue: Dialogue, commit: Commit) -> None:
        """Stored first, then "we will call you back", then the call ends."""
        try:
            await self.request(call, commit.number, commit.when)
        except Exception:
            self.s.log.exception("call back request failed call_id=%s", call.call_id)
            self._run(call, dialogue, dialogue.failed())
            return
        self._run(call, dialogue, dialogue.committed())
        await self.s.timers.schedule(HANGUP_T, self.s.now() + self.cfg.hangup_after_s,
                                     {"call_id": call.call_id}, key=f"hangup:{call.call_id}")

    async def _hangup_due(self, timer_id: str, payload: dict[str, Any]) -> None:
        call_id = str(payload.get("call_id"))
        self.dialogues.pop(call_id, None)
        if self.s.calls.get(call_id) is None:
            return
        try:
            self.s.calls.hangup(call_id, HANGUP_REASON)
        except (ActionError, KeyError) as e:
            self.s.log.warning("call back: hangup failed call_id=%s: %s", call_id, e)

    # ------------------------------------------------------------ the request
    async def request(self, call: CallView, number: str, when: When) -> Request:
        """Store the request of ``call`` (a second one for the same number updates the
        first) and arm it: queued now if due, else a durable timer."""
        now = self.s.now()
        own = self.caller_number(call) == number
        zone = zone_for(number, call.caller_timezone if own else None, self.default_zone)
        due = next_call_time(later_slot(when, now, zone, self.cfg.tomorrow_hour), zone,
                             self.cfg.window)
        enqueued_at = call.queued_at or now
        fields: dict[str, Any] = dict(
            language=call.language or self.s.gateway.ivr.default_language,
            topic=call.topic or self.s.gateway.ivr.topics[0].code, priority=call.priority,
            trainings=sorted(call.trainings), reserve=sorted(call.reserve),
            ivr_path=list(call.ivr_path), dialled=call.dialled, requested_at=now,
            due_at=due, zone=zone, origin_call_id=call.call_id, updated_at=now, attempts=0)
        req = self.repo.pending_for(number)
        updated = req is not None
        if req is not None:
            if req.status == "queued" and req.call_id and not self._withdraw(req.call_id):
                raise ActionError("the call back is being made now")
            for key, value in fields.items():
                setattr(req, key, value)
            req.enqueued_at = min(req.enqueued_at, enqueued_at)
            req.status, req.call_id = "scheduled", None
            await self.repo.save(req)
        else:
            req = Request(callback_id=0, number=number, status="scheduled",
                          enqueued_at=enqueued_at, **fields)
            await self.repo.add(req)
        self.s.log.info("call back requested callback_id=%s call_id=%s when=%s due_in=%.0fs "
                        "updated=%s", req.callback_id, call.call_id, when, due - now, updated)
        self.s.metrics.inc("requests", "Call backs requested.", when=when)
        self.s.events.publish("callback.requested", {
            "callback_id": req.callback_id, "number": number, "when": when, "due_at": due,
            "zone": zone, "enqueued_at": req.enqueued_at, "updated": updated},
            call_id=call.call_id)
        await self.arm(req)
        return req

    async def arm(self, req: Request) -> None:
        if req.due_at <= self.s.now():
            await self.s.timers.cancel(f"due:{req.callback_id}")
            self._queue(req)
            await self.repo.save(req)
        else:
            await self.s.timers.schedule(DUE_T, req.due_at, {FLAG: req.callback_id},
                                         key=f"due:{req.callback_id}")

    def _queue(self, req: Request) -> None:
        """Into the distributor as a call back, with the caller's place in time (a
        request whose language or topic left the config is cancelled)."""
        try:
            call_id = self._callback(req)
        except ValueError as e:
            self.s.log.error("call back cancelled callback_id=%s: %s", req.callback_id, e)
            req.status, req.call_id, req.updated_at = "cancelled", None, self.s.now()
            return
        self.live[call_id] = req.callback_id
        req.status, req.call_id, req.updated_at = "queued", call_id, self.s.now()
        self.s.log.info("call back queued callback_id=%s call_id=%s attempt=%d",
                        req.callback_id, call_id, req.attempts + 1)

    def _callback(self, req: Request) -> str:
        return self.s.tasks.callback(
            req.number, language=req.language, topic=req.topic, priority=req.priority,
            trainings=frozenset(req.trainings), reserve=frozenset(req.reserve),
            enqueued_at=req.enqueued_at, flags={FLAG: req.callback_id},
            origin_call_id=req.origin_call_id, ivr_path=tuple(req.ivr_path),
            dialled=req.dialled, greeting=(GREETING,))

    async def _due(self, timer_id: str, payload: dict[str, Any]) -> None:
        req = self.repo.get(int(payload.get(FLAG, 0)))
        if req is None or req.status != "scheduled":
            return
        self._queue(req)
        await self.repo.save(req)

    def _withdraw(self, call_id: str, by: str | None = None) -> bool:
        """Take a queued call back out of the distributor (False: an advisor has it)."""
        callback_id = self.live.pop(call_id, None)
        if self.s.tasks.cancel(call_id, by=by):
            return True
        if callback_id is not None:
            self.live[call_id] = callback_id
        return False

    # ------------------------------------------------------------ the attempts
    def event(self, event: dict[str, Any]) -> None:
        if event.get("type") == "call.reached" and event.get("call_id") in self.live:
            call_id = str(event["call_id"])
            self.reached.add(call_id)
            self.s.spawn(self._connected(self.live[call_id], call_id, event.get("advisor")))

    async def _connected(self, callback_id: int, call_id: str, advisor: str | None) -> None:
        req = self.repo.get(callback_id)
        if req is None:
            return
        req.status, req.advisor, req.updated_at = "connected", advisor, self.s.now()
        req.attempts += 1
        await self.repo.save(req)
        self.s.metrics.inc("connected", "Call backs that reached the customer.")
        self.s.events.publish("callback.connected", {
            "callback_id": callback_id, "attempt": req.attempts, "advisor": advisor},
            call_id=call_id, advisor=advisor)

    def ended(self, call: CallView) -> None:
        if call.kind == "callback":
            callback_id = self.live.pop(call.call_id, None)
            if callback_id is not None:
                reached = call.call_id in self.reached
                self.reached.discard(call.call_id)
                self.s.spawn(self._attempt_ended(callback_id, call, reached))
            return
        self.dialogues.pop(call.call_id, None)
        for key in ("offer", "input"):
            self.s.spawn(self.s.timers.cancel(f"{key}:{call.call_id}"))

    async def _attempt_ended(self, callback_id: int, call: CallView, reached: bool) -> None:
        req = self.repo.get(callback_id)
        if req is None or req.call_id not in (call.call_id, None):
            return
        now = self.s.now()
        reason = call.end_reason or ""
        if reached or req.status == "connected":
            await self.repo.attempt(callback_id, call.call_id, call.advisor, now, reason)
            return
        if reason == "shutdown":  # tried again at the next start, in its place
            req.status, req.call_id, req.due_at, req.updated_at = "scheduled", None, now, now
            await self.repo.save(req)
            return
        if reason == "cancelled":  # withdrawn through the core, not by this plugin
            req.status, req.call_id, req.updated_at = "cancelled", None, now
            await self.repo.save(req)
            return
        req.attempts += 1
        req.advisor, req.call_id, req.updated_at = call.advisor, None, now
        await self.repo.attempt(callback_id, call.call_id, call.advisor, now, reason)
        retry_at: float | None = None
        if req.attempts < self.cfg.max_attempts:
            retry_at = next_call_time(now + self.cfg.retry_after_s, req.zone, self.cfg.window)
            req.status, req.due_at = "scheduled", retry_at
        else:
            req.status = UNREACHED
        await self.repo.save(req)
        self.s.metrics.inc("attempts", "Call back attempts that did not reach the customer.",
                           reason=reason or "unknown")
        self.s.events.publish("callback.attempted", {
            "callback_id": callback_id, "attempt": req.attempts, "advisor": call.advisor,
            "end_reason": reason, "retry_at": retry_at}, call_id=call.call_id)
        if retry_at is None:
            self.s.log.info("call back unreached callback_id=%s attempts=%d", callback_id,
                            req.attempts)
            self.s.metrics.inc("unreached", "Call backs given up after every attempt.")
            self.s.events.publish("callback.unreached", {
                "callback_id": callback_id, "number": req.number, "attempts": req.attempts})
        else:
            await self.arm(req)

    # ------------------------------------------------------------ supervisors
    def requests(self, pending_only: bool = False) -> list[Request]:
        return self.repo.pending() if pending_only else self.repo.recent()

    def mine(self, advisor: str) -> list[Request]:
        return self.repo.of_advisor(advisor)

    def stats(self) -> dict[str, Any]:
        """The wallboard's counts; "today" is since the gateway's local midnight."""
        return self.repo.stats(start_of_today(self.s.now()))

    def _pending(self, callback_id: int) -> Request:
        req = self.repo.get(callback_id)
        if req is None:
            raise KeyError(callback_id)
        if not req.pending:
            raise ActionError(f"call back {callback_id} is {req.status}, not pending")
        return req

    async def cancel(self, callback_id: int, by: str | None) -> Request:
        req = self._pending(callback_id)
        if req.status == "queued" and req.call_id and not self._withdraw(req.call_id, by):
            raise ActionError("an advisor is making the call back now")
        await self.s.timers.cancel(f"due:{callback_id}")
        req.status, req.call_id, req.updated_at = "cancelled", None, self.s.now()
        await self.repo.save(req)
        await self.s.audit.record("callback.cancel", by, {"callback_id": callback_id})
        self.s.metrics.inc("cancelled", "Call backs cancelled by a supervisor.")
        return req

    async def move(self, callback_id: int, before: int | None, by: str | None) -> Request:
        """Reorder among the pending call backs: just before ``before`` (its priority,
        a place in time just ahead of it), or after every other (None)."""
        req = self._pending(callback_id)
        others = [r for r in self.repo.pending() if r.callback_id != callback_id]
        if before is None:
            if others:
                last = others[-1]
                req.priority, req.enqueued_at = last.priority, last.enqueued_at + 1.0
        else:
            if before == callback_id:
                raise ActionError("a call back cannot move before itself")
            target = next((r for r in others if r.callback_id == before), None)
            if target is None:
                raise ActionError(f"call back {before} is not pending")
            i = others.index(target)
            prev = others[i - 1] if i > 0 else None
            req.priority = target.priority
            req.enqueued_at = ((prev.enqueued_at + target.enqueued_at) / 2
                               if prev is not None and prev.priority == target.priority
                               else target.enqueued_at - 1.0)
        if req.status == "queued" and req.call_id:
            if not self._withdraw(req.call_id, by):
                raise ActionError("an advisor is making the call back now")
            self._queue(req)  # again, at its new place
        req.updated_at = self.s.now()
        await self.repo.save(req)
        await self.s.audit.record("callback.move", by, {"callback_id": callback_id,
                                                        "before": before})
        return req

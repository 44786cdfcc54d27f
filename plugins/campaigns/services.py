"""The campaigns plugin's logic: campaigns from an upload, the progressive dialer
(an advisor with the skill first, then the number, inside each number's calling
window, under a cap on the share of advisors), outcomes and the wrap-up.

The dialer runs in one task: every ``pace_s`` and at once when a call of a campaign
ends or an advisor's state changes, it queues the next due number of each running
campaign — one waiting for an advisor per campaign at a time, so a campaign never
piles up calls the floor cannot take. Hooks are synchronous; store writes run in
tasks (``services.spawn``). Every time comes from ``services.now()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from cti.core.calling import Window, in_window, next_call_time, window_of, zone_for
from cti.core.views import CallView
from cti.plugins.api import ActionError, Services
from plugins.campaigns.csvfile import Row, export_csv, parse_contacts
from plugins.campaigns.schemas import CampaignIn, CampaignsSettings
from plugins.campaigns.storage import OPEN, Campaign, CampaignRepository, Contact

KIND = "outbound"
#: What the callee hears when they pick up, before the advisor is put through.
GREETING = ("campaigns.greeting",)
#: Advisors who count for the share: signed in and not away.
WORKING = ("available", "reserved", "on_call", "wrap_up")
#: How the last attempt ended, from the callee's SIP status.
SIP_REASONS = {486: "busy", 600: "busy", 408: "no answer", 480: "no answer",
               487: "no answer", 603: "declined"}


@dataclass
class Live:
    """A campaign call of this run."""

    contact_id: int
    campaign_id: int
    reached: bool = False


class Campaigns:
    def __init__(self, services: Services) -> None:
        self.s = services
        self.cfg: CampaignsSettings = services.settings
        self.repo = CampaignRepository(services.store)
        self.live: dict[str, Live] = {}  # call id -> its contact
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def default_zone(self) -> str:
        return self.cfg.zone_default(self.s.gateway)

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """After a restart: half-imported uploads are dropped, calls of the previous
        run are due again (one reached before the stop counts as reached)."""
        now = self.s.now()
        for c in self.repo.with_status("importing"):
            await self.repo.delete_contacts(c.campaign_id)
            c.status, c.updated_at = "failed", now
            await self.repo.save_campaign(c)
            self.s.log.error("campaign %s: its upload was cut short; upload it again",
                             c.campaign_id)
        for k in self.repo.in_progress():
            if k.last_reason == "reached":
                k.status = "reached"
            else:
                k.status, k.due_at = "scheduled", min(k.due_at, now)
            k.updated_at = now
            await self.repo.save_contact(k)
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._pace())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def poke(self) -> None:
        """Look for due numbers now (a call ended, an advisor became free ...)."""
        if self._wake is not None:
            self._wake.set()

    async def _pace(self) -> None:
        assert self._wake is not None
        while True:
            try:
                await self.tick()
            except Exception:
                self.s.log.exception("campaign dialer failed; trying again")
                self.s.metrics.inc("dialer_errors", "Rounds of the dialer that failed.")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.cfg.pace_s)
            self._wake.clear()

    # ------------------------------------------------------------ campaigns
    async def create(self, body: CampaignIn, by: str | None) -> Campaign:
        """A campaign from an upload: every row checked first (CsvError names each
        bad line), then stored in one transaction, then it starts (or waits paused)."""
        gw = self.s.gateway
        topics = [t.code for t in gw.ivr.topics]
        languages = [m.code for m in gw.ivr.languages]
        if body.topic not in topics:
            raise ActionError(f"topic {body.topic!r} is not an IVR topic "
                              f"(expected one of {', '.join(topics)})")
        language = body.language or gw.ivr.default_language
        if language not in languages:
            raise ActionError(f"language {language!r} is not an IVR language "
                              f"(expected one of {', '.join(languages)})")
        start = body.window_start or self.cfg.window_start
        end = body.window_end or self.cfg.window_end
        try:
            window = window_of(start, end)
        except ValueError as e:
            raise ActionError(str(e)) from None
        rows = parse_contacts(body.csv, languages=languages, default_language=language,
                              max_rows=self.cfg.max_contacts)
        now = self.s.now()
        campaign = Campaign(0, body.name, body.topic, language, "importing", start, end,
                            by, now, now)
        await self.repo.add_campaign(campaign)
        await self.repo.add_contacts([self._contact(campaign, r, window, now) for r in rows])
        campaign.status = "running" if body.start else "paused"
        await self.repo.save_campaign(campaign)
        await self.s.audit.record("campaign.create", by, {
            "campaign_id": campaign.campaign_id, "name": body.name, "numbers": len(rows)})
        self.s.log.info("campaign %s created by %s: %d numbers, topic %s",
                        campaign.campaign_id, by, len(rows), body.topic)
        self._status_event(campaign)
        self.poke()
        return campaign

    def _contact(self, c: Campaign, row: Row, window: Window, now: float) -> Contact:
        zone = zone_for(row.number, None, self.default_zone)
        return Contact(0, c.campaign_id, row.line, row.number, row.name, row.language,
                       row.note, zone, "scheduled", 0, next_call_time(now, zone, window),
                       now)

    def campaigns(self) -> list[Campaign]:
        return self.repo.campaigns()

    def campaign(self, campaign_id: int) -> Campaign:
        c = self.repo.campaign(campaign_id)
        if c is None:
            raise KeyError(campaign_id)
        return c

    def counts(self, campaign_id: int) -> dict[str, int]:
        return self.repo.counts(campaign_id)

    def contacts(self, campaign_id: int) -> list[Contact]:
        self.campaign(campaign_id)
        return self.repo.contacts(campaign_id)

    def export(self, campaign_id: int) -> str:
        """The outcome of every number as CSV (the upload's order)."""
        self.campaign(campaign_id)

        def row(k: Contact) -> dict[str, object]:
            nxt = (datetime.fromtimestamp(k.due_at, ZoneInfo(k.zone)).isoformat(
                timespec="minutes") if k.status == "scheduled" else None)
            return {**k.out(), "next_call_at": nxt}

        return export_csv(row(k) for k in self.repo.contacts(campaign_id))

    async def set_state(self, campaign_id: int, action: str, by: str | None) -> Campaign:
        """pause (calls in progress go on, waiting ones are withdrawn), resume, stop
        (numbers not called yet end cancelled)."""
        c = self.campaign(campaign_id)
        allowed = {"pause": ("running",), "resume": ("paused",),
                   "stop": ("running", "paused")}[action]
        if c.status not in allowed:
            raise ActionError(f"campaign {campaign_id} is {c.status}: cannot {action}")
        now = self.s.now()
        c.status = {"pause": "paused", "resume": "running", "stop": "stopped"}[action]
        c.updated_at = now
        await self.repo.save_campaign(c)
        if action != "resume":
            await self._withdraw(c, "cancelled" if action == "stop" else "scheduled")
        if action == "stop":
            await self.repo.set_status(campaign_id, ("scheduled",), "cancelled", now)
        await self.s.audit.record(f"campaign.{action}", by, {"campaign_id": campaign_id})
        self.s.log.info("campaign %s: %s by %s", campaign_id, action, by)
        self._status_event(c)
        self.poke()
        return c

    async def _withdraw(self, c: Campaign, to: str) -> None:
        """The campaign's calls still waiting for an advisor leave the distributor."""
        for call_id, live in list(self.live.items()):
            if live.campaign_id != c.campaign_id:
                continue
            self.live.pop(call_id)  # first: its cti_call_ended is not an attempt
            if not self.s.tasks.cancel(call_id, by="campaign"):
                self.live[call_id] = live  # an advisor has it: it goes on
                continue
            k = self.repo.contact(live.contact_id)
            if k is not None:
                k.status, k.call_id, k.updated_at = to, None, self.s.now()
                await self.repo.save_contact(k)

    # ------------------------------------------------------------ the dialer
    def room(self) -> int:
        """How many more campaign calls the share of working advisors allows."""
        working = sum(1 for a in self.s.advisors.list() if a.state in WORKING)
        return math.floor(self.cfg.max_share * working + 1e-9) - len(self.live)

    async def tick(self) -> None:
        now = self.s.now()
        for c in self.repo.with_status("running"):
            if self.room() <= 0:
                return
            if any(lv.campaign_id == c.campaign_id and self._waiting(call_id)
                   for call_id, lv in self.live.items()):
                continue  # one waiting for an advisor at a time
            if not await self._next(c, now):  # (a campaign that just dialled is not done)
                await self._maybe_done(c)

    def _waiting(self, call_id: str) -> bool:
        call = self.s.calls.get(call_id)
        return call is not None and call.state in ("queued", "offered")

    async def _next(self, c: Campaign, now: float) -> bool:
        """Queue the campaign's next due number; True if one was queued."""
        window = window_of(c.window_start, c.window_end)
        for k in self.repo.due(c.campaign_id, now, limit=20):
            if not in_window(now, k.zone, window):  # the window closed since
                k.due_at, k.updated_at = next_call_time(now, k.zone, window), now
                await self.repo.save_contact(k)
                continue
            return await self._dial(c, k, now)
        return False

    async def _dial(self, c: Campaign, k: Contact, now: float) -> bool:
        try:
            call_id = self.s.tasks.callback(
                k.number, language=k.language, topic=c.topic, priority=self.cfg.priority,
                enqueued_at=now, kind=KIND, greeting=GREETING,
                flags={"campaign_id": c.campaign_id, "contact_id": k.contact_id})
        except ValueError as e:  # its language or topic left the config
            self.s.log.error("campaign %s: number on line %d cancelled: %s",
                             c.campaign_id, k.line, e)
            k.status, k.last_reason, k.updated_at = "cancelled", str(e)[:200], now
            await self.repo.save_contact(k)
            return False
        self.live[call_id] = Live(k.contact_id, c.campaign_id)
        k.status, k.call_id, k.advisor, k.updated_at = "queued", call_id, None, now
        await self.repo.save_contact(k)
        self.s.log.info("campaign %s: line %d queued call_id=%s attempt=%d",
                        c.campaign_id, k.line, call_id, k.attempts + 1)
        self.s.metrics.inc("dialled", "Campaign numbers queued for an advisor.")
        self._progress(c)
        return True

    async def _maybe_done(self, c: Campaign) -> None:
        counts = self.repo.counts(c.campaign_id)
        if c.status == "running" and not any(counts[s] for s in OPEN):
            c.status, c.updated_at = "done", self.s.now()
            await self.repo.save_campaign(c)
            self.s.log.info("campaign %s done: %s", c.campaign_id, counts)
            self._status_event(c)

    # ------------------------------------------------------------ calls
    def screen_pop(self, call: CallView) -> dict[str, Any] | None:
        if call.kind != KIND or "contact_id" not in call.flags:
            return None
        k = self.repo.contact(int(call.flags["contact_id"]))
        c = self.repo.campaign(int(call.flags.get("campaign_id", 0)))
        if k is None or c is None:
            return None
        return {"campaign_id": c.campaign_id, "campaign": c.name, "name": k.name,
                "note": k.note, "line": k.line, "attempt": k.attempts + 1}

    def event(self, event: dict[str, Any]) -> None:
        kind, call_id = event.get("type"), event.get("call_id")
        if kind == "agent.state":
            self.poke()
        elif call_id in self.live and kind in ("call.connected", "call.reached"):
            live = self.live[str(call_id)]
            live.reached = live.reached or kind == "call.reached"
            self.s.spawn(self._progressing(live, str(call_id), kind, event.get("advisor")))
        elif kind == "call.wrap_up" and call_id:
            self.s.spawn(self._wrap_up(str(call_id), event.get("data") or {}))

    async def _progressing(self, live: Live, call_id: str, kind: str,
                           advisor: str | None) -> None:
        k = self.repo.contact(live.contact_id)
        if k is None or k.call_id != call_id:
            return
        k.status, k.advisor, k.updated_at = "calling", advisor, self.s.now()
        if kind == "call.reached":
            k.last_reason = "reached"  # so a restart does not call them twice
        await self.repo.save_contact(k)
        self._progress_of(live.campaign_id)

    async def _wrap_up(self, call_id: str, data: dict[str, Any]) -> None:
        k = self.repo.by_call(call_id)
        if k is None:
            return
        k.wrap_up_code, k.wrap_up_note = str(data.get("code", "")), str(data.get("note", ""))
        if k.status == "reached" and k.wrap_up_code in self.cfg.wrong_number_codes:
            k.status = "wrong_number"
        k.updated_at = self.s.now()
        await self.repo.save_contact(k)
        self._progress_of(k.campaign_id)

    def ended(self, call: CallView) -> None:
        live = self.live.pop(call.call_id, None)
        if live is None:
            return
        self.s.spawn(self._attempt_ended(live, call))
        self.poke()

    async def _attempt_ended(self, live: Live, call: CallView) -> None:
        k = self.repo.contact(live.contact_id)
        c = self.repo.campaign(live.campaign_id)
        if k is None or c is None or k.call_id != call.call_id:
            return
        now, reason = self.s.now(), call.end_reason or ""
        if reason in ("shutdown", "cancelled"):  # not an attempt: due again
            k.status, k.due_at, k.updated_at = "scheduled", now, now
            await self.repo.save_contact(k)
            return
        reached = live.reached or call.reached_at is not None
        code = call.customer_end_code
        k.attempts += 1
        k.advisor, k.updated_at = call.advisor, now
        await self.repo.attempt(call.call_id, k.contact_id, call.advisor, now, reason, code,
                                reached)
        if reached:
            k.status, k.last_reason = "reached", "reached"
        elif code in self.cfg.wrong_number_statuses:
            k.status, k.last_reason = "wrong_number", f"no such number ({code})"
        else:
            k.last_reason = SIP_REASONS.get(code or 0, reason if code is None
                                            else f"{reason} ({code})")
            if k.attempts < self.cfg.max_attempts:
                window = window_of(c.window_start, c.window_end)
                k.status = "scheduled"
                k.due_at = next_call_time(now + self.cfg.retry_after_s, k.zone, window)
            else:
                k.status = "no_answer"
        await self.repo.save_contact(k)
        self.s.log.info("campaign %s: line %d %s after attempt %d (%s) call_id=%s",
                        c.campaign_id, k.line, k.status, k.attempts, k.last_reason,
                        call.call_id)
        self.s.metrics.inc("attempts", "Campaign calls that ended, by outcome.",
                           outcome=k.status)
        self.s.events.publish("campaign.attempt", {
            "campaign_id": c.campaign_id, "contact_id": k.contact_id, "line": k.line,
            "attempt": k.attempts, "status": k.status, "reason": k.last_reason or "",
            "retry_at": k.due_at if k.status == "scheduled" else None},
            call_id=call.call_id, advisor=call.advisor)
        self._progress(c)
        await self._maybe_done(c)

    # ------------------------------------------------------------ events
    def _status_event(self, c: Campaign) -> None:
        self.s.events.publish("campaign.status", {
            "campaign_id": c.campaign_id, "name": c.name, "status": c.status})
        self._progress(c)

    def _progress_of(self, campaign_id: int) -> None:
        c = self.repo.campaign(campaign_id)
        if c is not None:
            self._progress(c)

    def _progress(self, c: Campaign) -> None:
        self.s.events.publish("campaign.progress", {
            "campaign_id": c.campaign_id, "status": c.status,
            "counts": self.repo.counts(c.campaign_id)})

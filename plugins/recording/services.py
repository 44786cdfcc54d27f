"""The recording plugin's logic: the consent announcement while the caller waits
(the bridge to the advisor waits for it), a caller who declines, the recording
started once the caller and the advisor are bridged, its pauses by the advisor
(core: POST /api/v1/calls/{id}/recording) marked in the index, the index row
when the worker's file is final, and the retention purge.

Hooks are synchronous; store writes run in tasks (``services.spawn``). Every time
comes from ``services.now()``; files are written by the call's media worker under
the plugin's directory (the same host today: docs/plugins.md says how workers on
other hosts would hand them over).
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cti.core.views import CallView
from cti.plugins.api import ActionError, Services
from plugins.recording.schemas import RecordingSettings
from plugins.recording.storage import Recording, RecordingRepository

PURGE_T = "purge"
DAY_S = 86400.0


class Recordings:
    def __init__(self, services: Services, directory: Path) -> None:
        self.s = services
        self.cfg: RecordingSettings = services.settings
        self.directory = directory
        self.repo = RecordingRepository(services.store)
        #: Calls that heard the consent and may still decline (call id -> decline key).
        self.consenting: dict[str, str] = {}
        self.declined: set[str] = set()
        services.timers.on(PURGE_T, self._purge_due)

    async def start(self) -> None:
        """The directory (0700), rows of recordings a previous run did not finish
        (failed: the worker went with it), and the purge's timer."""
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        for rec in self.repo.in_progress():
            rec.status, rec.error = "failed", "the gateway stopped during the call"
            rec.updated_at = self.s.now()
            await self.repo.save(rec)
        await self.s.timers.schedule(PURGE_T, self.s.now() + self.cfg.purge_every_s, {},
                                     key=PURGE_T)

    # ------------------------------------------------------------ what is recorded
    def recorded(self, call: CallView) -> bool:
        """Whether this call is recorded (hotline, topic), consent aside."""
        if call.kind != "inbound":
            return False
        if self.cfg.hotlines and call.dialled not in self.cfg.hotlines:
            return False
        if call.topic in self.cfg.never_topics:
            return False
        return not self.cfg.topics or call.topic in self.cfg.topics

    def queued(self, call: CallView) -> None:
        """The caller waits: the consent announcement, which the bridge waits for."""
        if not self.recorded(call) or call.call_id in self.consenting:
            return
        try:
            self.s.calls.play(call.call_id, ["recording.consent"], before_bridge=True)
        except (ActionError, KeyError) as e:
            # No announcement, no recording: a call is never recorded unannounced.
            self.s.log.error("consent not announced, not recorded call_id=%s: %s",
                             call.call_id, e)
            return
        self.consenting[call.call_id] = self.cfg.decline_digit or ""

    def digit(self, call: CallView, digit: str) -> bool | None:
        key = self.consenting.get(call.call_id)
        if not key or digit != key or call.call_id in self.declined:
            return None
        self.declined.add(call.call_id)
        self.s.log.info("recording declined by the caller call_id=%s", call.call_id)
        self.s.calls.set_flag(call.call_id, "recording", "declined")  # in the call's record
        try:
            self.s.calls.play(call.call_id, ["recording.declined"])
        except (ActionError, KeyError) as e:
            self.s.log.warning("declined prompt not played call_id=%s: %s", call.call_id, e)
        self.s.spawn(self._declined(call))
        return True

    async def _declined(self, call: CallView) -> None:
        now = self.s.now()
        await self.repo.add(Recording(
            0, call.call_id, "declined", "declined", now, now, topic=call.topic,
            language=call.language, caller_number=call.caller_number, dialled=call.dialled,
            expires_at=now + self.retention_s(call.topic)))
        self.s.metrics.inc("declined", "Callers who declined the recording.")

    def retention_s(self, topic: str | None) -> float:
        days = self.cfg.retention_days
        return float(days.get(topic or "", days["default"])) * DAY_S

    # ------------------------------------------------------------ the recording
    def event(self, event: dict[str, Any]) -> None:
        kind, call_id = event.get("type"), event.get("call_id")
        if not call_id:
            return
        if kind == "call.bridged" and call_id in self.consenting \
                and call_id not in self.declined:
            self.s.spawn(self._start(str(call_id)))
        elif kind == "call.connected" and event.get("advisor"):
            self.s.spawn(self._advisor_joined(str(call_id), str(event["advisor"])))
        elif kind == "call.recording":
            data = event.get("data") or {}
            if data.get("state") in ("done", "failed"):
                self.s.spawn(self._finished(str(call_id), data))
            elif data.get("state") in ("paused", "resumed"):
                self.s.events.publish("recording.state", {
                    "state": data["state"], "by": data.get("by")}, call_id=str(call_id),
                    advisor=event.get("advisor"))

    def path_for(self, call: CallView) -> Path:
        day = datetime.fromtimestamp(self.s.now(), timezone.utc)
        return self.directory / day.strftime("%Y/%m/%d") / f"{call.call_id}.wav"

    async def _start(self, call_id: str) -> None:
        call = self.s.calls.get(call_id)
        if call is None:
            return
        path = self.path_for(call)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        now = self.s.now()
        rec = Recording(0, call_id, "recording", "announced", now, now,
                        advisors=[call.advisor] if call.advisor else [], topic=call.topic,
                        language=call.language, caller_number=call.caller_number,
                        dialled=call.dialled, path=str(path.relative_to(self.directory)),
                        expires_at=now + self.retention_s(call.topic))
        await self.repo.add(rec)  # before the worker writes: no file without its row
        try:
            await self.s.recorder.start(call_id, path)
        except (ActionError, KeyError) as e:
            rec.status, rec.error, rec.updated_at = "failed", str(e), self.s.now()
            await self.repo.save(rec)
            self.s.log.error("recording not started call_id=%s: %s", call_id, e)
            return
        self.s.events.publish("recording.state", {"state": "recording", "by": None},
                              call_id=call_id, advisor=call.advisor)

    async def _advisor_joined(self, call_id: str, advisor: str) -> None:
        """A recorded call transferred to another advisor: they are in the index too."""
        rec = self.repo.by_call(call_id)
        if rec is not None and rec.status == "recording" and advisor not in rec.advisors:
            rec.advisors.append(advisor)
            rec.updated_at = self.s.now()
            await self.repo.save(rec)

    async def _finished(self, call_id: str, data: dict[str, Any]) -> None:
        rec = self.repo.by_call(call_id)
        if rec is None:
            return
        now = self.s.now()
        if data["state"] == "failed":
            rec.status, rec.error, rec.updated_at = "failed", str(data.get("error")), now
            await self.repo.save(rec)
            self.s.metrics.inc("failed", "Recordings that could not be made.")
            return
        path = self.directory / (rec.path or "")
        try:  # the index says what the file is: checked, not taken on trust
            digest = _sha256(path)
            size = path.stat().st_size
        except OSError as e:
            rec.status, rec.error, rec.updated_at = "failed", f"file: {e}", now
            await self.repo.save(rec)
            self.s.log.error("recording file unreadable call_id=%s: %s", call_id, e)
            return
        if digest != data.get("sha256"):
            self.s.log.error("recording file differs from the worker's call_id=%s", call_id)
        rec.status, rec.sha256, rec.size = "done", digest, size
        rec.duration_s = float(data.get("duration_s") or 0)
        rec.paused = [[float(a), float(b)] for a, b in data.get("paused") or []]
        rec.updated_at = now
        await self.repo.save(rec)
        self.s.metrics.inc("done", "Recordings made.")
        self.s.events.publish("recording.done", {
            "recording_id": rec.recording_id, "path": str(path),
            "duration_s": rec.duration_s, "size": size, "sha256": digest,
            "paused": rec.paused}, call_id=call_id)

    def ended(self, call: CallView) -> None:
        self.consenting.pop(call.call_id, None)
        self.declined.discard(call.call_id)

    # ------------------------------------------------------------ retention
    async def _purge_due(self, timer_id: str, payload: dict[str, Any]) -> None:
        try:
            await self.purge()
        finally:
            await self.s.timers.schedule(PURGE_T, self.s.now() + self.cfg.purge_every_s,
                                         {}, key=PURGE_T)

    async def purge(self) -> int:
        """Delete the file and the row of every recording past its retention that is
        not held; each one audited. Returns how many."""
        done = 0
        for rec in self.repo.expired(self.s.now()):
            if rec.path:
                try:
                    (self.directory / rec.path).unlink(missing_ok=True)
                except OSError as e:
                    self.s.log.error("purge: cannot delete recording %s: %s",
                                     rec.recording_id, e)
                    continue  # its row stays: tried again at the next purge
            await self.repo.delete(rec.recording_id)
            await self.s.audit.record("recording.purge", None, {
                "recording_id": rec.recording_id, "call_id": rec.call_id,
                "expired_at": rec.expires_at, "status": rec.status})
            done += 1
        if done:
            self.s.log.info("purged %d recordings past their retention", done)
            self.s.metrics.inc("purged", "Recordings purged after their retention.", done)
        return done


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

"""Recordings of conversations: both voices of a call in one stereo file, made by
the call's media worker (docs/ipc.md "Stereo recordings") and asked for by plugins
(``services.recorder``; the recording plugin decides what is recorded and where).

A recording starts once the caller and the advisor are bridged and follows the
call until it ends (a leg that ends ends it, at the worker). Its states are on
the bus as ``call.recording`` (started, paused, resumed, done, failed), so the
advisor's desktop can show them; ``done`` carries the worker's ``record.done``
(path, duration, size, sha256, paused stretches). Every log line carries the call
id.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cti.controller.calls import Call, Leg
from cti.controller.context import FlowContext
from cti.controller.workers import WorkerCommandError
from cti.plugins.api import ActionError

log = logging.getLogger("cti.flow")


@dataclass
class Recording:
    rec_id: str
    call_id: str
    worker: str
    path: str
    advisor: str | None = None
    paused: bool = False
    stopping: bool = False


class CallRecorder:
    """Start, pause, resume and stop a call's recording; the worker's results."""

    def __init__(self, ctx: FlowContext) -> None:
        self.ctx = ctx
        self.by_call: dict[str, Recording] = {}
        self.by_rec: dict[str, Recording] = {}

    def _call(self, call_id: str) -> Call:
        call = self.ctx.calls.get(call_id)
        if call is None:
            raise KeyError(call_id)
        return call

    # ------------------------------------------------------------ actions
    async def start(self, call_id: str, path: Path) -> str:
        """Record the call's caller (left) and advisor (right) into ``path`` (absolute,
        on the worker's host); returns the recording's id."""
        call = self._call(call_id)
        leg = call.advisor_leg
        if call.state != "connected" or leg is None or leg.state != "confirmed":
            raise ActionError(f"record: the call is {call.state}, not talking to an advisor")
        if call_id in self.by_call:
            raise ActionError("record: the call is being recorded already")
        if not path.is_absolute():
            raise ActionError(f"record: {path} is not an absolute path")
        rec = Recording(uuid.uuid4().hex, call_id, call.worker, str(path), call.advisor)
        self.by_call[call_id], self.by_rec[rec.rec_id] = rec, rec
        link = self.ctx.pool.get(call.worker)
        try:
            if link is None or not link.up:
                raise WorkerCommandError("worker gone")
            await link.command("record_start", rec_id=rec.rec_id,
                               left_leg=call.customer.leg_id, right_leg=leg.leg_id,
                               path=str(path))
        except WorkerCommandError as e:
            self._forget(rec)
            log.warning("recording not started call_id=%s: %s", call_id, e)
            raise ActionError(f"record: {e}") from None
        log.info("recording started call_id=%s rec_id=%s path=%s", call_id, rec.rec_id, path)
        self._publish(rec, "started", {"path": str(path)})
        return rec.rec_id

    def state(self, call_id: str) -> str | None:
        """"recording", "paused", or None (not recorded now)."""
        rec = self.by_call.get(call_id)
        if rec is None or rec.stopping:
            return None
        return "paused" if rec.paused else "recording"

    def pause(self, call_id: str, by: str | None = None) -> None:
        self._toggle(call_id, True, by)

    def resume(self, call_id: str, by: str | None = None) -> None:
        self._toggle(call_id, False, by)

    def _toggle(self, call_id: str, pause: bool, by: str | None) -> None:
        rec = self.by_call.get(call_id)
        if rec is None or rec.stopping:
            raise ActionError("the call is not being recorded")
        if rec.paused == pause:
            return
        rec.paused = pause
        call = self._call(call_id)
        self.ctx.send_to(rec.worker, call, "record_pause" if pause else "record_resume",
                         rec_id=rec.rec_id)
        log.info("recording %s call_id=%s by=%s", "paused" if pause else "resumed",
                 call_id, by)
        self._publish(rec, "paused" if pause else "resumed", {"by": by})

    def leg_up(self, call: Call, leg: Leg) -> None:
        """A leg of a recorded call answered (a consulted party, a transfer's target,
        the next advisor): its voice joins the advisor's side, if on the same worker."""
        rec = self.by_call.get(call.call_id)
        if rec is None or rec.stopping or leg is call.customer:
            return
        if leg.role == "monitor":  # a supervisor listening in is heard by nobody (not
            return                 # recorded; whisper and barge are not recorded either)
        if leg.worker and leg.worker != rec.worker:
            log.warning("recording: leg on another worker not recorded call_id=%s leg=%s",
                        call.call_id, leg.leg_id)
            return
        self.ctx.send_to(rec.worker, call, "record_tap", rec_id=rec.rec_id, leg=leg.leg_id,
                         side="right")

    def stop(self, call: Call) -> None:
        """The call ends: the worker finishes the file (record.done follows)."""
        rec = self.by_call.get(call.call_id)
        if rec is None or rec.stopping:
            return
        rec.stopping = True
        self.ctx.send_to(rec.worker, call, "record_stop", rec_id=rec.rec_id)

    # ------------------------------------------------------------ the worker's results
    def on_worker_event(self, worker: str, msg: dict[str, Any]) -> bool:
        """record.done / record.failed: True if it was one of ours."""
        rec = self.by_rec.get(str(msg.get("rec_id")))
        if rec is None or msg.get("event") not in ("record.done", "record.failed"):
            return False
        self._forget(rec)
        if msg["event"] == "record.done":
            data = {k: msg.get(k) for k in ("path", "duration_s", "size", "sha256")}
            data["paused"] = [list(p) for p in msg.get("paused") or []]
            log.info("recording done call_id=%s duration=%ss size=%s", rec.call_id,
                     data["duration_s"], data["size"])
            self._publish(rec, "done", data)
        else:
            log.error("recording failed call_id=%s: %s", rec.call_id, msg.get("error"))
            self._publish(rec, "failed", {"path": rec.path,
                                          "error": str(msg.get("error") or "unknown")})
        return True

    def worker_down(self, worker: str) -> None:
        """A worker that died takes its recordings with it: failed, said once."""
        for rec in [r for r in self.by_rec.values() if r.worker == worker]:
            self._forget(rec)
            log.error("recording lost with its worker call_id=%s worker=%s", rec.call_id,
                      worker)
            self._publish(rec, "failed", {"path": rec.path, "error": "the media worker died"})

    def _forget(self, rec: Recording) -> None:
        self.by_rec.pop(rec.rec_id, None)
        if self.by_call.get(rec.call_id) is rec:
            self.by_call.pop(rec.call_id, None)

    def _publish(self, rec: Recording, state: str, data: dict[str, Any]) -> None:
        self.ctx.publish_id("call.recording", rec.call_id,
                            {"state": state, "rec_id": rec.rec_id, **data}, advisor=rec.advisor)

"""The settings of the callbacks plugin (``plugins.callbacks`` in the config) and
its API models."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cti.plugins.api import SettingError
from cti.plugins.calling import CallingWindowSettings, Clock, check_zone


class CallbacksSettings(CallingWindowSettings):
    """When a caller is offered a call back, the dialogue's pace, when and how
    often the call back is tried."""

    #: Offer a call back to a caller who has waited this long (seconds) ...
    offer_after_s: Annotated[float, Field(gt=0)] = 120
    #: ... and again every this many seconds while they wait (None: once).
    repeat_offer_s: Annotated[float, Field(gt=0)] | None = None
    #: Also offer it when a waiting call reaches an escalation step marked
    #: ``escalate`` (routing.escalation: the distributor finds the wait long).
    offer_on_escalation: bool = False
    #: Only callers of these topics (IVR topic codes; empty: every topic).
    topics: list[str] = []
    #: Seconds without a key before a question is asked again ...
    no_input_s: Annotated[float, Field(gt=0)] = 8
    #: ... and how often (no input or a wrong key) before the dialogue gives up
    #: (the caller keeps waiting).
    max_repeats: Annotated[int, Field(ge=0, le=5)] = 2
    #: Seconds from "we will call you back" to the end of the call (the prompt's length).
    hangup_after_s: Annotated[float, Field(ge=0)] = 4
    #: The calling window, in the callee's local time: [window_start, window_end)
    #: ("00:00" to "24:00": any time; "22:00" to "06:00": overnight).
    window_start: Clock = "08:00"
    window_end: Clock = "21:00"
    #: The local hour of the "tomorrow morning" slot (the prompt says nine).
    tomorrow_hour: Annotated[int, Field(ge=0, le=23)] = 9
    #: A customer who does not pick up is called again after retry_after_s, up to
    #: max_attempts attempts in all; then the request ends unreached.
    retry_after_s: Annotated[float, Field(ge=0)] = 900
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 3



def check_settings(cfg: CallbacksSettings, gateway: Any) -> None:
    """What the types cannot say: topics of the IVR, a real time zone."""
    topics = [t.code for t in gateway.ivr.topics]
    for topic in cfg.topics:
        if topic not in topics:
            raise SettingError("topics", f"{topic!r} is not an IVR topic "
                                         f"(expected some of {', '.join(topics)})")
    check_zone(cfg)


Status = Literal["scheduled", "queued", "connected", "unreached", "cancelled"]


class CallbackOut(BaseModel):
    callback_id: int
    number: str
    status: Status
    language: str
    topic: str
    priority: int
    enqueued_at: float
    requested_at: float
    due_at: float
    zone: str
    attempts: int
    call_id: str | None
    origin_call_id: str | None
    advisor: str | None
    updated_at: float


class CallbackStats(BaseModel):
    """GET /stats: the wallboard's counts ("today": since the gateway's local midnight)."""

    pending: int  # scheduled + queued
    scheduled: int  # waiting for their time (a later slot, a retry, the calling window)
    queued: int  # waiting for an advisor now
    connected_today: int
    unreached_today: int  # given up after every attempt
    cancelled_today: int
    next_due_at: float | None  # the earliest due time of the scheduled ones


class MoveIn(BaseModel):
    """POST /requests/{id}/move: put a pending call back just before another pending
    one (``before``), or after every other (``before`` null)."""

    model_config = ConfigDict(extra="forbid")

    before: int | None = None

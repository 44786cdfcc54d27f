"""The settings of the callbacks plugin (``plugins.callbacks`` in the config) and
its API models."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cti.plugins.api import PluginConfig, SettingError

Clock = Annotated[str, Field(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]


def minutes(hhmm: str) -> int:
    """"08:30" -> 510."""
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


class CallbacksSettings(PluginConfig):
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
    #: ("00:00" to "24:00": any time).
    window_start: Clock = "08:00"
    window_end: Clock = "21:00"
    #: The local hour of the "tomorrow morning" slot (the prompt says nine).
    tomorrow_hour: Annotated[int, Field(ge=0, le=23)] = 9
    #: A customer who does not pick up is called again after retry_after_s, up to
    #: max_attempts attempts in all; then the request ends unreached.
    retry_after_s: Annotated[float, Field(ge=0)] = 900
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 3
    #: The zone of a number that has none of its own (None: the IVR's opening-hours zone).
    default_zone: str | None = None

    @model_validator(mode="after")
    def _window(self) -> CallbacksSettings:
        if minutes(self.window_start) >= minutes(self.window_end):
            raise ValueError(f"window_end: {self.window_end!r} must be after window_start "
                             f"{self.window_start!r}")
        return self

    @property
    def window(self) -> tuple[int, int]:
        return minutes(self.window_start), minutes(self.window_end)


def check_settings(cfg: CallbacksSettings, gateway: Any) -> None:
    """What the types cannot say: topics of the IVR, a real time zone."""
    topics = [t.code for t in gateway.ivr.topics]
    for topic in cfg.topics:
        if topic not in topics:
            raise SettingError("topics", f"{topic!r} is not an IVR topic "
                                         f"(expected some of {', '.join(topics)})")
    if cfg.default_zone is not None:
        try:
            if not re.fullmatch(r"[A-Za-z0-9_+\-/]+", cfg.default_zone):
                raise ValueError(cfg.default_zone)
            ZoneInfo(cfg.default_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingError("default_zone", f"{cfg.default_zone!r} is not an IANA "
                                               "time zone") from None


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

"""The settings of the campaigns plugin (``plugins.campaigns`` in the config) and
its API models."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cti.plugins.api import SettingError
from cti.plugins.calling import CallingWindowSettings, Clock, check_zone


class CampaignsSettings(CallingWindowSettings):
    """How campaigns call: the window, retries, and how many advisors they may take."""

    #: The calling window in each callee's local time, [window_start, window_end)
    #: ("22:00" to "06:00" runs overnight); a campaign may bring its own.
    window_start: Clock = "09:00"
    window_end: Clock = "20:00"
    #: A number that does not answer (busy, no answer, failure) is called again after
    #: retry_after_s, up to max_attempts attempts; then it ends no_answer.
    retry_after_s: Annotated[float, Field(ge=0)] = 3600
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 3
    #: The share of working advisors (available, ringing, on a call or in wrap-up)
    #: campaigns may hold at once, all campaigns together; the rest stays for the
    #: inbound queues (0.25 of 40 advisors: 10 campaign calls at most).
    max_share: Annotated[float, Field(gt=0, le=1)] = 0.25
    #: The priority of a campaign's calls in the distributor: below every caller
    #: (callers start at 0 and gain routing.aging_per_minute each minute).
    priority: Annotated[int, Field(ge=-10000, le=10000)] = -1000
    #: How often (seconds) the dialer looks for numbers that are due, besides
    #: reacting at once to a call that ends or an advisor who becomes free.
    pace_s: Annotated[float, Field(gt=0, le=60)] = 5
    #: Wrap-up codes (config wrap_up.codes) that mark a reached number as wrong.
    wrong_number_codes: list[str] = ["wrong_number"]
    #: SIP statuses of a callee's leg that mean the number does not exist: no retry.
    wrong_number_statuses: list[int] = [404, 410, 484, 604]
    #: The largest upload, in rows.
    max_contacts: Annotated[int, Field(ge=1, le=1_000_000)] = 20_000



def check_settings(cfg: CampaignsSettings, gateway: Any) -> None:
    """What the types cannot say: wrap-up codes of the config, a real time zone."""
    codes = [c.code for c in gateway.wrap_up.codes]
    for code in cfg.wrong_number_codes:
        if code not in codes:
            raise SettingError("wrong_number_codes", f"{code!r} is not a wrap-up code "
                                                     f"(expected some of {', '.join(codes)})")
    check_zone(cfg)


CampaignStatus = Literal["importing", "running", "paused", "stopped", "done", "failed"]
#: A contact: scheduled (waiting for its time or its window), queued (waiting for an
#: advisor), calling (an advisor has it), then one of the outcomes.
ContactStatus = Literal["scheduled", "queued", "calling", "reached", "no_answer",
                        "wrong_number", "cancelled"]
OUTCOMES = ("reached", "no_answer", "wrong_number", "cancelled")


class CampaignIn(BaseModel):
    """POST /campaigns: a campaign from a CSV (header: number, name, language, note;
    only number is required)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=80)]
    #: The IVR topic whose skill the advisors need.
    topic: str
    #: The language of rows without one (None: the IVR's default language).
    language: str | None = None
    #: The campaign's own calling window (None: the plugin's).
    window_start: Clock | None = None
    window_end: Clock | None = None
    csv: Annotated[str, Field(min_length=1, max_length=20_000_000)]
    #: Start calling at once (False: paused until resumed).
    start: bool = True


class Counts(BaseModel):
    total: int
    scheduled: int
    queued: int
    calling: int
    reached: int
    no_answer: int
    wrong_number: int
    cancelled: int
    retrying: int  # scheduled again after an attempt that did not reach the callee


class CampaignOut(BaseModel):
    campaign_id: int
    name: str
    topic: str
    language: str
    status: CampaignStatus
    window_start: str
    window_end: str
    created_by: str | None
    created_at: float
    updated_at: float
    counts: Counts


class ContactOut(BaseModel):
    contact_id: int
    campaign_id: int
    line: int
    number: str
    name: str
    language: str
    note: str
    zone: str
    status: ContactStatus
    attempts: int
    due_at: float
    call_id: str | None
    advisor: str | None
    last_reason: str | None
    wrap_up_code: str | None
    wrap_up_note: str | None
    updated_at: float

"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class LoginResponse(BaseModel):
    token: str
    user: str
    role: str
    expires_in: int


class StateRequest(Strict):
    state: Literal["available", "away", "logged_out"]
    reason: str | None = Field(None, max_length=64)


class AgentView(BaseModel):
    name: str
    display_name: str | None
    role: str
    state: str | None  # None for supervisors and admins (they take no calls)
    languages: dict[str, int]
    topics: dict[str, int]
    trainings: dict[str, date | None]  # training -> expiry date


Level = Annotated[int, Field(ge=1, le=5)]


class SkillsRequest(Strict):
    """An advisor's skills, replaced as a whole (levels 1-5, trainings with expiry)."""

    languages: dict[str, Level] = Field(min_length=1)
    topics: dict[str, Level] = Field(min_length=1)
    trainings: dict[str, date | None] = {}


class FlagRequest(Strict):
    """A gateway-wide IVR flag switched on or off (PUT /api/v1/ivr/flags/{name})."""

    value: bool


class HoldRequest(Strict):
    on: bool


class RecordingRequest(Strict):
    """Pause (true) or resume (false) the call's recording."""

    paused: bool


class RecordingState(BaseModel):
    state: str = Field(description='"recording" or "paused"')


class TransferRequest(Strict):
    """Blind: the call goes on at once; consult: the advisor talks to the target first."""

    kind: Literal["blind", "consult"]
    target_type: Literal["queue", "advisor", "external"]
    # queue: a topic code; advisor: an advisor's name; external: a directory key
    target: str = Field(min_length=1, max_length=64)


class WrapUpRequest(Strict):
    code: str = Field(min_length=1, max_length=64)
    note: str = Field("", max_length=2000)


class DirectoryItem(BaseModel):
    key: str
    name: str
    number: str | None
    country: str | None


class WrapUpCodeItem(BaseModel):
    code: str
    label: str

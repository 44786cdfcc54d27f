"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from cti.api.limits import TEXT_CONTROLS, find_surrogate, text_problem


def _name(v: str) -> str:
    problem = text_problem(v)
    if problem:
        raise ValueError(problem)
    return v


def _text(v: str) -> str:
    problem = text_problem(v, TEXT_CONTROLS)
    if problem:
        raise ValueError(problem)
    return v


#: One line: a user name, a code, a key (no control characters, no lone surrogates).
Name = Annotated[str, AfterValidator(_name)]
#: Free text (a note): tabs and line breaks allowed.
Text = Annotated[str, AfterValidator(_text)]
#: A skill, training or flag name (checked against the config's vocabulary).
Key = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_name)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_surrogates(cls, data: Any) -> Any:
        where = find_surrogate(data)
        if where is not None:
            raise ValueError(f"{'.'.join(map(str, where)) or 'body'}: contains a lone "
                             "surrogate (not valid Unicode)")
        return data


class LoginRequest(Strict):
    username: Name = Field(min_length=1, max_length=64)
    password: Text = Field(min_length=1, max_length=256)


class LoginResponse(BaseModel):
    token: str
    user: str
    role: str
    expires_in: int


class StateRequest(Strict):
    state: Literal["available", "away", "logged_out"]
    reason: Name | None = Field(None, max_length=64)


class AgentView(BaseModel):
    name: str
    display_name: str | None
    role: str
    state: str | None  # None for supervisors and admins (they take no calls)
    languages: dict[str, int]
    topics: dict[str, int]
    trainings: dict[str, date | None]  # training -> expiry date
    # While in wrap-up: when it ends at the latest (unix time) and for which call.
    wrap_until: float | None = None
    wrap_call: str | None = None


Level = Annotated[int, Field(ge=1, le=5)]


class SkillsRequest(Strict):
    """An advisor's skills, replaced as a whole (levels 1-5, trainings with expiry)."""

    languages: dict[Key, Level] = Field(min_length=1, max_length=64)
    topics: dict[Key, Level] = Field(min_length=1, max_length=64)
    trainings: dict[Key, date | None] = Field({}, max_length=64)


class FlagRequest(Strict):
    """A gateway-wide IVR flag switched on or off (PUT /api/v1/ivr/flags/{name})."""

    value: bool


class MonitorRequest(Strict):
    """listen: hear the caller and the advisor, unheard; whisper: the advisor hears
    you too; barge: the caller hears you too."""

    mode: Literal["listen", "whisper", "barge"] = "listen"


class MonitorState(BaseModel):
    mode: str
    state: str  # ringing (your phone rings) | active


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
    target: Name = Field(min_length=1, max_length=64)


class WrapUpRequest(Strict):
    code: Name = Field(min_length=1, max_length=64)
    note: Text = Field("", max_length=2000)
    #: The call was distressing: a recovery break before the next offer.
    distressing: bool = False


class RecoveryRequest(Strict):
    """A supervisor grants an advisor a recovery break (now, or after their call)."""

    minutes: int = Field(10, ge=1, le=60)


class DirectoryItem(BaseModel):
    key: str
    name: str
    number: str | None
    country: str | None


class WrapUpCodeItem(BaseModel):
    code: str
    label: str


Role = Literal["advisor", "supervisor", "admin", "coach"]
#: A password as typed (hashed at once; never stored, logged or audited).
Password = Annotated[str, Field(min_length=10, max_length=256)]


class AdvisorCreate(Strict):
    """A new advisor (or supervisor, coach, admin). Languages and topics are the
    IVR's codes, trainings those the config names; an advisor needs one of each."""

    name: Annotated[Name, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
    display_name: Annotated[Name, Field(max_length=100)] | None = None
    role: Role = "advisor"
    password: Password
    languages: dict[Key, Level] = Field({}, max_length=64)
    topics: dict[Key, Level] = Field({}, max_length=64)
    trainings: dict[Key, date | None] = Field({}, max_length=64)


class AdvisorChange(Strict):
    """What changes (what is left out stays); skills replace the old ones each."""

    display_name: Annotated[Name, Field(max_length=100)] | None = None
    role: Role | None = None
    password: Password | None = None
    languages: dict[Key, Level] | None = Field(None, max_length=64)
    topics: dict[Key, Level] | None = Field(None, max_length=64)
    trainings: dict[Key, date | None] | None = Field(None, max_length=64)


class AdminAdvisorView(BaseModel):
    """An advisor as the admin sees them (never a hash)."""

    name: str
    display_name: str | None
    role: str
    languages: dict[str, int]
    topics: dict[str, int]
    trainings: dict[str, date | None]
    state: str | None  # None: takes no calls

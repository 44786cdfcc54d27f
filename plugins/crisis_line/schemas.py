"""The crisis line's settings (``plugins.crisis_line`` in the config) and API models."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from cti.plugins.api import PluginConfig, SettingError

Text = Annotated[str, Field(min_length=1, max_length=500)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class CrisisLineSettings(PluginConfig):
    """Defaults of every crisis; a supervisor may override most when starting one."""

    #: The menu of the IVR that gets the crisis option, and its key.
    menu: str = "topic"
    digit: Annotated[str, Field(pattern=r"^[0-9*#]$")] = "5"
    #: The queue (IVR topic) crisis callers wait in.
    topic: str = "emergency"
    priority: Annotated[int, Field(ge=0, le=1000)] = 50
    #: The training crisis calls require ("" for none).
    training: str = "crisis"
    #: Advisors who take crisis calls while a crisis lasts, even without the skills,
    #: when no trained advisor is free: named, and/or everyone with a training.
    reserve: list[Name] = []
    reserve_training: str | None = None
    #: Overflow to the crisis team (a directory key): a crisis caller waiting longer
    #: than overflow_after_s, or beyond overflow_waiting crisis callers waiting.
    team: str = "crisis_team"
    overflow_after_s: Annotated[float, Field(gt=0)] = 60
    overflow_waiting: Annotated[int, Field(ge=1)] = 10
    #: Texts when a supervisor gives none; {name} is the crisis's name.
    announcement: dict[str, Text] = {
        "en": "Because of {name}, it is very busy. Please stay on the line.",
        "nl": "Door {name} is het erg druk. Blijft u aan de lijn.",
    }
    option: dict[str, Text] = {
        "en": "For the situation of {name}, press {digit}.",
        "nl": "Voor de situatie rond {name}, toets {digit}.",
    }


class CrisisStart(BaseModel):
    """POST /api/v1/plugins/crisis_line/crises: start a crisis."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=120)]
    #: Hotline numbers it applies to (default: every hotline).
    numbers: list[str] = []
    #: A number dedicated to the crisis: its callers are crisis callers from the start.
    dedicated_number: str | None = None
    announcement: dict[str, Text] | None = None
    option: dict[str, Text] | None = None
    priority: Annotated[int, Field(ge=0, le=1000)] | None = None
    training: str | None = None
    reserve: list[Name] | None = None
    reserve_training: str | None = None
    overflow_after_s: Annotated[float, Field(gt=0)] | None = None
    overflow_waiting: Annotated[int, Field(ge=1)] | None = None
    team: str | None = None


class CrisisOut(BaseModel):
    crisis_id: int
    name: str
    active: bool
    numbers: list[str]
    dedicated_number: str | None
    priority: int
    training: str
    reserve: list[str]
    team: str
    overflow_after_s: float
    overflow_waiting: int
    started_at: float
    started_by: str | None
    ended_at: float | None
    ended_by: str | None
    waiting: int
    answered: int
    overflowed: int


def check_settings(cfg: CrisisLineSettings, gateway: Any) -> None:
    """What the types cannot say: the names must exist in the rest of the config."""
    topics = [t.code for t in gateway.ivr.topics]
    if cfg.topic not in topics:
        raise SettingError("topic", f"{cfg.topic!r} is not an IVR topic "
                                    f"(expected one of {', '.join(topics)})")
    keys = [d.key for d in gateway.directory]
    if cfg.team not in keys:
        raise SettingError("team", f"{cfg.team!r} is not a directory key "
                                   f"(expected one of {', '.join(keys) or 'none'})")
    advisors = [a.name for a in gateway.advisors]
    for name in cfg.reserve:
        if name not in advisors:
            raise SettingError("reserve", f"{name!r} is not an advisor "
                                          f"(expected some of {', '.join(advisors)})")
    languages = {m.code for m in gateway.ivr.languages}
    for key, texts in (("announcement", cfg.announcement), ("option", cfg.option)):
        unknown = sorted(set(texts) - languages)
        if unknown:
            raise SettingError(key, f"{unknown[0]!r} is not an IVR language "
                                    f"(expected some of {', '.join(sorted(languages))})")
    taken = {m.digit for m in gateway.ivr.topics} if cfg.menu == "topic" else set()
    if cfg.digit in taken:
        raise SettingError("digit", f"{cfg.digit!r} is already a topic of the menu "
                                    f"{cfg.menu!r}")

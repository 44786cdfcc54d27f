"""The IVR's configuration (``ivr:`` and ``prompts:`` in the config): menus,
opening hours, announcements and per-number flows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from cti.config_base import ConfigModel
from cti.ivr.hours import Day, parse_spans


class MenuEntry(ConfigModel):
    digit: str = Field(pattern=r"^[0-9*#]$")
    code: str
    name: str


class OpeningHours(ConfigModel):
    timezone: str = "Europe/Amsterdam"
    # Per day "HH:MM-HH:MM[, ...]"; a day left out is closed.
    days: dict[Day, str]

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (e.g. Europe/Amsterdam)") from None
        return v

    @field_validator("days")
    @classmethod
    def _spans(cls, v: dict[Day, str]) -> dict[Day, str]:
        for day, text in v.items():
            try:
                parse_spans(text)
            except ValueError as e:
                raise ValueError(f"{day}: {e}") from None
        return v


class IvrSettings(ConfigModel):
    default_language: str = "en"
    default_topic: str = "travel_advice"
    digit_timeout_s: float = Field(6.0, gt=0)
    max_retries: int = Field(2, ge=0, le=10)
    # A caller who has pressed no key yet: silences a menu allows before its
    # default (null: max_retries), and whether the later menus are then skipped
    # with their defaults (the silent caller reaches the queue sooner).
    silent_retries: int | None = Field(None, ge=0, le=10)
    silent_skips_menus: bool = False
    emergency_topics: list[str] = ["emergency"]
    # None: open 24/7. Outside the hours callers hear the "closed" prompt.
    opening_hours: OpeningHours | None = None
    # A prompt key played to every caller after the welcome (a crisis message).
    notice: str | None = None
    # Position and expected-wait announcements while a caller waits (0: never).
    announce_first_s: float = Field(15.0, ge=0)
    announce_every_s: float = Field(45.0, ge=0)
    languages: list[MenuEntry] = Field(min_length=1)
    topics: list[MenuEntry] = Field(min_length=1)
    # ISO country (from the caller's number) -> language offered first.
    country_languages: dict[str, str] = {}
    # Gateway-wide flags flows can branch on (e.g. crisis: true); supervisors
    # switch them at run time through the API.
    flags: dict[str, bool] = {}
    # Flows per dialled number (see cti/ivr/parse.py); a hotline without one runs
    # the standard flow: opening hours, language menu, topic menu, queue.
    flows: dict[str, dict[str, Any]] = {}

    @model_validator(mode="after")
    def _defaults_exist(self) -> IvrSettings:
        langs = sorted({m.code for m in self.languages})
        topics = sorted({m.code for m in self.topics})
        if self.default_language not in langs:
            raise ValueError(f"default_language: {self.default_language!r} is not in languages "
                             f"(expected one of {', '.join(langs)})")
        if self.default_topic not in topics:
            raise ValueError(f"default_topic: {self.default_topic!r} is not in topics "
                             f"(expected one of {', '.join(topics)})")
        for country, lang in self.country_languages.items():
            if lang not in langs:
                raise ValueError(f"country_languages.{country}: {lang!r} is not in languages "
                                 f"(expected one of {', '.join(langs)})")
        return self


class PromptSettings(ConfigModel):
    texts: Path = Path("prompts.yaml")
    cache_dir: Path = Path("../var/prompts")
    override_dir: Path = Path("prompts")


"""The gateway's configuration: pydantic models, loading, and one-line errors.

A bad file stops `cti serve` before anything starts, with one line that names the
file, the key and what was expected (ConfigError's message).
"""

from __future__ import annotations

import difflib
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")


class ConfigError(Exception):
    """A configuration problem; str() is the one line shown to the admin."""


class _Model(BaseModel):
    # extra="forbid": a typo in a key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid", frozen=True)


class SipSettings(_Model):
    ip: str = "127.0.0.1"
    port: int = Field(5060, ge=1, le=65535)
    realm: str = "cti.local"
    hotlines: list[str] = Field(min_length=1)


class WorkerSettings(_Model):
    count: int = Field(2, ge=1, le=256)
    ip: str = "127.0.0.1"
    sip_port_base: int = Field(5071, ge=1, le=65000)
    rtp_port_base: int = Field(20000, ge=1024, le=64000)
    rtp_ports_per_worker: int = Field(40, ge=8, le=1000)
    restart_delay_s: float = Field(0.2, ge=0)


class HttpSettings(_Model):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    token_ttl_s: int = Field(12 * 3600, ge=60)


class MenuEntry(_Model):
    digit: str = Field(pattern=r"^[0-9*#]$")
    code: str
    name: str


class IvrSettings(_Model):
    default_language: str = "en"
    default_topic: str = "travel_advice"
    digit_timeout_s: float = Field(6.0, gt=0)
    max_retries: int = Field(2, ge=0, le=10)
    emergency_topics: list[str] = ["emergency"]
    languages: list[MenuEntry] = Field(min_length=1)
    topics: list[MenuEntry] = Field(min_length=1)
    # ISO country (from the caller's number) -> language offered first.
    country_languages: dict[str, str] = {}

    @model_validator(mode="after")
    def _defaults_exist(self) -> IvrSettings:
        langs = {m.code for m in self.languages}
        if self.default_language not in langs:
            raise ValueError(f"default_language {self.default_language!r} is not in languages")
        if self.default_topic not in {m.code for m in self.topics}:
            raise ValueError(f"default_topic {self.default_topic!r} is not in topics")
        for country, lang in self.country_languages.items():
            if lang not in langs:
                raise ValueError(f"country_languages.{country}: {lang!r} is not in languages")
        return self


class PromptSettings(_Model):
    texts: Path = Path("prompts.yaml")
    cache_dir: Path = Path("../var/prompts")
    override_dir: Path = Path("prompts")


class EscalationStepSettings(_Model):
    after_s: float = Field(ge=0)
    min_language: int = Field(ge=1, le=5)
    min_topic: int = Field(ge=0, le=5)  # 0: any advisor with the language
    escalate: bool = False


def _default_escalation() -> dict[str, list[EscalationStepSettings]]:
    return {"default": [
        EscalationStepSettings(after_s=0, min_language=3, min_topic=3),
        EscalationStepSettings(after_s=30, min_language=2, min_topic=1),
        EscalationStepSettings(after_s=90, min_language=1, min_topic=0, escalate=True),
    ]}


class RoutingSettings(_Model):
    strategy: Literal["best_match", "longest_idle", "least_talk_time", "round_robin"] = (
        "best_match")
    offer_timeout_s: float = Field(20.0, gt=0)
    # Seconds of wrap-up after a call: one number, or per topic with a "default".
    wrap_up_s: float | dict[str, float] = 0.0
    max_missed: int = Field(1, ge=1)
    aging_per_minute: float = Field(1.0, ge=0)  # priority points a call gains per minute
    escalation: dict[str, list[EscalationStepSettings]] = Field(
        default_factory=_default_escalation)

    @field_validator("escalation")
    @classmethod
    def _steps_ordered(
        cls, v: dict[str, list[EscalationStepSettings]],
    ) -> dict[str, list[EscalationStepSettings]]:
        if "default" not in v:
            raise ValueError("expected a 'default' list of steps")
        for topic, steps in v.items():
            if not steps or steps[0].after_s != 0:
                raise ValueError(f"{topic}: the first step must have after_s 0")
            if any(a.after_s >= b.after_s for a, b in zip(steps, steps[1:], strict=False)):
                raise ValueError(f"{topic}: steps must have increasing after_s")
        return v

    @field_validator("wrap_up_s")
    @classmethod
    def _wrap_up(cls, v: float | dict[str, float]) -> float | dict[str, float]:
        values = v.values() if isinstance(v, dict) else [v]
        if any(x < 0 for x in values):
            raise ValueError("expected seconds >= 0")
        return v


Level = Annotated[int, Field(ge=1, le=5)]


class AdvisorSettings(_Model):
    name: str
    password: str = Field(min_length=4)
    display_name: str | None = None
    # Skills with a level 1-5 ({es: 5, en: 3}); a plain list means level 3.
    languages: dict[str, Level] = {}
    topics: dict[str, Level] = {}
    # Completed trainings with their expiry date ({crisis: 2027-06-30}); a plain
    # list, or no date, means no expiry.
    trainings: dict[str, date | None] = {}
    role: Literal["advisor", "supervisor", "admin"] = "advisor"

    @field_validator("languages", "topics", "trainings", mode="before")
    @classmethod
    def _list_to_levels(cls, v: Any, info: ValidationInfo) -> Any:
        if isinstance(v, list):
            filler = None if info.field_name == "trainings" else 3
            return {str(x): filler for x in v}
        return v

    @model_validator(mode="after")
    def _advisors_have_skills(self) -> AdvisorSettings:
        if self.role == "advisor" and not (self.languages and self.topics):
            raise ValueError("an advisor needs at least one language and one topic")
        return self

    @field_validator("name")
    @classmethod
    def _sip_safe(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError("expected letters, digits, '.', '_' or '-' (it is a SIP user name)")
        return v


class StoreSettings(_Model):
    path: Path = Path("../var/cti.sqlite3")


class Settings(_Model):
    gateway_name: str = "cti"
    runtime_dir: Path = Path("../var/run")
    sip: SipSettings
    workers: WorkerSettings = WorkerSettings()
    http: HttpSettings = HttpSettings()
    ivr: IvrSettings
    prompts: PromptSettings = PromptSettings()
    routing: RoutingSettings = RoutingSettings()
    advisors: list[AdvisorSettings] = Field(min_length=1)
    plugins: list[str] = []
    store: StoreSettings = StoreSettings()
    # Where the file was read from; relative paths are relative to its folder.
    source: Path = Field(Path("."), exclude=True)

    @model_validator(mode="after")
    def _unique_advisors(self) -> Settings:
        seen: set[str] = set()
        for a in self.advisors:
            if a.name in seen:
                raise ValueError(f"advisor {a.name!r} is listed twice")
            seen.add(a.name)
        return self

    def path(self, p: Path) -> Path:
        """Resolve a path from the config against the config file's folder."""
        return p if p.is_absolute() else (self.source.parent / p).resolve()

    def advisor(self, name: str) -> AdvisorSettings | None:
        return next((a for a in self.advisors if a.name == name), None)


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed at the place a loc points into (for 'did you mean')."""
    model: Any = Settings
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        model = next((a for a in (ann, *args) if isinstance(a, type)
                      and issubclass(a, BaseModel)), None)
        if model is None:
            return []
    return [k for k in model.model_fields if k != "source"]


def _describe_error(err: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(err["loc"][-1]), _known_keys(err["loc"][:-1]), 1)
        msg = f"unknown key (did you mean {close[0]!r}?)" if close else "unknown key"
    elif err["type"] == "missing":
        msg = "required key is missing"
    inp = err.get("input")
    got = "" if err["type"] in ("missing", "extra_forbidden") else f" (got {inp!r:.60})"
    return f"{loc}: {msg}{got}"


def parse_settings(data: Any, source: Path) -> Settings:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of settings at the top level")
    try:
        return Settings.model_validate({**data, "source": source.resolve()})
    except ValidationError as e:
        # A typo shows as an unknown key plus a missing one: name the typo first.
        errors = sorted(e.errors(), key=lambda x: x["type"] != "extra_forbidden")
        first = errors[0]
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        raise ConfigError(f"{source}: {_describe_error(first)}{more}") from None


def load_settings(path: Path) -> Settings:
    """Read and validate a YAML config file; raise ConfigError with one clear line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: not valid YAML: {getattr(e, 'problem', e)}") from None
    return parse_settings(data, path)

"""The gateway's configuration: pydantic models, loading, and one-line errors.

A bad file stops `cti serve` before anything starts, with one line that names the
file, the key and what was expected (ConfigError's message).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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


class RoutingSettings(_Model):
    offer_timeout_s: float = Field(20.0, gt=0)
    wrap_up_s: float = Field(0.0, ge=0)
    max_missed: int = Field(1, ge=1)


class AdvisorSettings(_Model):
    name: str
    password: str = Field(min_length=4)
    display_name: str | None = None
    languages: list[str] = Field(min_length=1)
    topics: list[str] = Field(min_length=1)
    trainings: list[str] = []
    role: Literal["advisor", "supervisor", "admin"] = "advisor"

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

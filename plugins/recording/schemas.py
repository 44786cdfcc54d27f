"""The settings of the recording plugin (``plugins.recording`` in the config) and
its API models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from cti.plugins.api import PluginConfig, SettingError, unusable_dir


class RecordingSettings(PluginConfig):
    """What is recorded, where, for how long."""

    #: Where the files go (relative to the config file's folder); mode 0700, files 0600.
    directory: str = "../var/recordings"
    #: Dialled hotlines whose calls are recorded (empty: every hotline).
    hotlines: list[str] = []
    #: Topics recorded (empty: every topic) and topics never recorded (emergencies).
    topics: list[str] = []
    never_topics: list[str] = []
    #: The key a caller presses during the consent announcement to decline (None: no
    #: way to decline; the announcement only informs).
    decline_digit: Annotated[str, Field(pattern=r"^[0-9*#]$")] | None = "9"
    #: Days a recording is kept, per topic ("default" for the others).
    retention_days: dict[str, Annotated[float, Field(gt=0)]] = {"default": 30}
    #: How often (seconds) expired recordings are purged.
    purge_every_s: Annotated[float, Field(gt=0)] = 3600


def check_settings(cfg: RecordingSettings, gateway: Any) -> None:
    """Topics and hotlines of the config; a retention for every other topic."""
    topics = [t.code for t in gateway.ivr.topics]
    for key in ("topics", "never_topics"):
        for topic in getattr(cfg, key):
            if topic not in topics:
                raise SettingError(key, f"{topic!r} is not an IVR topic "
                                        f"(expected some of {', '.join(topics)})")
    for topic in cfg.retention_days:
        if topic != "default" and topic not in topics:
            raise SettingError("retention_days", f"{topic!r} is not an IVR topic")
    if "default" not in cfg.retention_days:
        raise SettingError("retention_days", "a 'default' retention is needed")
    for number in cfg.hotlines:
        if number not in gateway.sip.hotlines:
            raise SettingError("hotlines", f"{number!r} is not one of sip.hotlines")
    directory = gateway.path(Path(cfg.directory))
    problem = unusable_dir(directory)
    if problem:
        raise SettingError("directory", f"{directory}: {problem}")


class RecordingOut(BaseModel):
    recording_id: int
    call_id: str
    status: str
    consent: str
    advisors: list[str]
    topic: str | None
    language: str | None
    caller_number: str
    dialled: str
    started_at: float
    duration_s: float | None
    size: int | None
    sha256: str | None
    paused: list[list[float]]
    held: bool
    held_reason: str | None
    expires_at: float | None
    error: str | None


class HoldIn(BaseModel):
    """POST /recordings/{id}/hold: keep it past its retention (a complaint), or not."""

    model_config = ConfigDict(extra="forbid")

    held: bool
    reason: Annotated[str, Field(max_length=500)] = ""


class AudioLinkOut(BaseModel):
    """POST /recordings/{id}/audio-link: a URL an <audio> element can play (and seek
    with Range) without an Authorization header; one recording, a few minutes."""

    url: str
    expires_at: float

"""The guides plugin's settings (``plugins.guides`` in the config) and API models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cti.plugins.api import PluginConfig, SettingError

#: A guide is read during a call: a screen, not a manual.
MAX_GUIDE_CHARS = 8000
Code = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class GuidesSettings(PluginConfig):
    """Where the guides are, and the language shown when a topic has none in the
    caller's."""

    #: Files <topic>.<language>.md (relative to the config file's folder); the seed:
    #: supervisors' edits through the API are stored and win over the files.
    directory: str = "guides"
    fallback_language: str | None = "en"


def check_settings(cfg: GuidesSettings, gateway: Any) -> None:
    """Every file names a known topic and language and is a short text."""
    languages = [m.code for m in gateway.ivr.languages]
    if cfg.fallback_language is not None and cfg.fallback_language not in languages:
        raise SettingError("fallback_language", f"{cfg.fallback_language!r} is not an IVR "
                                                f"language (expected one of {', '.join(languages)})")
    directory = gateway.path(Path(cfg.directory))
    if not directory.is_dir():
        raise SettingError("directory", f"{directory} is not a directory")
    try:
        guide_files(directory, [t.code for t in gateway.ivr.topics], languages)
    except ValueError as e:
        raise SettingError("directory", str(e)) from None


def guide_files(directory: Path, topics: list[str], languages: list[str],
                ) -> dict[tuple[str, str], str]:
    """(topic, language) -> Markdown of every <topic>.<language>.md in the folder;
    ValueError naming the file that is not one (unknown topic or language, too long,
    not UTF-8)."""
    out: dict[tuple[str, str], str] = {}
    for path in sorted(directory.glob("*.md")):
        topic, _, language = path.stem.rpartition(".")
        if topic not in topics:
            raise ValueError(f"{path.name}: {topic!r} is not an IVR topic "
                             f"(expected <topic>.<language>.md, topics: {', '.join(topics)})")
        if language not in languages:
            raise ValueError(f"{path.name}: {language!r} is not an IVR language "
                             f"(languages: {', '.join(languages)})")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{path.name}: not UTF-8 text") from None
        if len(text) > MAX_GUIDE_CHARS:
            raise ValueError(f"{path.name}: {len(text)} characters, at most {MAX_GUIDE_CHARS}")
        out[(topic, language)] = text
    return out


class GuideEdit(BaseModel):
    """PUT /api/v1/plugins/guides/guides/{topic}/{language}: the new text."""

    model_config = ConfigDict(extra="forbid")

    markdown: Annotated[str, Field(min_length=1, max_length=MAX_GUIDE_CHARS)]

    @field_validator("markdown")
    @classmethod
    def _printable(cls, v: str) -> str:
        bad = [c for c in v if (ord(c) < 32 and c not in "\n\t\r") or 0xD800 <= ord(c) <= 0xDFFF]
        if bad:
            raise ValueError(f"control character U+{ord(bad[0]):04X} in the guide")
        return v


class GuideOut(BaseModel):
    topic: str
    language: str
    markdown: str
    #: "file" (the seed in the guides folder) or "edited" (through the API, stored).
    source: str
    updated_at: float | None
    updated_by: str | None

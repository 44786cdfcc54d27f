"""The settings (``plugins.hello`` in the config) and the API models."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from cti.plugins.api import PluginConfig


def normalize(number: str) -> str:
    """A caller number as the gateway sees it: '0031…' and '+31…' are the same."""
    number = number.strip().replace(" ", "")
    return "+" + number[2:] if number.startswith("00") else number


Number = Annotated[str, Field(pattern=r"^(\+|00)?[0-9 ]{3,20}$"), AfterValidator(normalize)]


class HelloSettings(PluginConfig):
    #: Callers treated as VIPs (more can be added with POST /vips).
    vip_numbers: list[Number] = []
    #: The least queue priority of a VIP call (normal calls are 0; higher is served first).
    priority: Annotated[int, Field(ge=0, le=1000)] = 40


class VipIn(BaseModel):
    """POST /api/v1/plugins/hello/vips."""

    model_config = ConfigDict(extra="forbid")

    number: Number


class VipOut(BaseModel):
    number: str
    calls_today: int
    added_by: str | None  # None: from the config

"""Settings shared by plugins that call customers out (call backs, campaigns): the
calling window in the callee's local time and the zone of numbers without one."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from cti.core.calling import CLOCK_PATTERN, Window, is_zone, window_of
from cti.plugins.api import PluginConfig, SettingError

Clock = Annotated[str, Field(pattern=CLOCK_PATTERN)]


class CallingWindowSettings(PluginConfig):
    """A plugin's settings with a calling window ([window_start, window_end) in the
    callee's local time; "00:00" to "24:00": any time; "22:00" to "06:00": overnight)."""

    window_start: Clock = "08:00"
    window_end: Clock = "21:00"
    #: The zone of a number that has none of its own (None: the IVR's opening-hours zone).
    default_zone: str | None = None

    @model_validator(mode="after")
    def _window(self) -> CallingWindowSettings:
        try:
            window_of(self.window_start, self.window_end)
        except ValueError as e:
            raise ValueError(f"window_end: {e}") from None
        return self

    @property
    def window(self) -> Window:
        return window_of(self.window_start, self.window_end)

    def zone_default(self, gateway: Any) -> str:
        """default_zone, else the IVR's opening-hours zone, else Europe/Amsterdam."""
        hours = gateway.ivr.opening_hours
        return self.default_zone or (hours.timezone if hours else "Europe/Amsterdam")


def check_zone(cfg: CallingWindowSettings) -> None:
    """default_zone must be a real zone (SettingError naming it)."""
    if cfg.default_zone is not None and not is_zone(cfg.default_zone):
        raise SettingError("default_zone", f"{cfg.default_zone!r} is not an IANA time zone")

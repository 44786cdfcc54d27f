"""Wiring of the crisis line: the manifest, the hooks, the routes (docs/plugins.md).

Enable it in the config::

    plugins:
      crisis_line: {team: crisis_team, overflow_after_s: 60, reserve: [michel]}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cti.core.views import CallView
from cti.hookspecs import hookimpl
from cti.plugins.api import IvrExtension, PluginManifest, RoutingRequest, Services
from plugins.crisis_line.http import RULES, make_router
from plugins.crisis_line.schemas import CrisisLineSettings, check_settings
from plugins.crisis_line.services import CrisisLine
from plugins.crisis_line.storage import MIGRATIONS

_ID = {"type": "integer", "minimum": 1}
_BY = {"type": ["string", "null"]}
EVENTS: dict[str, dict[str, Any]] = {
    "crisis.started": {
        "type": "object", "additionalProperties": False,
        "required": ["crisis_id", "name", "by", "numbers", "dedicated_number", "priority"],
        "properties": {"crisis_id": _ID, "name": {"type": "string"}, "by": _BY,
                       "numbers": {"type": "array", "items": {"type": "string"}},
                       "dedicated_number": {"type": ["string", "null"]},
                       "priority": {"type": "integer"}}},
    "crisis.ended": {
        "type": "object", "additionalProperties": False,
        "required": ["crisis_id", "name", "by", "answered", "overflowed"],
        "properties": {"crisis_id": _ID, "name": {"type": "string"}, "by": _BY,
                       "answered": {"type": "integer"}, "overflowed": {"type": "integer"}}},
    "crisis.overflowed": {
        "type": "object", "additionalProperties": False,
        "required": ["crisis_id", "team", "reason", "waited_s"],
        "properties": {"crisis_id": _ID, "team": {"type": "string"},
                       "reason": {"enum": ["waited", "waiting"]},
                       "waited_s": {"type": "number"}}},
}


class CrisisLinePlugin:
    """One instance per gateway (the entry point names the class)."""

    def __init__(self) -> None:
        self._line: CrisisLine | None = None

    @property
    def line(self) -> CrisisLine:
        if self._line is None:
            raise RuntimeError("crisis_line: cti_load was not called")
        return self._line

    @hookimpl
    def cti_plugin_manifest(self) -> PluginManifest:
        return PluginManifest(
            description="Crises switched on by supervisors: announcement, IVR option, "
                        "priority routing to trained and reserve advisors, overflow",
            config=CrisisLineSettings, events=EVENTS, migrations=MIGRATIONS, routes=RULES,
            check=check_settings,
            prompts=Path(__file__).with_name("prompts.yaml"))

    @hookimpl
    def cti_load(self, services: Services) -> None:
        self._line = CrisisLine(services)
        services.http.include_router(make_router(self._line))
        services.on_start(self._line.resume)

    @hookimpl
    def cti_call_incoming(self, call: CallView) -> None:
        self.line.incoming(call)

    @hookimpl
    def cti_ivr_extend(self, call: CallView, flow: str) -> IvrExtension | None:
        return self.line.ivr_extension(call)

    @hookimpl
    def cti_call_routing(self, call: CallView) -> RoutingRequest | None:
        return self.line.routing(call)

    @hookimpl
    def cti_call_queued(self, call: CallView) -> None:
        self.line.queued(call)

    @hookimpl
    def cti_call_connected(self, call: CallView) -> None:
        self.line.connected(call)

    @hookimpl
    def cti_call_ended(self, call: CallView) -> None:
        self.line.ended(call)

    @hookimpl
    def cti_screen_pop(self, call: CallView) -> dict[str, Any] | None:
        return self.line.screen_pop(call)

"""Wiring of the recording plugin: the manifest, the hooks, the routes (docs/plugins.md).

Enable it in the config::

    plugins:
      recording: {directory: ../var/recordings, never_topics: [emergency],
                  retention_days: {default: 30, emergency: 90}}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cti.core.views import CallView
from cti.hookspecs import hookimpl
from cti.plugins.api import PluginManifest, Services
from plugins.recording.access import RecordingAccess
from plugins.recording.http import RULES as ACCESS_RULES
from plugins.recording.http import make_router
from plugins.recording.schemas import RecordingSettings, check_settings
from plugins.recording.services import Recordings
from plugins.recording.storage import MIGRATIONS

_RANGES = {"type": "array", "items": {"type": "array", "items": {"type": "number"},
                                      "minItems": 2, "maxItems": 2}}
EVENTS: dict[str, dict[str, Any]] = {
    "recording.done": {
        "type": "object", "additionalProperties": False,
        "required": ["recording_id", "path", "duration_s", "size", "sha256", "paused"],
        "properties": {"recording_id": {"type": "integer", "minimum": 1},
                       "path": {"type": "string"}, "duration_s": {"type": "number"},
                       "size": {"type": "integer"}, "sha256": {"type": "string"},
                       "paused": _RANGES}},
    "recording.state": {
        "type": "object", "additionalProperties": False, "required": ["state", "by"],
        "properties": {"state": {"enum": ["recording", "paused", "resumed"]},
                       "by": {"type": ["string", "null"]}}},
}
RULES = dict(ACCESS_RULES)


class RecordingPlugin:
    """One instance per gateway (the entry point names the class)."""

    def __init__(self) -> None:
        self._rec: Recordings | None = None

    @property
    def rec(self) -> Recordings:
        if self._rec is None:
            raise RuntimeError("recording: cti_load was not called")
        return self._rec

    @hookimpl
    def cti_plugin_manifest(self) -> PluginManifest:
        return PluginManifest(
            description="Recording for the coaches: a consent announcement, both voices "
                        "in one stereo file, pause by the advisor, retention per topic",
            config=RecordingSettings, events=EVENTS, migrations=MIGRATIONS, routes=RULES,
            check=check_settings, prompts=Path(__file__).with_name("prompts.yaml"))

    @hookimpl
    def cti_load(self, services: Services) -> None:
        gw = services.gateway
        directory = gw.path(Path(services.settings.directory))
        self._rec = Recordings(services, directory)
        services.http.include_router(
            make_router(RecordingAccess(services, self._rec.repo, directory)), ACCESS_RULES)
        services.on_start(self._rec.start)

    @hookimpl
    def cti_call_queued(self, call: CallView) -> None:
        self.rec.queued(call)

    @hookimpl
    def cti_call_digit(self, call: CallView, digit: str) -> bool | None:
        return self.rec.digit(call, digit)

    @hookimpl
    def cti_call_ended(self, call: CallView) -> None:
        self.rec.ended(call)

    @hookimpl
    def cti_event(self, event: dict[str, Any]) -> None:
        self.rec.event(event)

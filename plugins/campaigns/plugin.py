"""Wiring of the campaigns plugin: the manifest, the hooks, the routes (docs/plugins.md).

Enable it in the config::

    plugins:
      campaigns: {window_start: "09:00", window_end: "20:00", max_share: 0.25}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cti.core.views import CallView
from cti.hookspecs import hookimpl
from cti.plugins.api import PluginManifest, Services
from plugins.campaigns.http import RULES, make_router
from plugins.campaigns.schemas import CampaignsSettings, check_settings
from plugins.campaigns.services import Campaigns
from plugins.campaigns.storage import MIGRATIONS, STATUSES

_ID = {"type": "integer", "minimum": 1}
_COUNTS = {"type": "object", "additionalProperties": False,
           "required": ["total", *STATUSES, "retrying"],
           "properties": {k: {"type": "integer", "minimum": 0}
                          for k in ("total", *STATUSES, "retrying")}}
_CAMPAIGN_STATUS = {"enum": ["importing", "running", "paused", "stopped", "done", "failed"]}
EVENTS: dict[str, dict[str, Any]] = {
    "campaign.status": {
        "type": "object", "additionalProperties": False,
        "required": ["campaign_id", "name", "status"],
        "properties": {"campaign_id": _ID, "name": {"type": "string"},
                       "status": _CAMPAIGN_STATUS}},
    "campaign.progress": {
        "type": "object", "additionalProperties": False,
        "required": ["campaign_id", "status", "counts"],
        "properties": {"campaign_id": _ID, "status": _CAMPAIGN_STATUS, "counts": _COUNTS}},
    "campaign.attempt": {
        "type": "object", "additionalProperties": False,
        "required": ["campaign_id", "contact_id", "line", "attempt", "status", "reason",
                     "retry_at"],
        "properties": {"campaign_id": _ID, "contact_id": _ID, "line": _ID,
                       "attempt": {"type": "integer", "minimum": 1},
                       "status": {"enum": list(STATUSES)}, "reason": {"type": "string"},
                       "retry_at": {"type": ["number", "null"]}}},
}


class CampaignsPlugin:
    """One instance per gateway (the entry point names the class)."""

    def __init__(self) -> None:
        self._cp: Campaigns | None = None

    @property
    def cp(self) -> Campaigns:
        if self._cp is None:
            raise RuntimeError("campaigns: cti_load was not called")
        return self._cp

    @hookimpl
    def cti_plugin_manifest(self) -> PluginManifest:
        return PluginManifest(
            description="Outbound call lists: a CSV of numbers called progressively by "
                        "advisors with the skill, inside each number's local calling "
                        "window, under a cap on the share of advisors; outcomes as CSV",
            config=CampaignsSettings, events=EVENTS, migrations=MIGRATIONS, routes=RULES,
            check=check_settings, prompts=Path(__file__).with_name("prompts.yaml"))

    @hookimpl
    def cti_load(self, services: Services) -> None:
        self._cp = Campaigns(services)
        services.http.include_router(make_router(self._cp))
        services.on_start(self._cp.start)
        services.on_stop(self._cp.stop)

    @hookimpl
    def cti_screen_pop(self, call: CallView) -> dict[str, Any] | None:
        return self.cp.screen_pop(call)

    @hookimpl
    def cti_call_ended(self, call: CallView) -> None:
        self.cp.ended(call)

    @hookimpl
    def cti_event(self, event: dict[str, Any]) -> None:
        self.cp.event(event)

"""Wiring of the topic guides: the manifest, the screen pop, the routes.

Enable it in the config::

    plugins:
      guides: {directory: guides, fallback_language: en}

Files ``<topic>.<language>.md`` in the folder are the seed; supervisors edit
guides live through ``PUT /api/v1/plugins/guides/guides/{topic}/{language}``.
"""

from __future__ import annotations

from typing import Any

from cti.core.views import CallView
from cti.hookspecs import hookimpl
from cti.plugins.api import PluginManifest, Services
from plugins.guides.http import RULES, make_router
from plugins.guides.schemas import GuidesSettings, check_settings
from plugins.guides.services import Guides
from plugins.guides.storage import MIGRATIONS

EVENTS: dict[str, dict[str, Any]] = {
    "guide.changed": {
        "type": "object", "additionalProperties": False,
        "required": ["topic", "language", "source", "by"],
        "properties": {"topic": {"type": "string"}, "language": {"type": "string"},
                       "source": {"enum": ["file", "edited", "none"]},
                       "by": {"type": ["string", "null"]}}},
}


class GuidesPlugin:
    """One instance per gateway (the entry point names the class)."""

    def __init__(self) -> None:
        self._guides: Guides | None = None

    @property
    def guides(self) -> Guides:
        if self._guides is None:
            raise RuntimeError("guides: cti_load was not called")
        return self._guides

    @hookimpl
    def cti_plugin_manifest(self) -> PluginManifest:
        return PluginManifest(
            description="Topic guides: a short guide per topic and language shown with "
                        "the screen pop; supervisors edit them live",
            config=GuidesSettings, events=EVENTS, migrations=MIGRATIONS, routes=RULES,
            check=check_settings)

    @hookimpl
    def cti_load(self, services: Services) -> None:
        self._guides = Guides(services)
        services.http.include_router(make_router(self._guides))
        services.on_start(self._guides.start)

    @hookimpl
    def cti_screen_pop(self, call: CallView) -> dict[str, Any] | None:
        return self.guides.screen_pop(call)

"""The wiring: the manifest, the hooks, the routes. Enable it in config/cti.yaml::

    plugins:
      hello: {vip_numbers: ["+31612345678"], priority: 40}
"""

from __future__ import annotations

from cti.core.views import CallView
from cti.hookspecs import hookimpl
from cti.plugins.api import PluginManifest, RoutingRequest, Services
from cti_plugin_hello.http import RULES, make_router
from cti_plugin_hello.schemas import HelloSettings
from cti_plugin_hello.services import EVENT, EVENT_SCHEMA, Vips
from cti_plugin_hello.storage import MIGRATIONS


class HelloPlugin:
    """The entry point names the class: one instance per gateway."""

    def __init__(self) -> None:
        self._vips: Vips | None = None

    @property
    def vips(self) -> Vips:
        if self._vips is None:
            raise RuntimeError("hello: cti_load was not called")
        return self._vips

    @hookimpl
    def cti_plugin_manifest(self) -> PluginManifest:
        return PluginManifest(
            description="VIP callers: flagged, served first, counted per day",
            config=HelloSettings, events={EVENT: EVENT_SCHEMA}, migrations=MIGRATIONS,
            routes=RULES)

    @hookimpl
    def cti_load(self, services: Services) -> None:
        self._vips = Vips(services)
        services.http.include_router(make_router(self._vips))
        services.on_start(self._vips.start)
        services.on_stop(self._vips.stop)

    @hookimpl
    def cti_call_incoming(self, call: CallView) -> None:
        self.vips.incoming(call)

    @hookimpl
    def cti_call_routing(self, call: CallView) -> RoutingRequest | None:
        return self.vips.routing(call)

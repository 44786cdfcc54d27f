"""The plugins' side of a gateway's life: each plugin's services handle, its
``cti_load``, its start before the edge takes a call, its stop after the calls.

Order (docs/plugins.md): manifests and settings were checked by ``prepare``;
``load()`` builds each plugin's services (its table prefix and migrations, its
timers, its event types) and calls its ``cti_load`` — a failure there stops
``cti serve`` with one line naming the plugin; ``start()`` runs the plugins'
``on_start`` functions and arms their stored timers; ``stop()`` (after every
call has ended) runs ``on_stop``, drains their tasks, ``cti_shutdown``, and
disarms the timers.
"""

from __future__ import annotations

import logging

from cti.config import ConfigError, Settings
from cti.controller.durable import GatewayFlags
from cti.controller.flow import CallFlow
from cti.controller.scheduler import Scheduler
from cti.events import EventBus
from cti.plugins.host import PluginHost
from cti.plugins.services import PluginRouter, Services, SharedParts, build_services
from cti.prompts import load_prompt_voices
from cti.store.db import Store
from cti.store.plugin_storage import PluginStorage

log = logging.getLogger("cti.plugins")


class PluginRuntime:
    def __init__(self, settings: Settings, host: PluginHost, flow: CallFlow, bus: EventBus,
                 store: Store) -> None:
        self.settings = settings
        self.host = host
        self.flow = flow
        self.bus = bus
        self.store = store
        self.routers: list[PluginRouter] = []
        self.services: dict[str, Services] = {}
        self._timers: dict[str, Scheduler] = {}

    def load(self) -> None:
        s = self.settings
        source = str(s.source)
        parts = SharedParts(
            gateway_settings=s, actions=self.flow.plugin_calls, tasks=self.flow.callbacks,
            recorder=self.flow.recorder,
            bus=self.bus, host=self.host,
            routers=self.routers, cache_dir=s.path(s.prompts.cache_dir),
            override_dir=s.path(s.prompts.override_dir),
            voices=load_prompt_voices(s.path(s.prompts.texts)))
        for name, plugin in self.host.plugins.items():
            try:
                timers = Scheduler(self.store, name)
                services = build_services(
                    plugin, parts, timers=timers,
                    store=PluginStorage(self.store, name, plugin.manifest.migrations),
                    audit=self.store.audit.for_plugin(name),
                    flags=GatewayFlags(self.flow, name))
                self.host.one(name, "cti_load")(services=services)
            except ConfigError:
                raise
            except Exception as e:
                raise ConfigError(f"{source}: plugins.{name}: the plugin failed to load: "
                                  f"{type(e).__name__}: {e}") from None
            self.services[name], self._timers[name] = services, timers
            log.info("plugin loaded plugin=%s hooks=%s", name,
                     ",".join(self.host.hooks_of(name)))

    async def start(self) -> None:
        for name, services in self.services.items():
            for fn in services.starters:
                try:
                    await fn()
                except Exception as e:
                    raise ConfigError(f"{self.settings.source}: plugins.{name}: the plugin "
                                      f"failed to start: {type(e).__name__}: {e}") from None
            armed = self._timers[name].start()
            if armed:
                log.info("plugin timers armed plugin=%s count=%d", name, armed)

    async def stop(self) -> None:
        for name, services in self.services.items():
            for fn in services.stoppers:
                try:
                    await fn()
                except Exception:
                    log.exception("plugin failed to stop plugin=%s", name)
            await services.drain()
        self.host.call("cti_shutdown")
        for timers in self._timers.values():
            await timers.stop()

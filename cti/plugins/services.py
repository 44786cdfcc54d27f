"""The services handle each plugin receives in ``cti_load`` (the Protocols of
cti/plugins/api.py), built by the gateway over its controller, store and API.

Each plugin gets its own handle: its settings, its logger, its table prefix, its
event types, its timers. What a plugin may do to calls goes through the
controller's public actions (``PluginActions`` below), never its internals.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import jsonschema

from cti.api.roles import PLUGIN_API_PREFIX
from cti.core.views import AdvisorView, CallView, QueueView
from cti.events import EventBus, make_event
from cti.plugins.api import (
    AuditService,
    FlagsService,
    PluginStore,
    RecorderService,
    Rule,
    TasksService,
    TimersService,
)
from cti.plugins.host import LoadedPlugin, PluginHost

API_PREFIX = PLUGIN_API_PREFIX


class PluginActions(Protocol):
    """What the controller offers plugins (implemented by cti.controller)."""

    def call_views(self) -> list[CallView]: ...
    def call_view(self, call_id: str) -> CallView | None: ...
    def advisor_views(self) -> list[AdvisorView]: ...
    def waiting_views(self) -> QueueView: ...
    def play_prompts(self, call_id: str, keys: Sequence[str],
                     before_bridge: bool = False) -> None: ...
    def set_call_flag(self, call_id: str, name: str, value: Any) -> None: ...
    def hangup_for_plugin(self, call_id: str, reason: str) -> None: ...
    def set_call_priority(self, call_id: str, priority: int) -> None: ...
    def set_call_requirements(self, call_id: str, trainings: frozenset[str] | None,
                              reserve: frozenset[str] | None) -> None: ...
    def move_call(self, call_id: str, topic: str) -> None: ...
    def transfer_for_plugin(self, call_id: str, target: str, fallback: str, by: str) -> None: ...


class _Calls:
    def __init__(self, actions: PluginActions) -> None:
        self._a = actions

    def get(self, call_id: str) -> CallView | None:
        return self._a.call_view(call_id)

    def list(self) -> list[CallView]:
        return self._a.call_views()

    def play(self, call_id: str, prompts: Sequence[str], *,
             before_bridge: bool = False) -> None:
        self._a.play_prompts(call_id, list(prompts), before_bridge)

    def set_flag(self, call_id: str, name: str, value: Any) -> None:
        self._a.set_call_flag(call_id, name, value)

    def set_priority(self, call_id: str, priority: int) -> None:
        self._a.set_call_priority(call_id, int(priority))

    def hangup(self, call_id: str, reason: str = "plugin_hangup") -> None:
        self._a.hangup_for_plugin(call_id, reason)

    def set_requirements(self, call_id: str, *, trainings: frozenset[str] | None = None,
                         reserve: frozenset[str] | None = None) -> None:
        self._a.set_call_requirements(call_id, trainings, reserve)

    def move(self, call_id: str, topic: str) -> None:
        self._a.move_call(call_id, topic)

    def transfer(self, call_id: str, target: str, *,
                 fallback: Literal["queue_head", "queue", "hangup"] = "queue_head",
                 by: str = "plugin") -> None:
        if fallback not in ("queue_head", "queue", "hangup"):
            raise ValueError(f"fallback must be queue_head, queue or hangup, not {fallback!r}")
        self._a.transfer_for_plugin(call_id, target, fallback, by)


class _Advisors:
    def __init__(self, actions: PluginActions) -> None:
        self._a = actions

    def get(self, name: str) -> AdvisorView | None:
        return next((a for a in self._a.advisor_views() if a.name == name), None)

    def list(self) -> list[AdvisorView]:
        return self._a.advisor_views()

    def with_training(self, training: str) -> builtins.list[str]:
        return [a.name for a in self._a.advisor_views() if training in a.trainings]


class _Queues:
    def __init__(self, actions: PluginActions) -> None:
        self._a = actions

    def waiting(self) -> QueueView:
        return self._a.waiting_views()


class PluginEvents:
    """Publishes the plugin's own event types, validated against their schemas."""

    def __init__(self, name: str, bus: EventBus, host: PluginHost) -> None:
        self._name, self._bus, self._host = name, bus, host

    def publish(self, type_: str, data: dict[str, Any], *, call_id: str | None = None,
                advisor: str | None = None) -> int:
        if self._bus.types.owner(type_) != self._name:
            raise ValueError(f"plugin {self._name} did not declare event type {type_!r} "
                             "in its manifest")
        try:
            jsonschema.validate(data, self._bus.types.schemas[type_])
        except jsonschema.ValidationError as e:
            raise ValueError(f"event {type_}: data does not match its schema: "
                             f"{e.message}") from None
        ev = self._bus.publish(make_event(type_, data, call_id=call_id, advisor=advisor))
        self._host.call("cti_event", call_id=call_id, event=ev)
        return int(ev["seq"])


@dataclass
class PluginRouter:
    """A router a plugin mounted, with the rules of its routes (full paths)."""

    plugin: str
    router: Any
    rules: dict[tuple[str, str], Rule]


class PluginHttp:
    """Collects routers at load; the app mounts them (cti/api/app.py)."""

    def __init__(self, name: str, routers: list[PluginRouter],
                 declared: Mapping[tuple[str, str], Rule]) -> None:
        self._name, self._routers, self._declared = name, routers, dict(declared)

    @property
    def prefix(self) -> str:
        return f"{API_PREFIX}/{self._name}"

    def include_router(self, router: Any,
                       rules: Mapping[tuple[str, str], Rule] | None = None) -> None:
        from fastapi.routing import APIRoute

        rules = self._declared if rules is None else rules
        full: dict[tuple[str, str], Rule] = {}
        seen: set[tuple[str, str]] = set()
        for route in router.routes:
            # A WebSocket or mounted route would skip the guard: only REST routes.
            if not isinstance(route, APIRoute):
                raise ValueError(f"plugin {self._name}: route {route.path!r} is not a REST "
                                 "route (plugins may add REST routes only)")
            for method in sorted(route.methods or ()):
                rule = rules.get((method, route.path))
                if rule is None:  # fail closed, and say so before anything starts
                    raise ValueError(f"plugin {self._name}: route {method} {route.path} has "
                                     "no rule (declare it in the manifest's routes)")
                seen.add((method, route.path))
                full[(method, f"{self.prefix}{route.path}")] = rule
        stale = sorted(set(rules) - seen)
        if stale:
            raise ValueError(f"plugin {self._name}: a rule for a route that does not exist: "
                             f"{stale[0][0]} {stale[0][1]}")
        self._routers.append(PluginRouter(self._name, router, full))


class PluginPrompts:
    """Prompts a plugin speaks at run time (e.g. a crisis announcement)."""

    def __init__(self, name: str, cache_dir: Path, override_dir: Path | None,
                 voices: Mapping[str, str]) -> None:
        self._name, self._cache, self._override = name, cache_dir, override_dir
        self._voices = dict(voices)

    def _check_key(self, key: str) -> None:
        if not key.startswith(f"{self._name}.") or "/" in key or ".." in key:
            raise ValueError(f"prompt key {key!r}: a plugin's keys are '{self._name}.<name>'")

    async def speak(self, key: str, texts: Mapping[str, str]) -> None:
        """Every language of the gateway gets the prompt: its own text with its own
        voice, else the English text (or the first given) with that text's voice."""
        from cti.prompts import speak_to_file  # espeak-ng + sox, off the event loop

        self._check_key(key)
        unknown = sorted(set(texts) - set(self._voices))
        if unknown or not texts:
            raise ValueError(f"prompt {key}: no voice for language {unknown[0]!r} "
                             f"(languages: {', '.join(sorted(self._voices))})" if unknown
                             else f"prompt {key}: no text")
        fallback = "en" if "en" in texts else next(iter(texts))
        for lang in self._voices:
            source = lang if lang in texts else fallback
            out = self._cache / lang / f"{key}.wav"
            await asyncio.to_thread(speak_to_file, self._voices[source], texts[source], out)

    def has(self, language: str, key: str) -> bool:
        names = [self._cache / language / f"{key}.wav"]
        if self._override is not None:
            names.append(self._override / language / f"{key}.wav")
        return any(p.exists() for p in names)


_METRIC_NAME = re.compile(r"^[a-z][a-z0-9_]{0,60}$")


class PluginMetrics:
    """A plugin's counters; /metrics renders every plugin's (cti/metrics.py)."""

    def __init__(self, name: str) -> None:
        self.plugin = name
        #: counter name -> (help, {sorted labels: value})
        self.counters: dict[str, tuple[str, dict[tuple[tuple[str, str], ...], float]]] = {}

    def inc(self, name: str, help_: str, amount: float = 1, **labels: str) -> None:
        if not _METRIC_NAME.match(name) or amount < 0:
            raise ValueError(f"metric {name!r}: lower-case words with '_', a positive amount")
        _, values = self.counters.setdefault(name, (help_, {}))
        key = tuple(sorted((k, str(v)) for k, v in labels.items()))
        values[key] = values.get(key, 0.0) + amount


@dataclass
class Services:
    """One plugin's handle (see cti.plugins.api.Services for the documentation)."""

    name: str
    settings: Any
    gateway: Any
    log: logging.Logger
    calls: _Calls
    tasks: TasksService
    recorder: RecorderService
    advisors: _Advisors
    queues: _Queues
    timers: TimersService
    store: PluginStore
    events: PluginEvents
    audit: AuditService
    flags: FlagsService
    prompts: PluginPrompts
    http: PluginHttp
    metrics: PluginMetrics
    clock: Callable[[], float] = field(default=time.time)
    host: PluginHost | None = None
    pending: set[asyncio.Task[Any]] = field(default_factory=set)  # spawn()'s tasks
    starters: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    stoppers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def now(self) -> float:
        return self.clock()

    def on_start(self, fn: Callable[[], Awaitable[None]]) -> None:
        self.starters.append(fn)

    def on_stop(self, fn: Callable[[], Awaitable[None]]) -> None:
        self.stoppers.append(fn)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.pending.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self.pending.discard(t)
            if not t.cancelled() and (exc := t.exception()) is not None:
                if self.host is not None:
                    self.host.errors[(self.name, "task")] += 1
                self.log.error("plugin task failed plugin=%s: %s: %s", self.name,
                               type(exc).__name__, exc)

        task.add_done_callback(done)

    async def drain(self) -> None:
        """Wait for the plugin's pending tasks (at stop)."""
        while self.pending:
            await asyncio.gather(*list(self.pending), return_exceptions=True)


@dataclass
class SharedParts:
    """What every plugin's handle is built from (one per gateway)."""

    gateway_settings: Any
    actions: PluginActions
    tasks: TasksService
    recorder: RecorderService
    bus: EventBus
    host: PluginHost
    routers: list[PluginRouter]
    cache_dir: Path
    override_dir: Path | None
    voices: Mapping[str, str]
    clock: Callable[[], float] = time.time


def build_services(plugin: LoadedPlugin, parts: SharedParts, *, timers: TimersService,
                   store: PluginStore, audit: AuditService, flags: FlagsService) -> Services:
    """The handle of one plugin; its event types are declared on the bus here."""
    for type_, schema in plugin.manifest.events.items():
        parts.bus.types.declare(plugin.name, type_, dict(schema))
    return Services(
        name=plugin.name, settings=plugin.settings, gateway=parts.gateway_settings,
        log=logging.getLogger(f"cti.plugin.{plugin.name}"),
        calls=_Calls(parts.actions), tasks=parts.tasks, recorder=parts.recorder,
        advisors=_Advisors(parts.actions),
        queues=_Queues(parts.actions), timers=timers, store=store,
        events=PluginEvents(plugin.name, parts.bus, parts.host), audit=audit, flags=flags,
        prompts=PluginPrompts(plugin.name, parts.cache_dir, parts.override_dir, parts.voices),
        http=PluginHttp(plugin.name, parts.routers, plugin.manifest.routes),
        metrics=PluginMetrics(plugin.name),
        clock=parts.clock, host=parts.host,
    )

"""What a plugin declares and what it is given: the types of docs/plugins.md.

A plugin returns a :class:`PluginManifest` from ``cti_plugin_manifest()`` and
receives a :class:`Services` in ``cti_load(services)``. These are the only cti
types a plugin needs besides :mod:`cti.core.views` and :mod:`cti.hookspecs`.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from cti.api.roles import Rule as _Rule
from cti.core.paths import unusable_dir as unusable_dir  # for the plugins' checks
from cti.core.views import AdvisorView, CallView, QueueView
from cti.store.migrations import Migration

#: Who may use a plugin's route: the same rules as the core routes (cti/api/roles.py).
Rule = _Rule


class PluginConfig(BaseModel):
    """Base for a plugin's config model: unknown keys are errors, values frozen."""

    model_config = {"extra": "forbid", "frozen": True}


@dataclass(frozen=True)
class PluginManifest:
    """What a plugin brings, declared before the gateway starts.

    - ``config``: the pydantic model of ``plugins.<name>`` (None: no settings);
    - ``events``: event types the plugin publishes, each with the JSON schema of
      its ``data`` (validated like the core's, see docs/asyncapi.yaml);
    - ``prompts``: a prompts.yaml (texts per language, built by ``cti prompts
      build``; keys are used as ``<plugin>.<key>``);
    - ``migrations``: its tables in the store;
    - ``routes``: the rule of each of its REST routes, keyed by (method, path as
      declared in its router), e.g. ``{("GET", "/crises"): "supervisor"}``;
    - ``description``: one line for ``cti plugins``;
    - ``check``: ``check(settings, gateway_settings)`` raises :class:`SettingError`
      for a setting that does not fit the rest of the config (a directory key, a
      topic, an advisor that does not exist); run by ``cti check-config`` and
      ``cti serve`` before anything starts.
    """

    description: str = ""
    config: type[BaseModel] | None = None
    events: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    prompts: Path | None = None
    migrations: Sequence[Migration] = ()
    routes: Mapping[tuple[str, str], Rule] = field(default_factory=dict)
    check: Callable[[Any, Any], None] | None = None


@dataclass(frozen=True)
class MenuOption:
    """An extra option in a menu of the IVR (``cti_ivr_extend``).

    Pressing ``digit`` in menu ``menu`` plays nothing more and queues the call with
    ``topic`` (None: the menu's topic or the default), ``priority`` and ``flags``
    (shown on the screen pop). ``prompt`` is the prompt key announcing the option,
    played after the menu's own prompts in the caller's language.
    """

    menu: str
    digit: str
    prompt: str
    label: str
    topic: str | None = None
    priority: int | None = None
    flags: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IvrExtension:
    """``intro``: prompt keys played (in the caller's language) before the flow's
    first node; ``options``: extra menu options."""

    intro: tuple[str, ...] = ()
    options: tuple[MenuOption, ...] = ()


@dataclass(frozen=True)
class RoutingRequest:
    """What a call needs from an advisor (``cti_call_routing``): ``priority`` (a
    minimum), ``trainings`` required, ``reserve``: advisors who may take the call
    when they speak its language even without its topic or trainings (after
    every advisor who has them)."""

    priority: int | None = None
    trainings: frozenset[str] = frozenset()
    reserve: frozenset[str] = frozenset()


class SettingError(ValueError):
    """A plugin setting that does not fit the config: ``key`` is the setting's name
    under ``plugins.<plugin>`` (e.g. "team"), ``str()`` what is wrong."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class ActionError(ValueError):
    """An action on a call that cannot be carried out now; str() is the reason."""


# ---------------------------------------------------------------- services
class CallsService(Protocol):
    """Read and act on customer calls. Unknown call ids raise KeyError; actions
    that do not fit the call's state raise :class:`ActionError`."""

    def get(self, call_id: str) -> CallView | None: ...
    def list(self) -> list[CallView]: ...
    def play(self, call_id: str, prompts: Sequence[str], *,
             before_bridge: bool = False) -> None:
        """Play prompt keys (in the call's language) to a caller waiting for an advisor
        or for a transfer to be answered; music after. ``before_bridge``: an advisor
        who answers meanwhile is put through only once it has played (a consent
        announcement; at most ``BRIDGE_WAIT_S`` seconds)."""
    def set_flag(self, call_id: str, name: str, value: Any) -> None: ...
    def hangup(self, call_id: str, reason: str = "plugin_hangup") -> None:
        """End a call (e.g. after "we will call you back"); ``reason`` is its end reason."""
    def set_priority(self, call_id: str, priority: int) -> None:
        """Change a call's priority; a waiting call keeps its place in time."""
    def set_requirements(self, call_id: str, *, trainings: frozenset[str] | None = None,
                         reserve: frozenset[str] | None = None) -> None:
        """Change what a waiting call needs (trainings, reserve pool)."""
    def move(self, call_id: str, topic: str) -> None:
        """Move a waiting call to another topic's queue, keeping its place in time."""
    def transfer(self, call_id: str, target: str, *,
                 fallback: Literal["queue_head", "queue", "hangup"] = "queue_head",
                 by: str = "plugin") -> None:
        """Transfer a waiting or connected call to a directory entry (or sip: URI),
        or to ``queue:<topic>``. If the target does not answer: ``queue_head`` puts
        the caller back at the head of their queue, ``queue`` where they were,
        ``hangup`` ends the call."""


class TasksService(Protocol):
    """Work that waits in the distributor without a caller on the line."""

    def callback(self, number: str, *, language: str, topic: str, priority: int = 0,
                 trainings: frozenset[str] = frozenset(), reserve: frozenset[str] = frozenset(),
                 enqueued_at: float | None = None, flags: Mapping[str, Any] | None = None,
                 origin_call_id: str | None = None, ivr_path: Sequence[str] = (),
                 dialled: str = "", greeting: Sequence[str] = (),
                 kind: str = "callback") -> str:
        """Queue a call back to ``number`` (kind "callback", or "outbound" for a
        campaign's call) with ``enqueued_at``, the original caller's place in time
        (a campaign: when it was due); returns its call id. When an advisor takes
        it their phone rings first; when they answer the number is dialled through
        the edge; ``call.reached`` when the customer picks up, else it ends
        ``unreached`` (``cti_call_ended``: the plugin decides about a retry).
        ``greeting``: prompt keys (e.g. ``"callbacks.greeting"``) played to the
        customer in ``language`` when they pick up; they are bridged to the advisor
        when it has played (``call.bridged``), at once without one or if a prompt is
        missing (a warning in the log)."""
    def cancel(self, call_id: str, by: str | None = None) -> bool:
        """Withdraw a call back no advisor has taken yet (False if gone or ringing)."""


class RecorderService(Protocol):
    """Recordings of conversations (both voices, one stereo WAV, made by the call's
    media worker); their states are the ``call.recording`` events."""

    async def start(self, call_id: str, path: Path) -> str:
        """Record a call talking to its advisor into ``path`` (absolute); returns the
        recording's id. ActionError if the call is not talking or is recorded."""
    def pause(self, call_id: str, by: str | None = None) -> None:
        """The paused stretch is silence in both channels (ActionError: not recorded)."""
    def resume(self, call_id: str, by: str | None = None) -> None: ...
    def state(self, call_id: str) -> str | None:
        """"recording", "paused", or None."""


class AdvisorsService(Protocol):
    def get(self, name: str) -> AdvisorView | None: ...
    def list(self) -> builtins.list[AdvisorView]: ...
    def with_training(self, training: str) -> builtins.list[str]:
        """Names of advisors whose ``training`` is valid now."""


class QueuesService(Protocol):
    def waiting(self) -> QueueView:
        """Every waiting call, best first."""


TimerHandler = Callable[[str, dict[str, Any]], Awaitable[None] | None]


class TimersService(Protocol):
    """Durable timers: stored before ``schedule`` returns, fired after a restart
    (late ones at once). Handlers are registered by kind in ``cti_load``."""

    def on(self, kind: str, handler: TimerHandler) -> None: ...
    async def schedule(self, kind: str, at: float, payload: dict[str, Any],
                       key: str | None = None) -> str:
        """Fire ``handler(timer_id, payload)`` at unix time ``at``; a timer with the
        same ``key`` is replaced. Returns the timer id."""
    async def cancel(self, timer_id_or_key: str) -> bool: ...


class PluginStore(Protocol):
    """The plugin's own tables (created by its migrations) in the gateway's SQLite.

    ``write`` is durable (committed with synchronous=FULL) when it returns and
    runs off the event loop; ``query`` reads.
    """

    prefix: str

    async def write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns lastrowid (or the row count of an UPDATE/DELETE)."""
    async def write_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """The statement once per row of parameters, all in one transaction (all or
        none); returns the number of rows changed."""
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...


class EventsService(Protocol):
    def publish(self, type_: str, data: dict[str, Any], *, call_id: str | None = None,
                advisor: str | None = None) -> int:
        """Publish an event type declared in the manifest; returns its sequence number.
        Raises ValueError for an undeclared type or data that breaks its schema."""


class AuditService(Protocol):
    async def record(self, action: str, by: str | None, details: dict[str, Any]) -> None:
        """A durable audit line (who did what, when): readable by supervisors."""


class FlagsService(Protocol):
    def get(self, name: str) -> bool: ...
    async def set(self, name: str, value: bool, by: str | None = None) -> None:
        """Set a gateway-wide IVR flag (durable, announced as ``ivr.flag``)."""


class PromptsService(Protocol):
    async def speak(self, key: str, texts: Mapping[str, str]) -> None:
        """Render ``texts`` (language → text) with espeak-ng as prompt ``key`` (keys of
        plugins are ``<plugin>.<...>``), in every language of the gateway: one without
        a text gets the English one (or the first given). A recorded WAV in the
        prompts override folder wins."""
    def has(self, language: str, key: str) -> bool: ...


class MetricsService(Protocol):
    """Counters a plugin keeps, exported by /metrics as
    ``cti_plugin_<plugin>_<name>_total{labels}`` (Prometheus)."""

    def inc(self, name: str, help_: str, amount: float = 1, **labels: str) -> None:
        """Add ``amount`` to counter ``name`` (lower-case words with '_') with ``labels``."""


class HttpService(Protocol):
    def include_router(self, router: Any,
                       rules: Mapping[tuple[str, str], Rule] | None = None) -> None:
        """Mount a FastAPI APIRouter under ``/api/v1/plugins/<plugin>``; every route
        needs a rule keyed by (method, path as declared in the router) in ``rules``
        (default: the manifest's ``routes``), or ``cti serve`` refuses to start
        (fail closed)."""


class Services(Protocol):
    """The handle given to ``cti_load``: everything a plugin may see and do."""

    name: str
    settings: Any  # the plugin's validated config model (None without one)
    gateway: Any  # cti.config.Settings, read-only
    log: logging.Logger
    calls: CallsService
    tasks: TasksService
    recorder: RecorderService
    advisors: AdvisorsService
    queues: QueuesService
    timers: TimersService
    store: PluginStore
    events: EventsService
    audit: AuditService
    flags: FlagsService
    prompts: PromptsService
    http: HttpService
    metrics: MetricsService

    def now(self) -> float:
        """The gateway's clock (unix seconds); injectable in tests."""
    def on_start(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Run ``await fn()`` once every plugin is loaded and the store is open, before
        the edge takes a call (e.g. resume what was in force before a restart)."""
    def on_stop(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Run ``await fn()`` at stop, after every call has ended."""
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run async work from a (synchronous) hook: the task is kept, a failure is
        logged and counted like a hook's, and pending tasks finish before the store
        closes at stop."""


def user_of(request: Any) -> str | None:
    """In a plugin's route handler: the name of the logged-in user the guard let in
    (None on a public route). Take ``request: fastapi.Request`` as a parameter."""
    principal = getattr(request.state, "principal", None)
    return getattr(principal, "user", None)

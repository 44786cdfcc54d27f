"""The plugin surface of cti: every hook a plugin may implement (docs/plugins.md).

Plugins are pluggy plugins: a module (or object) with functions marked
``@hookimpl``, registered through the ``cti.plugins`` entry-point group and
enabled by name in the config (``plugins: {crisis_line: {...}}``).

Order of a gateway's life, as a plugin sees it:

1. ``cti_plugin_manifest()`` — before anything starts (also by ``cti check-config``
   and ``cti plugins``): the plugin's config model, event types, prompts, tables.
2. ``cti_load(services)`` — once, with the plugin's own :class:`~cti.plugins.api.Services`
   (its validated settings, actions on calls, timers, its tables, its events,
   its HTTP routes). The edge takes no call before every plugin is loaded.
3. call hooks (below) while calls come and go;
4. ``cti_shutdown()`` — after every call has ended, before the store closes.

Call hooks receive a :class:`~cti.core.views.CallView`, a frozen copy: to act,
use the services (``services.calls.set_priority(call.call_id, 50)``).
Every hook goes through pluggy, so ``hookwrapper``/``wrapper`` implementations
work. A plugin that raises is logged with the call id and counted in
``/metrics`` (``cti_plugin_errors_total``); the call goes on as if the plugin
had returned nothing.

Hooks marked *firstresult* stop at the first plugin that returns a value other
than ``None``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from cti.core.views import CallView
    from cti.plugins.api import IvrExtension, PluginManifest, RoutingRequest, Services

hookspec = pluggy.HookspecMarker("cti")
hookimpl = pluggy.HookimplMarker("cti")


# --------------------------------------------------------------- lifecycle
@hookspec(firstresult=True)
def cti_plugin_manifest() -> PluginManifest | None:
    """What the plugin brings: config model, event types, prompts, store migrations.

    Called for each plugin on its own (the manifest belongs to the plugin that
    returned it), before the gateway starts. Pure: no I/O, no side effects.
    firstresult (per plugin).
    """


@hookspec
def cti_load(services: Services) -> None:
    """Wire the plugin: keep ``services``, add routes, register timer handlers.

    Called once per plugin, with that plugin's own services, before the edge
    accepts a call. Raising here stops ``cti serve`` with the plugin's name.
    """


@hookspec
def cti_shutdown() -> None:
    """The gateway is stopping; every call has ended. Release what the plugin holds."""


# ------------------------------------------------------------------- calls
@hookspec
def cti_call_incoming(call: CallView) -> None:
    """A customer call arrived (before it is answered). Flags and priority may be set
    through ``services.calls``."""


@hookspec
def cti_ivr_extend(call: CallView, flow: str) -> IvrExtension | None:
    """Add to the IVR of this call before it starts: prompts played first (an
    announcement) and extra menu options (``"for the situation in … press 5"``).

    ``flow`` is the flow's name ("standard", or the dialled number of a
    configured flow). Every plugin's extension applies, in the order of ``plugins:``.
    """


@hookspec(firstresult=True)
def cti_ivr_branch(call: CallView, question: str) -> str | None:
    """Answer a ``plugin:<question>`` branch of an IVR flow (e.g. "vip" for a
    known caller); the flow goes to the case named by the answer.

    firstresult: the first plugin to return a string decides; ``None`` from
    every plugin takes the branch's default.
    """


@hookspec(firstresult=True)
def cti_call_priority(call: CallView) -> int | None:
    """Return the queue priority for a call leaving the IVR (higher is served first).

    firstresult: the first plugin to return an int decides; ``None`` keeps the
    flow's priority or the gateway's rule (emergency topics above normal calls).
    """


@hookspec
def cti_call_routing(call: CallView) -> RoutingRequest | None:
    """What the call needs from an advisor beyond language and topic, as it leaves
    the IVR: a minimum priority, trainings, a reserve pool of advisors who may take
    it even without the skills. Every plugin's request applies (the highest
    priority, the union of trainings and of reserve pools)."""


@hookspec
def cti_call_queued(call: CallView) -> None:
    """The call left the IVR and waits for an advisor."""


@hookspec
def cti_call_escalated(call: CallView, step: int) -> None:
    """A waiting call reached an escalation step marked ``escalate`` (its wait is long).

    The callbacks plugin offers the caller a call back here.
    """


@hookspec(firstresult=True)
def cti_call_max_wait(call: CallView) -> bool | None:
    """The call waited ``routing.max_wait_s`` (action "hook"): True if a plugin took
    care of it (e.g. the callbacks plugin offered the caller a call back).

    firstresult: the first plugin to return a value decides.
    """


@hookspec(firstresult=True)
def cti_call_digit(call: CallView, digit: str) -> bool | None:
    """A waiting caller (after the IVR) pressed ``digit``: True if a plugin took it
    (e.g. "press 1 to be called back"); the ``ivr.input`` event says so.

    firstresult: the first plugin to return a value decides.
    """


@hookspec
def cti_call_offered(call: CallView, advisor: str) -> None:
    """The distributor reserved ``advisor`` for the call; their phone rings next."""


@hookspec
def cti_call_connected(call: CallView) -> None:
    """The caller and the advisor are bridged (``call.advisor`` is set)."""


@hookspec
def cti_call_ended(call: CallView) -> None:
    """The call ended; ``call.end_reason`` says why. The record is already stored."""


@hookspec
def cti_screen_pop(call: CallView) -> dict[str, Any] | None:
    """Extra fields for the advisor's screen pop (``call.offered`` ``data.plugins``),
    keyed by the plugin's name by the gateway; JSON values only."""


# ------------------------------------------------------------------ events
@hookspec
def cti_event(event: dict[str, Any]) -> None:
    """Every event published on the bus (docs/events.md), in sequence order,
    including those of plugins."""

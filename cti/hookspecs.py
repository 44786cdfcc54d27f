"""The plugin surface of cti: every hook a plugin may implement.

Plugins are pluggy plugins discovered through the ``cti.plugins`` entry-point
group and enabled by name in the config (``plugins: [crisis_line, ...]``).
A plugin that raises is logged and skipped for that call; it never takes the
call down (see ``cti.plugins.PluginHost``).

Hooks marked *firstresult* stop at the first plugin that returns a value
other than ``None``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from cti.controller.calls import Call
    from cti.events import Event

hookspec = pluggy.HookspecMarker("cti")
hookimpl = pluggy.HookimplMarker("cti")


@hookspec
def cti_startup(settings: Any) -> None:
    """The gateway has started; ``settings`` is the validated ``cti.config.Settings``."""


@hookspec
def cti_shutdown() -> None:
    """The gateway is stopping; release what the plugin holds."""


@hookspec
def cti_call_incoming(call: Call) -> None:
    """A customer call arrived (before it is answered).

    The plugin may read the caller and the dialled number and set
    ``call.flags`` (e.g. ``{"crisis": "kabul-2021"}``) or ``call.priority``.
    """


@hookspec(firstresult=True)
def cti_ivr_branch(call: Call, question: str) -> str | None:
    """Answer a ``plugin:<question>`` branch of an IVR flow (e.g. "vip" for a
    known caller); the flow goes to the case named by the answer.

    firstresult: the first plugin to return a string decides; ``None`` from
    every plugin takes the branch's default.
    """


@hookspec(firstresult=True)
def cti_call_priority(call: Call) -> int | None:
    """Return the queue priority for a call leaving the IVR (higher is served first).

    firstresult: the first plugin to return an int decides; ``None`` keeps the
    gateway's own rule (emergency topics above normal calls).
    """


@hookspec
def cti_call_queued(call: Call) -> None:
    """The call left the IVR and waits for an advisor."""


@hookspec
def cti_call_escalated(call: Call, step: int) -> None:
    """A waiting call reached an escalation step marked ``escalate`` (its wait is long).

    The callbacks plugin offers the caller a call back here.
    """


@hookspec(firstresult=True)
def cti_call_max_wait(call: Call) -> bool | None:
    """The call waited ``routing.max_wait_s`` (action "hook"): True if a plugin took
    care of it (e.g. the callbacks plugin offered the caller a call back).

    firstresult: the first plugin to return a value decides.
    """


@hookspec
def cti_call_connected(call: Call) -> None:
    """The caller and the advisor are bridged (``call.advisor`` is set)."""


@hookspec
def cti_call_ended(call: Call) -> None:
    """The call ended; ``call.end_reason`` says why. The record is already stored."""


@hookspec
def cti_event(event: Event) -> None:
    """Every event published on the bus (docs/events.md), in sequence order."""

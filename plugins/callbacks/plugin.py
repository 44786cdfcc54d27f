"""Wiring of the callbacks plugin: the manifest, the hooks, the routes (docs/plugins.md).

Enable it in the config::

    plugins:
      callbacks: {offer_after_s: 120, window_start: "08:00", window_end: "21:00"}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cti.core.views import CallView
from cti.hookspecs import hookimpl
from cti.plugins.api import PluginManifest, Services
from plugins.callbacks.http import RULES, make_router
from plugins.callbacks.schemas import CallbacksSettings, check_settings
from plugins.callbacks.services import Callbacks
from plugins.callbacks.storage import MIGRATIONS

_ID = {"type": "integer", "minimum": 1}
_TIME = {"type": "number"}
_WHO = {"type": ["string", "null"]}
EVENTS: dict[str, dict[str, Any]] = {
    "callback.requested": {
        "type": "object", "additionalProperties": False,
        "required": ["callback_id", "number", "when", "due_at", "zone", "enqueued_at",
                     "updated"],
        "properties": {"callback_id": _ID, "number": {"type": "string"},
                       "when": {"enum": ["asap", "hour", "tomorrow"]}, "due_at": _TIME,
                       "zone": {"type": "string"}, "enqueued_at": _TIME,
                       "updated": {"type": "boolean"}}},
    "callback.attempted": {
        "type": "object", "additionalProperties": False,
        "required": ["callback_id", "attempt", "advisor", "end_reason", "retry_at"],
        "properties": {"callback_id": _ID, "attempt": {"type": "integer", "minimum": 1},
                       "advisor": _WHO, "end_reason": {"type": "string"},
                       "retry_at": {"type": ["number", "null"]}}},
    "callback.connected": {
        "type": "object", "additionalProperties": False,
        "required": ["callback_id", "attempt", "advisor"],
        "properties": {"callback_id": _ID, "attempt": {"type": "integer", "minimum": 1},
                       "advisor": _WHO}},
    "callback.unreached": {
        "type": "object", "additionalProperties": False,
        "required": ["callback_id", "number", "attempts"],
        "properties": {"callback_id": _ID, "number": {"type": "string"},
                       "attempts": {"type": "integer", "minimum": 1}}},
}


class CallbacksPlugin:
    """One instance per gateway (the entry point names the class)."""

    def __init__(self) -> None:
        self._cb: Callbacks | None = None

    @property
    def cb(self) -> Callbacks:
        if self._cb is None:
            raise RuntimeError("callbacks: cti_load was not called")
        return self._cb

    @hookimpl
    def cti_plugin_manifest(self) -> PluginManifest:
        return PluginManifest(
            description="Calls back offered to callers who wait long: their place kept, "
                        "a calling window in their local time, retries",
            config=CallbacksSettings, events=EVENTS, migrations=MIGRATIONS, routes=RULES,
            check=check_settings, prompts=Path(__file__).with_name("prompts.yaml"))

    @hookimpl
    def cti_load(self, services: Services) -> None:
        self._cb = Callbacks(services)
        services.http.include_router(make_router(self._cb))
        services.on_start(self._cb.resume)

    @hookimpl
    def cti_call_queued(self, call: CallView) -> None:
        self.cb.queued(call)

    @hookimpl
    def cti_call_escalated(self, call: CallView, step: int) -> None:
        self.cb.escalated(call)

    @hookimpl
    def cti_call_digit(self, call: CallView, digit: str) -> bool | None:
        return self.cb.digit(call, digit)

    @hookimpl
    def cti_call_ended(self, call: CallView) -> None:
        self.cb.ended(call)

    @hookimpl
    def cti_event(self, event: dict[str, Any]) -> None:
        self.cb.event(event)

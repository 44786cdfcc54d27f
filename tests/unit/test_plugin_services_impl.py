"""The store's and scheduler's classes are the plugin services of cti/plugins/api.py:
every method of the Protocol, with the same parameters and the same async-ness
(the annotations are checked by mypy through the assignments below)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from cti.controller.durable import GatewayFlags
from cti.controller.scheduler import Scheduler
from cti.plugins.api import AuditService, FlagsService, PluginStore, TimersService
from cti.store.db import Store
from cti.store.plugin_storage import PluginStorage


def same_surface(impl: Any, protocol: type) -> None:
    for name, member in vars(protocol).items():
        if name.startswith("_") or not callable(member):
            continue
        ours = getattr(impl, name)
        assert inspect.iscoroutinefunction(ours) == inspect.iscoroutinefunction(member), name
        want = list(inspect.signature(member).parameters.values())[1:]  # without self
        got = inspect.signature(ours).parameters
        for p in want:
            assert p.name in got, f"{protocol.__name__}.{name}: no parameter {p.name}"
            assert got[p.name].kind == p.kind, (name, p.name)
            assert (got[p.name].default is inspect.Parameter.empty) == (
                p.default is inspect.Parameter.empty), (name, p.name)
        extra = [q for n, q in got.items() if n not in {p.name for p in want}]
        assert all(q.default is not inspect.Parameter.empty for q in extra), (name, extra)


def test_the_implementations_fit_the_protocols(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    try:
        timers: TimersService = Scheduler(store, "p")
        plugin_store: PluginStore = PluginStorage(store, "p")
        audit: AuditService = store.audit.for_plugin("p")
        flags: FlagsService = GatewayFlags(object(), "p")
        for impl, protocol in ((timers, TimersService), (plugin_store, PluginStore),
                               (audit, AuditService), (store.audit, AuditService),
                               (flags, FlagsService)):
            same_surface(impl, protocol)
        assert plugin_store.prefix == "p_p_"
    finally:
        store.close()

"""Loading plugins by name and calling hooks so that one plugin cannot break a call."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Any

import pluggy

from cti import hookspecs
from cti.config import ConfigError

log = logging.getLogger("cti.plugins")

ENTRY_POINT_GROUP = "cti.plugins"


def available_plugins() -> dict[str, Any]:
    """Installed plugins by name (the ``cti.plugins`` entry-point group)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


class PluginHost:
    """A pluggy manager plus error isolation.

    Each hook implementation is called on its own: a plugin that raises is
    logged with the call id and skipped, the others and the call go on.
    """

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("cti")
        self.pm.add_hookspecs(hookspecs)

    def load(self, names: list[str], source: str = "config") -> None:
        installed = available_plugins()
        for i, name in enumerate(names):
            ep = installed.get(name)
            if ep is None:
                known = ", ".join(sorted(installed)) or "none installed"
                raise ConfigError(
                    f"{source}: plugins.{i}: unknown plugin {name!r} (available: {known})"
                )
            self.register(ep.load(), name)

    def register(self, plugin: Any, name: str) -> None:
        self.pm.register(plugin, name=name)

    def call(self, hook: str, *, call_id: str | None = None, **kwargs: Any) -> list[Any]:
        results = []
        caller = getattr(self.pm.hook, hook)
        for impl in reversed(caller.get_hookimpls()):
            args = {k: kwargs[k] for k in impl.argnames}
            try:
                res = impl.function(**args)
            except Exception:
                log.exception("plugin failed plugin=%s hook=%s call_id=%s",
                              impl.plugin_name, hook, call_id)
                continue
            if res is not None:
                results.append(res)
                if caller.spec and caller.spec.opts.get("firstresult"):
                    break
        return results

    def first(self, hook: str, *, call_id: str | None = None, **kwargs: Any) -> Any:
        res = self.call(hook, call_id=call_id, **kwargs)
        return res[0] if res else None

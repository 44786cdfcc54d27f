"""What `cti plugins` prints: installed plugins, and what each enabled one brings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cti.plugins.host import PluginHost


def describe_plugins(host: PluginHost, installed: Mapping[str, Any]) -> list[str]:
    lines = ["installed plugins (entry points of group cti.plugins):"]
    for name in sorted(installed):
        state = "enabled" if name in host.plugins else "not enabled"
        lines.append(f"  {name:<20} {installed[name].value}  [{state}]")
    if not installed:
        lines.append("  (none)")
    for name, plugin in host.plugins.items():
        m = plugin.manifest
        lines.append(f"\n{name}: {m.description or '(no description)'}")
        lines.append("  hooks:   " + (", ".join(host.hooks_of(name)) or "(none)"))
        routes = [f"{method} /api/v1/plugins/{name}{path} [{rule}]"
                  for (method, path), rule in sorted(m.routes.items())]
        lines.append("  routes:  " + ("\n           ".join(routes) if routes else "(none)"))
        lines.append("  events:  " + (", ".join(sorted(m.events)) or "(none)"))
        if m.config is not None:
            keys = []
            for key, field in m.config.model_fields.items():
                value = getattr(plugin.settings, key, field.default)
                keys.append(f"{key}={value!r}")
            lines.append("  settings: " + ", ".join(keys))
        else:
            lines.append("  settings: (none)")
        if m.prompts is not None:
            lines.append(f"  prompts: {m.prompts}")
    return lines

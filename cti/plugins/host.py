"""Loading plugins by name, checking their settings, calling hooks through pluggy.

Every hook call goes through pluggy (``pm.hook.<name>``), so hook wrappers
(``@hookimpl(wrapper=True)`` / ``hookwrapper=True``) see every call. Error
isolation is added per implementation when a plugin is registered: its
implementation is wrapped so that an exception is logged with the call id,
counted (``errors``, shown in ``/metrics``) and turned into ``None`` — the
other plugins and the call go on. Wrappers themselves are not guarded: a
wrapper that raises is a bug pluggy reports as such.

``cti_plugin_manifest`` and ``cti_load`` are not guarded either: a plugin that
cannot declare itself or load stops ``cti serve`` with one line naming it.
"""

from __future__ import annotations

import difflib
import functools
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import pluggy
from pydantic import BaseModel, ValidationError

from cti import hookspecs
from cti.config import ConfigError, describe_validation_error
from cti.plugins.api import PluginManifest, SettingError

log = logging.getLogger("cti.plugins")

ENTRY_POINT_GROUP = "cti.plugins"

#: Hooks whose failure must stop the gateway instead of being skipped.
UNGUARDED = frozenset({"cti_plugin_manifest", "cti_load"})


def available_plugins() -> dict[str, Any]:
    """Installed plugins by name (the ``cti.plugins`` entry-point group)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


@dataclass
class LoadedPlugin:
    """A registered plugin: its object, what it declared, its validated settings."""

    name: str
    obj: object
    manifest: PluginManifest
    settings: BaseModel | None


def _call_id_of(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str | None:
    """The call id of a hook's arguments: a CallView's, or an event's."""
    for value in (*args, *kwargs.values()):
        cid = getattr(value, "call_id", None)
        if isinstance(cid, str):
            return cid
        if isinstance(value, dict) and isinstance(value.get("call_id"), str):
            return str(value["call_id"])
    return None


class PluginHost:
    """A pluggy manager for the ``cti`` hooks plus loading, settings and error counts."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("cti")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, LoadedPlugin] = {}
        #: (plugin, hook) -> failures since start; exported by /metrics.
        self.errors: Counter[tuple[str, str]] = Counter()

    # ------------------------------------------------------------- loading
    def load(self, config: Mapping[str, Mapping[str, Any] | None], source: str = "config",
             gateway: Any = None) -> None:
        """Register every enabled plugin and validate its settings (ConfigError).

        Hooks are called in the order of the config: pluggy calls the plugin
        registered last first, so they are registered from the last to the first.
        """
        installed = available_plugins()
        for name, settings in reversed(list(config.items())):
            ep = installed.get(name)
            if ep is None:
                close = difflib.get_close_matches(name, list(installed), 1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                known = ", ".join(sorted(installed)) or "none installed"
                raise ConfigError(f"{source}: plugins.{name}: unknown plugin {name!r} "
                                  f"({hint}available: {known})")
            try:
                obj = ep.load()
                # A class: one instance per gateway, so two gateways share no state.
                obj = obj() if isinstance(obj, type) else obj
            except Exception as e:
                raise ConfigError(f"{source}: plugins.{name}: cannot import plugin "
                                  f"{ep.value!r}: {type(e).__name__}: {e}") from None
            self.register(obj, name, settings, source)
        self.plugins = {name: self.plugins[name] for name in config}
        if gateway is not None:
            self.check(gateway, source)

    def check(self, gateway: Any, source: str = "config") -> None:
        """Each plugin's cross-checks of its settings against the whole config."""
        for name, plugin in self.plugins.items():
            if plugin.manifest.check is None:
                continue
            try:
                plugin.manifest.check(plugin.settings, gateway)
            except SettingError as e:
                raise ConfigError(f"{source}: plugins.{name}.{e.key}: {e}") from None

    def register(self, plugin: object, name: str, settings: Mapping[str, Any] | None = None,
                 source: str = "config") -> LoadedPlugin:
        """Register one plugin object under ``name`` with its raw settings."""
        self.pm.register(plugin, name=name)
        self._guard(name)
        manifest = self._manifest(name, source)
        loaded = LoadedPlugin(name, plugin, manifest,
                              self._validate(name, manifest, settings, source))
        self.plugins[name] = loaded
        return loaded

    def _manifest(self, name: str, source: str) -> PluginManifest:
        caller = self.one(name, "cti_plugin_manifest")
        try:
            manifest = caller()
        except Exception as e:
            raise ConfigError(f"{source}: plugins.{name}: the plugin's manifest failed: "
                              f"{type(e).__name__}: {e}") from None
        if manifest is None:
            return PluginManifest()
        if not isinstance(manifest, PluginManifest):
            raise ConfigError(f"{source}: plugins.{name}: cti_plugin_manifest returned "
                              f"{type(manifest).__name__}, expected a PluginManifest")
        return manifest

    @staticmethod
    def _validate(name: str, manifest: PluginManifest, raw: Mapping[str, Any] | None,
                  source: str) -> BaseModel | None:
        model = manifest.config
        if model is None:
            if raw:
                key = next(iter(raw))
                raise ConfigError(f"{source}: plugins.{name}.{key}: unknown key (the plugin "
                                  "takes no settings)")
            return None
        data = dict(raw or {})
        try:
            return model.model_validate(data)
        except ValidationError as e:
            full = {"plugins": {name: data}}
            msg = describe_validation_error(e, model, full, ("plugins", name))
            raise ConfigError(f"{source}: {msg}") from None

    def _guard(self, name: str) -> None:
        """Wrap each of the plugin's implementations so that one failure is skipped."""
        plugin = self.pm.get_plugin(name)
        for caller in self.pm.get_hookcallers(plugin) or []:
            if caller.name in UNGUARDED:
                continue
            for impl in caller.get_hookimpls():
                if impl.plugin_name == name and not (impl.hookwrapper or impl.wrapper):
                    # pluggy types HookImpl.function as Final; replacing it is the one
                    # place the guard can sit so that pluggy's own calls (and the
                    # wrappers around them) go through it.
                    setattr(impl, "function",  # noqa: B010
                            self._guarded(impl.function, name, caller.name))

    def _guarded(self, fn: Callable[..., Any], plugin: str, hook: str) -> Callable[..., Any]:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception:
                self.errors[(plugin, hook)] += 1
                log.exception("plugin failed plugin=%s hook=%s call_id=%s", plugin, hook,
                              _call_id_of(args, kwargs))
                return None

        return run

    # ------------------------------------------------------------- calling
    def call(self, hook: str, *, call_id: str | None = None, **kwargs: Any) -> list[Any]:
        """Call ``hook`` on every plugin; the non-None results (one for firstresult).

        ``call_id`` is only for the log of a failure outside any plugin.
        """
        caller = getattr(self.pm.hook, hook)
        try:
            result = caller(**kwargs)
        except Exception:  # a raising wrapper: log it like a plugin failure
            self.errors[("(wrapper)", hook)] += 1
            log.exception("plugin hook wrapper failed hook=%s call_id=%s", hook, call_id)
            return []
        if caller.spec is not None and caller.spec.opts.get("firstresult"):
            return [] if result is None else [result]
        return [r for r in result if r is not None]

    def first(self, hook: str, *, call_id: str | None = None, **kwargs: Any) -> Any:
        res = self.call(hook, call_id=call_id, **kwargs)
        return res[0] if res else None

    def one(self, name: str, hook: str) -> Callable[..., Any]:
        """A caller of ``hook`` on plugin ``name`` only (for per-plugin hooks)."""
        others = [p for n, p in self.pm.list_name_plugin() if n != name]
        return self.pm.subset_hook_caller(hook, remove_plugins=others)

    # ------------------------------------------------------------- reading
    def hooks_of(self, name: str) -> list[str]:
        plugin = self.pm.get_plugin(name)
        return sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])

    def error_counts(self) -> dict[tuple[str, str], int]:
        return dict(self.errors)

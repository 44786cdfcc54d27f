"""Plugins: loading by name, their manifests, and the services they are given."""

from cti.plugins.host import ENTRY_POINT_GROUP, PluginHost, available_plugins

__all__ = ["ENTRY_POINT_GROUP", "PluginHost", "available_plugins"]

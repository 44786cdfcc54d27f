"""cti's own plugins: each a package of its own (see docs/plugins.md)."""

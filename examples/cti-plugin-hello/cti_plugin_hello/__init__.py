"""VIP callers for cti: the example third-party plugin (docs/plugins.md)."""

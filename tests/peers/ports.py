"""Free ports for test peers: the product's own helper (cti.ports)."""

from cti.ports import bindable, free_port, free_port_range

__all__ = ["bindable", "free_port", "free_port_range"]

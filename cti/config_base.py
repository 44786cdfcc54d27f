"""What every part of the configuration shares: the error type and the base model.

Kept apart from cti/config.py so the sections that live in their own modules
(config_ivr, config_trunk) can build on it without an import cycle.
"""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict


class ConfigError(Exception):
    """A configuration problem; str() is the one line shown to the admin."""


class ConfigModel(BaseModel):
    # extra="forbid": a typo in a key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid", frozen=True)


def valid_network(net: str) -> bool:
    """Whether ``net`` is an IPv4 address or network (``10.0.0.0/8``)."""
    try:
        ipaddress.IPv4Network(net, strict=False)
    except ValueError:
        return False
    return True

"""Checks on the directories cti creates or writes, for check-config and serve."""

from __future__ import annotations

import os
from pathlib import Path


def unusable_dir(path: Path) -> str | None:
    """Why a directory cti must create or write cannot be (None: it can): the first
    part of the path that exists must be a writable directory."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a directory"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None

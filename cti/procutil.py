"""Child processes that never outlive the controller."""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent(new_group: bool = False) -> Callable[[], None]:
    """A preexec_fn: the child gets SIGTERM when the controller dies.

    The signal is armed after fork; if the parent died in between, the child
    has already been re-parented and exits at once instead of running orphaned.
    """
    parent = os.getpid()

    def preexec() -> None:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)
        if new_group:
            os.setpgrp()

    return preexec


def raise_open_files_limit() -> tuple[int, int]:
    """Soft RLIMIT_NOFILE up to the hard limit; (before, after).

    The controller holds a socket per media worker, and its children inherit the
    limit: the default soft 1024 is the first limit 500+ workers hit.
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return soft, hard
    return soft, soft

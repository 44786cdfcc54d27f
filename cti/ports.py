"""Free local ports for phones started on demand (cti softphone, test peers).

The ports handed out last are remembered so two phones started one after the
other never get the same port or overlapping RTP ranges (the probe sockets are
closed before the phone binds). Only the most recent ones: remembering all of
them ran the 20000-32000 range dry over a long test run, while ports handed
out long ago are free again or really in use (then the probe sees it).
"""

from __future__ import annotations

import random
import socket
from collections import deque

REMEMBERED = 4000  # ports; a test or a desk uses a few hundred at most

_taken: set[int] = set()
_handed_out: deque[int] = deque()


def _remember(ports: range | list[int]) -> None:
    for port in ports:
        _taken.add(port)
        _handed_out.append(port)
    while len(_handed_out) > REMEMBERED:
        _taken.discard(_handed_out.popleft())


def bindable(port: int, kinds: tuple[int, ...], host: str) -> bool:
    """True if ``port`` can be bound now for every socket kind in ``kinds``."""
    socks: list[socket.socket] = []
    try:
        for kind in kinds:
            s = socket.socket(socket.AF_INET, kind)
            socks.append(s)
            s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP (SIP listens on both)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port not in _taken and bindable(port, (socket.SOCK_STREAM, socket.SOCK_DGRAM), host):
            _remember([port])
            return port
    raise RuntimeError("no free UDP+TCP port found")


def free_port_range(n: int, host: str = "127.0.0.1", low: int = 20000, high: int = 32000) -> int:
    """First port of n consecutive free UDP ports (an RTP range); base is even.

    Below the Linux ephemeral range (32768+) so no client socket takes one.
    """
    for _ in range(500):
        base = random.randrange(low, high - n) & ~1
        span = range(base, base + n)
        if any(p in _taken for p in span):
            continue
        if all(bindable(p, (socket.SOCK_DGRAM,), host) for p in span):
            _remember(span)
            return base
    raise RuntimeError(f"no free range of {n} UDP ports found")

"""Free ports: never the same twice in a row, and a long run never runs dry."""

from __future__ import annotations

import socket

from cti import ports


def test_ranges_never_overlap_recent_ones_and_the_pool_never_runs_dry() -> None:
    recent: list[range] = []
    # Far more than the 12,000 ports between 20000 and 32000: old ones come back.
    for _ in range(400):
        base = ports.free_port_range(80)
        span = range(base, base + 80)
        assert base % 2 == 0 and span[-1] < 32000
        assert not any(set(span) & set(r) for r in recent[-20:])  # 1,600 recent ports
        recent.append(span)


def test_a_port_in_use_is_never_handed_out() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        taken = busy.getsockname()[1]
        handed = {ports.free_port() for _ in range(200)}
        assert taken not in handed

"""The ``overload`` section: when the gateway refuses new hotline calls itself.

A machine that runs out of CPU does not fail one call: every connected caller's
audio and every advisor's ring get late together. So past these limits the edge
answers new hotline INVITEs ``503 Lines busy`` with ``Retry-After`` (a carrier
plays its busy tone or tries its next route) and the calls already in stay served.
"""

from __future__ import annotations

from pydantic import Field

from cti.config_base import ConfigModel


class OverloadSettings(ConfigModel):
    # The machine's CPU busy (all cores, from /proc/stat), sampled once a second;
    # the media workers need it in real time. 0: never refuse for CPU.
    cpu_percent: float = Field(95.0, ge=0, le=100)
    # The controller's event-loop lag (one core's worth of decisions). 0: never.
    loop_lag_ms: float = Field(500.0, ge=0, le=60_000)
    # Seconds in a row above a limit before refusing: a short burst is taken.
    over_s: int = Field(3, ge=1, le=60)
    # Seconds in a row below every limit minus the margin before taking calls again.
    clear_s: int = Field(5, ge=1, le=600)
    clear_margin_percent: float = Field(10.0, ge=0, le=50)
    # New hotline calls admitted a second at most (a carrier's CAPS limit), set from
    # what the machine was measured to hold (docs/benchmarks.md); more get the same
    # 503. Steadier than the flag alone, which takes calls in bursts. 0: no cap.
    max_new_calls_per_second: int = Field(0, ge=0, le=100_000)
    # The Retry-After of the 503.
    retry_after_s: int = Field(30, ge=1, le=3600)

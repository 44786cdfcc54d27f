"""The legs' audio quality: kept with the call's legs, counted for /metrics, and a
warning (log and ``call.quality`` event) for a leg whose line lost too much.

Each worker reads a leg's stream statistics as it ends and sends them in the leg's
``disconnected`` state event (cti/media/quality.py, docs/ipc.md). A leg's loss is
the worse of its two directions (what we received from the far end; what the far
end's RTCP said it received from us), its jitter the interarrival jitter of what
we received. The caller's leg usually ends first and ends the call: the other legs'
figures come a moment later, after the call left the registry, so an ended call is
remembered for ``LATE_S`` and its record saved again when they arrive.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from cti.controller.calls import Call, Leg
from cti.controller.context import FlowContext

log = logging.getLogger("cti.flow")

#: A leg that lost more than this (% of its packets) is reported (issue 15).
LOSS_WARN_PCT = 5.0
#: How long an ended call waits for its other legs' figures.
LATE_S = 30.0
LOSS_BUCKETS_PCT = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
JITTER_BUCKETS_MS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 50.0, 100.0, 200.0)
_NUMBERS = ("rx_packets", "rx_lost", "rx_loss_pct", "rx_jitter_ms", "tx_packets",
            "tx_loss_pct")


class Histogram:
    """A Prometheus histogram of one series: cumulative buckets, sum, count."""

    def __init__(self, bounds: Iterable[float]) -> None:
        self.bounds = tuple(bounds)
        self.buckets = [0] * len(self.bounds)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.buckets[i] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, labels: str) -> list[str]:
        sep = "," if labels else ""
        out = [f'{name}_bucket{{{labels}{sep}le="{b:g}"}} {n}'
               for b, n in zip(self.bounds, self.buckets, strict=True)]
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}')
        tail = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{tail} {self.sum:g}", f"{name}_count{tail} {self.count}"]
        return out


def parse(raw: Any, call_id: str, leg_id: str) -> dict[str, Any] | None:
    """A worker's ``quality`` field with the leg's summary (``loss_pct``,
    ``jitter_ms``) added; None (and one warning) when it is not what docs/ipc.md says."""
    if raw is None:
        return None  # the leg never had audio
    try:
        if not isinstance(raw, dict):
            raise TypeError(f"an object expected, got {type(raw).__name__}")
        q = dict(raw)
        for key in _NUMBERS:
            value = q[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{key}={value!r}")
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("leg quality ignored call_id=%s leg=%s: bad field %s", call_id, leg_id, exc)
        return None
    q["loss_pct"] = max(float(q["rx_loss_pct"]), float(q["tx_loss_pct"]))
    q["jitter_ms"] = float(q["rx_jitter_ms"])
    return q


class LineQuality:
    def __init__(self, ctx: FlowContext, warn_loss_pct: float = LOSS_WARN_PCT) -> None:
        self.ctx = ctx
        self.warn_loss_pct = warn_loss_pct
        self.loss: dict[str, Histogram] = {}  # by leg role
        self.jitter: dict[str, Histogram] = {}
        self.lossy = Counter[str]()  # legs over the threshold, by role
        self.packets = Counter[str]()  # RTP packets received and lost, by role
        self.lost = Counter[str]()
        self._ended: dict[tuple[str, str], tuple[Call, float]] = {}  # (worker, leg)

    # ------------------------------------------------------------ worker events
    def leg_ended(self, call: Call, leg: Leg, msg: dict[str, Any]) -> None:
        """A leg of a live call ended: keep and count its figures."""
        q = parse(msg.get("quality"), call.call_id, leg.leg_id)
        if q is not None:
            leg.quality = q
            self._count(call, leg, q)

    def call_ended(self, call: Call) -> None:
        """(A forget callable of CallEnding.) Wait a while for the legs still up."""
        now = time.monotonic()
        self._ended = {k: v for k, v in self._ended.items() if v[1] > now}
        for leg in call.legs:
            if leg.worker and leg.state != "disconnected":
                self._ended[(leg.worker, leg.leg_id)] = (call, now + LATE_S)

    def late_leg(self, worker: str, msg: dict[str, Any]) -> None:
        """The disconnected event of a leg whose call already ended: its figures go
        into the call's record, saved again."""
        if msg.get("event") != "leg.state" or msg.get("state") != "disconnected":
            return
        found = self._ended.pop((worker, str(msg.get("leg"))), None)
        if found is None:
            return
        call = found[0]
        leg = next((x for x in call.legs if x.leg_id == msg.get("leg")), None)
        if leg is None:
            return
        leg.state, leg.ended_at, leg.end_code = "disconnected", time.time(), msg.get("code")
        self.leg_ended(call, leg, msg)
        if leg.quality is not None:
            self.ctx.store.save_call(call.to_record())  # never raises (queued)

    # ------------------------------------------------------------ figures
    def _count(self, call: Call, leg: Leg, q: dict[str, Any]) -> None:
        role = leg.role
        self.loss.setdefault(role, Histogram(LOSS_BUCKETS_PCT)).observe(q["loss_pct"])
        self.jitter.setdefault(role, Histogram(JITTER_BUCKETS_MS)).observe(q["jitter_ms"])
        self.packets[role] += int(q["rx_packets"])
        self.lost[role] += int(q["rx_lost"])
        if q["loss_pct"] <= self.warn_loss_pct:
            return
        self.lossy[role] += 1
        log.warning("poor audio call_id=%s leg=%s role=%s peer=%s loss_pct=%.1f "
                    "jitter_ms=%.1f rx_packets=%s rx_lost=%s", call.call_id, leg.leg_id,
                    role, leg.peer, q["loss_pct"], q["jitter_ms"], q["rx_packets"],
                    q["rx_lost"])
        self.ctx.publish("call.quality", call, {
            "leg": leg.leg_id, "role": role, "worker": leg.worker,
            "loss_pct": q["loss_pct"], "jitter_ms": q["jitter_ms"],
            "rx_packets": int(q["rx_packets"]), "rx_lost": int(q["rx_lost"]),
            "threshold_pct": self.warn_loss_pct})

    def prometheus_lines(self) -> list[str]:
        """The families of /metrics (cti/metrics.py), by leg role."""
        out = ["# HELP cti_rtp_loss_percent Per ended leg: RTP packets lost (%, the worse "
               "direction).", "# TYPE cti_rtp_loss_percent histogram"]
        for role, h in sorted(self.loss.items()):
            out += h.lines("cti_rtp_loss_percent", f'role="{role}"')
        out += ["# HELP cti_rtp_jitter_milliseconds Per ended leg: interarrival jitter of "
                "the RTP received (mean, ms).", "# TYPE cti_rtp_jitter_milliseconds histogram"]
        for role, h in sorted(self.jitter.items()):
            out += h.lines("cti_rtp_jitter_milliseconds", f'role="{role}"')
        for name, help_, counts in (
                ("cti_rtp_packets_received", "RTP packets the workers received, by leg role.",
                 self.packets),
                ("cti_rtp_packets_lost", "RTP packets lost on their way to the workers.",
                 self.lost),
                ("cti_rtp_lossy_legs", f"Legs that lost more than {self.warn_loss_pct:g} % "
                 "(a call.quality event each).", self.lossy)):
            out += [f"# HELP {name} {help_}", f"# TYPE {name} counter"]
            out += [f'{name}_total{{role="{r}"}} {n}' for r, n in sorted(counts.items())]
        return out

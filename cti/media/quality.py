"""A leg's audio quality, read from pjsua2's stream statistics (RTCP / RTP counters).

What the far end sent us is judged here, on our side: ``rx`` loss is counted by
PJSIP from the RTP sequence numbers we received (no RTCP from the peer needed),
jitter is RFC 3550's interarrival jitter of those packets. ``tx`` loss and jitter
are what the peer's RTCP receiver reports said of our stream (0 when the peer
sends no RTCP). The figures are read once, as the leg ends, and go to the
controller in the leg's ``disconnected`` state event (docs/ipc.md).

pjsua tears a call's media down while the call ends, before the DISCONNECTED
callback, so each stream's figures are kept (``keep``) in ``onStreamDestroyed``,
the last moment the stream exists (called for our hangup, the far end's BYE and
a re-INVITE that replaces the stream). The event carries them merged.
"""

from __future__ import annotations

import logging
from typing import Any

import pjsua2 as pj

log = logging.getLogger("cti.media")

Quality = dict[str, Any]


def loss_pct(lost: int, received: int) -> float:
    """Lost packets as a percentage of those expected (received + lost)."""
    expected = lost + received
    return round(100.0 * lost / expected, 2) if expected > 0 else 0.0


def from_stat(stat: Any) -> Quality:
    """The figures the controller keeps, from a pj.StreamStat."""
    rx, tx = stat.rtcp.rxStat, stat.rtcp.txStat
    rx_pkt, rx_lost = int(rx.pkt), int(rx.loss)
    tx_pkt, tx_lost = int(tx.pkt), int(tx.loss)
    return {
        "rx_packets": rx_pkt,
        "rx_lost": rx_lost,
        "rx_loss_pct": loss_pct(rx_lost, rx_pkt),
        # jitterUsec: RFC 3550 interarrival jitter, mean over the RTCP intervals
        # and the worst of them; microseconds in, milliseconds out.
        "rx_jitter_ms": round(int(rx.jitterUsec.mean) / 1000, 2),
        "rx_jitter_max_ms": round(int(rx.jitterUsec.max) / 1000, 2),
        "rx_discard": int(rx.discard),
        "rx_reorder": int(rx.reorder),
        "tx_packets": tx_pkt,
        "tx_lost": tx_lost,  # from the peer's RTCP reports (0 without them)
        "tx_loss_pct": loss_pct(tx_lost, tx_pkt),
        "tx_jitter_ms": round(int(stat.rtcp.txStat.jitterUsec.mean) / 1000, 2),
        "rtt_ms": round(int(stat.rtcp.rttUsec.mean) / 1000, 2),
        "jb_lost": int(stat.jbuf.lost),  # frames the jitter buffer had to conceal
    }


def read(call: Any, media_index: int) -> Quality | None:
    """The leg's stream figures now; None when it has no audio stream (never had
    one, or pjsua already destroyed it)."""
    if call is None or media_index < 0:
        return None
    try:
        return from_stat(call.getStreamStat(media_index))
    except pj.Error:
        return None


def keep(leg: Any, call: Any, media_index: int) -> None:
    """Keep the figures of a stream about to end (a Leg of cti.media.model)."""
    q = read(call, media_index)
    if q is not None:
        leg.streams.append(q)


_SUMMED = ("rx_packets", "rx_lost", "rx_discard", "rx_reorder", "tx_packets", "tx_lost",
           "jb_lost")


def _weighted(parts: list[Quality], key: str, weight: str) -> float:
    total = sum(int(p[weight]) for p in parts)
    if total <= 0:
        return 0.0
    return round(sum(float(p[key]) * int(p[weight]) for p in parts) / total, 2)


def merge(parts: list[Quality]) -> Quality | None:
    """One leg's figures over its streams: counts summed, jitter and round trip
    averaged weighted by packets, the worst jitter kept; None without streams."""
    if not parts:
        return None
    q: Quality = {k: sum(int(p[k]) for p in parts) for k in _SUMMED}
    q["rx_loss_pct"] = loss_pct(q["rx_lost"], q["rx_packets"])
    q["tx_loss_pct"] = loss_pct(q["tx_lost"], q["tx_packets"])
    q["rx_jitter_ms"] = _weighted(parts, "rx_jitter_ms", "rx_packets")
    q["rx_jitter_max_ms"] = max(float(p["rx_jitter_max_ms"]) for p in parts)
    q["tx_jitter_ms"] = _weighted(parts, "tx_jitter_ms", "tx_packets")
    q["rtt_ms"] = _weighted(parts, "rtt_ms", "tx_packets")
    q["streams"] = len(parts)
    return q


def disconnected_fields(leg: Any) -> dict[str, Any]:
    """The ``quality`` field of a leg's disconnected event ({} when it never had audio)."""
    q = merge(leg.streams)
    leg.streams = []
    if q is None:
        return {}
    log.info("leg.quality leg=%s rx_packets=%s rx_loss_pct=%s rx_jitter_ms=%s tx_packets=%s",
             leg.id, q["rx_packets"], q["rx_loss_pct"], q["rx_jitter_ms"], q["tx_packets"])
    return {"quality": q}

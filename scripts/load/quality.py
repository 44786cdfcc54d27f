"""Audio quality of a run: every leg's RTP loss and jitter as the gateway's media
workers measured them (cti/media/quality.py), read from the call records in the
gateway's store once it stopped (each leg's ``quality`` in the calls' legs JSON).

The sample is every leg of the run that had audio: the callers' legs (the RTP SIPp
sent) and, in talks, the advisors' (the RTP the advisors' SIPp sent). ``lossy_pcap``
writes a caller's RTP with packets missing, a line that loses them (the tests).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from scripts.load.pcap import RtpWriter, _tone_frames, write_pcap
from scripts.load.sipp import percentile

LOSSY_PCT = 5.0  # as the gateway's warning (cti/controller/quality.py)


@dataclass
class QualitySample:
    loss_pct: list[float] = field(default_factory=list)  # one a leg with audio
    jitter_ms: list[float] = field(default_factory=list)
    roles: dict[str, int] = field(default_factory=dict)
    packets: int = 0  # RTP packets the workers received
    lost: int = 0
    without: int = 0  # legs that were answered but have no figures

    @property
    def legs(self) -> int:
        return len(self.loss_pct)

    @property
    def lossy(self) -> int:
        return sum(1 for v in self.loss_pct if v > LOSSY_PCT)

    def row(self) -> list[str]:
        """The report's lines (scripts/load/report.py)."""
        if not self.legs:
            return [f"| RTP loss / jitter | no leg figures ({self.without} answered legs "
                    "without) |"]
        roles = ", ".join(f"{r} {n}" for r, n in sorted(self.roles.items()))
        loss, jitter = self.loss_pct, self.jitter_ms
        overall = 100 * self.lost / (self.packets + self.lost) if self.packets else 0.0
        return [
            f"| RTP loss per leg ({self.legs} legs: {roles}) | p50 {percentile(loss, 50):.2f} %, "
            f"p99 {percentile(loss, 99):.2f} %, max {max(loss):.2f} %; "
            f"{self.lossy} legs over {LOSSY_PCT:g} %; {self.lost} of "
            f"{self.packets + self.lost} packets lost ({overall:.3f} %) |",
            f"| RTP jitter per leg (mean, received) | p50 {percentile(jitter, 50):.2f} ms, "
            f"p99 {percentile(jitter, 99):.2f} ms, max {max(jitter):.2f} ms |",
        ]


def from_store(path: Path) -> QualitySample:
    """Every leg's figures in the store's call records."""
    sample = QualitySample()
    if not path.exists():
        return sample
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT legs FROM calls").fetchall()
    for (legs_json,) in rows:
        for leg in json.loads(legs_json or "[]"):
            q = leg.get("quality")
            if not q:
                # an answered leg (it had a SIP Call-ID and ended) should have figures
                sample.without += 1 if leg.get("sip_call_id") and leg.get("ended_at") else 0
                continue
            sample.loss_pct.append(float(q["loss_pct"]))
            sample.jitter_ms.append(float(q["jitter_ms"]))
            sample.roles[leg["role"]] = sample.roles.get(leg["role"], 0) + 1
            sample.packets += int(q["rx_packets"])
            sample.lost += int(q["rx_lost"])
    return sample


def lossy_pcap(path: Path, seconds: float, drop_every: int, freq: float = 440.0) -> Path:
    """``seconds`` of a tone with every ``drop_every``-th RTP packet missing (their
    sequence numbers skipped): a line that loses 100/drop_every % of the packets."""
    rtp = RtpWriter(ssrc=0x1055)
    rtp.audio(0.0, _tone_frames(freq, seconds))
    kept = [p for i, p in enumerate(rtp.packets) if (i + 1) % drop_every]
    return write_pcap(path, kept)

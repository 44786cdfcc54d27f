"""G.711 µ-law RTP with RFC 2833 digits, written as a pcap for SIPp's play_pcap_audio.

SIPp replays the packets' payloads with their pcap timing to the remote party's SDP
address; the IP and UDP headers here only need to parse.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

RATE = 8000
PTIME_S = 0.02
SAMPLES = int(RATE * PTIME_S)  # 160 samples a packet
PCMU = 0
TELEPHONE_EVENT = 101  # the payload type the SIPp callers offer for RFC 2833
EVENT_PACKETS = 8  # a digit of 160 ms, then three end packets (RFC 4733 2.5.1.4)
DIGITS = "0123456789*#"


def _ulaw(sample: int) -> int:
    """One 16-bit linear sample to G.711 µ-law (ITU-T G.711, with the bias of 0x84)."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = max(0, magnitude.bit_length() - 8)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _tone_frames(freq: float, seconds: float) -> list[bytes]:
    """20 ms µ-law frames of a quiet sine (-12 dBFS): real audio, not digital silence."""
    count = int(seconds / PTIME_S)
    step = 2 * math.pi * freq / RATE
    return [bytes(_ulaw(int(8000 * math.sin(step * (i * SAMPLES + n))))
                 for n in range(SAMPLES)) for i in range(count)]


def _udp_packet(payload: bytes, sport: int = 6000, dport: int = 6000) -> bytes:
    ip_len = 20 + 8 + len(payload)
    ether = b"\x00" * 12 + b"\x08\x00"
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, ip_len, 0, 0, 64, 17, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    return ether + ip + udp + payload


class RtpWriter:
    """RTP packets of one stream, in order, each with its send time."""

    def __init__(self, ssrc: int = 0x10AD) -> None:
        self.ssrc = ssrc
        self.seq = 0
        self.timestamp = 0
        self.packets: list[tuple[float, bytes]] = []

    def _add(self, t: float, pt: int, ts: int, payload: bytes, marker: bool = False) -> None:
        header = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt,
                             self.seq & 0xFFFF, ts & 0xFFFFFFFF, self.ssrc)
        self.packets.append((t, header + payload))
        self.seq += 1

    def audio(self, t: float, frames: list[bytes]) -> float:
        for frame in frames:
            self._add(t, PCMU, self.timestamp, frame)
            self.timestamp += SAMPLES
            t += PTIME_S
        return t

    def digit(self, t: float, digit: str) -> float:
        """An RFC 2833 event: one timestamp, growing durations, three end packets."""
        event, start = DIGITS.index(digit), self.timestamp
        for i in range(1, EVENT_PACKETS + 1):
            end = 0x80 if i == EVENT_PACKETS else 0
            payload = struct.pack("!BBH", event, end | 10, i * SAMPLES)
            for _ in range(3 if end else 1):
                self._add(t, TELEPHONE_EVENT, start, payload, marker=i == 1)
            t += PTIME_S
        self.timestamp += EVENT_PACKETS * SAMPLES
        return t


def write_pcap(path: Path, packets: list[tuple[float, bytes]]) -> Path:
    """A classic pcap (Ethernet link type) of the RTP payloads at their times."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for t, rtp in packets:
        frame = _udp_packet(rtp)
        sec, usec = int(t), int(round((t - int(t)) * 1e6))
        out.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))
    return path


def caller_pcap(path: Path, seconds: float, digits: str, first_digit_s: float = 1.0,
                gap_s: float = 1.0, freq: float = 440.0) -> Path:
    """``seconds`` of a tone, with ``digits`` pressed from ``first_digit_s``, one a
    ``gap_s``: a caller walking the IVR's menus while talking."""
    rtp, t = RtpWriter(), 0.0
    frame = _tone_frames(freq, PTIME_S * 50)  # one second, repeated
    at = [first_digit_s + i * gap_s for i in range(len(digits))]
    for d, when in zip(digits, at, strict=True):
        while t + PTIME_S <= when:
            t = rtp.audio(t, frame[: max(1, min(len(frame), int((when - t) / PTIME_S)))])
        t = rtp.digit(t, d)
    while t < seconds:
        t = rtp.audio(t, frame[: max(1, min(len(frame), int((seconds - t) / PTIME_S)))])
    return write_pcap(path, rtp.packets)


def advisor_pcap(path: Path, seconds: float) -> Path:
    """``seconds`` of a lower tone: the advisor's voice."""
    rtp = RtpWriter(ssrc=0xAD71)
    rtp.audio(0.0, _tone_frames(330.0, seconds))
    return write_pcap(path, rtp.packets)

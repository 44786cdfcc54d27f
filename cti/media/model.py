"""Plain state of the engine: its configuration and one record per leg."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pjsua2 as pj

from cti.media.pjobjects import MediaCall, MediaPlayer


@dataclass
class EngineConfig:
    ident: str  # worker id or phone name, for logs and the ready event
    ip: str
    sip_port: int
    rtp_port: int
    rtp_range: int = 40
    user: str = "cti"  # user part of the local account URI
    pj_log_level: int = 1
    user_agent: str = "cti-media"
    # Seconds of an empty conference bridge before the null sound device (the
    # bridge clock) closes. -1 keeps it open: needed by a pure caller that sends
    # RTP/DTMF with nothing connected, but it ticks 50 times a second. A worker
    # always has a player or a bridge connected while it must send audio, so it
    # lets the clock stop when idle (idle CPU ~0.2 % -> ~0 % of a core).
    snd_auto_close_s: int = -1
    # A media worker: its main thread clocks the conference bridge, one wake-up
    # every 2 frames (40 ms) while media flows, none when idle (cti/media/pacing.py); no
    # sound device and no clock thread. False: the null device's clock thread.
    paced: bool = False
    # The machine's sound card (a softphone's advisor talks through it) when there
    # is one; False: always the null device (media workers, test phones).
    sound_device: bool = False
    # A media worker behind the edge: INVITEs must carry X-CTI-Edge with this
    # value (the edge adds it, and strips X-CTI-* from outside), others get 403
    # before anything is answered. Empty: every INVITE is taken (test phones).
    edge_secret: str = ""
    # Outbound proxy for every call this engine dials ("sip:<edge ip>:<port>"):
    # each leg then passes the edge, record-routed and dialog-tracked there.
    outbound_proxy: str = ""
    # A confirmed leg whose active, receiving audio stream got no RTP packet for
    # this many seconds is hung up (leg.state disconnected with cause
    # "rtp_timeout"). Legs on hold (sendonly/inactive) are exempt. 0: off.
    rtp_timeout_s: float = 0.0
    # RFC 4028 session timers on every call (pjsua "always": we refresh when the
    # peer does not; PJSIP ends a session not refreshed in time). 0: off.
    session_expires_s: int = 0
    # A phone that registers over TLS: the CA file (PEM) its TLS client checks
    # the server's certificate against. Empty: no TLS transport (workers).
    tls_ca_file: str = ""


@dataclass
class Leg:
    id: str
    call: MediaCall | None
    media_active: bool = False
    media_index: int = -1
    bridges: set[str] = field(default_factory=set)
    # One-way: the legs whose far end this leg's far end hears (``listen``: a
    # supervisor monitoring hears the caller and the advisor, who do not hear them).
    hears: set[str] = field(default_factory=set)
    player: MediaPlayer | None = None
    recorder: pj.AudioMediaRecorder | None = None
    # stereo recordings this leg feeds: rec_id -> side (0 left, 1 right)
    taps: dict[str, int] = field(default_factory=dict)
    # RTP inactivity (Engine._check_rtp): last rx packet count and when it changed.
    rx_packets: int = -1
    rx_seen_at: float = 0.0
    rx_expected: bool = False  # audio active and we are meant to receive (not on hold)
    end_cause: str = ""  # why the engine itself ended the leg ("rtp_timeout")
    # The figures of this leg's audio streams that ended (a re-INVITE, the far
    # end's BYE, just before our own hangup): cti/media/quality.py.
    streams: list[dict[str, Any]] = field(default_factory=list)

    def audio_media(self) -> pj.AudioMedia:
        """The leg's current conference port; only while the call is alive and active."""
        assert self.call is not None and self.media_active
        return self.call.getAudioMedia(self.media_index)

"""Frame pacing: a busy media worker wakes once every 2 frames (40 ms), not once a packet.

Why (measured, docs/benchmarks.md "Worker CPU"): RTP is read by the SIP poll,
so ``libHandleEvents`` returned for every RTP packet (50 a second a leg) and the
engine loop's Python work ran after each; the null sound device's clock thread
woke another 50 times a second to run the conference bridge, and the kernel
kept switching between the two threads. With 2 legs that was 150 wake-ups a
second for 100 frames of work.

While any leg has media, the Pacer instead, on the main thread:

- sleeps until the next 2 frames are due, or until the doorbell rings (a command,
  a player's EOF, a signal: the engine's ``ring`` sets our Event too);
- reads every packet and SIP message that arrived meanwhile in one
  ``libHandleEvents(0)`` pass (the jitter buffer takes a frame right after);
- runs the conference bridge once for each frame that is due: pjsua's "no sound
  device" mode, where the application clocks the bridge's master port.

One wake-up then does the work of 2 x (legs + 1), and there is no clock thread.
SIP and DTMF are handled up to 40 ms later than before.
With no media for ``TAIL_S`` the loop goes back to ``libHandleEvents(5000)``
and nothing ticks: an idle worker costs what it did.

pjsua2 has no binding for the master port (``AudDevManager.setNoDev`` drops
it), so the bridge is reached through the wheel's own exported C functions
with ctypes; when they are missing the engine keeps the null device's clock
thread (``arm_null_device``) and says so in its log.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
import time
from typing import Any

import pjsua2 as pj

log = logging.getLogger("cti.media")

CLOCK_RATE = 8000  # G.711 workers: the bridge at 8 kHz (16 kHz costs twice the CPU)
FRAME_MS = 20  # the bridge's ptime (medConfig.audioFramePtime, pjsua's default)
FRAME_S = FRAME_MS / 1000
TAIL_S = 1.0  # keep ticking this long after the last media (the bridge's queued
#               port removals run in a tick; mirrors sndAutoCloseTime 1 s)
FRAMES_PER_WAKE = 2  # frames run per wake-up: a wake-up costs more than the frames' work
MAX_CATCH_UP = 5  # frames run back to back after a late wake-up (a loaded machine)
MAX_POLLS = 8  # libHandleEvents(0) passes a frame while each still finds events


class _Frame(ctypes.Structure):
    """struct pjmedia_frame (pjmedia/frame.h, pjproject 2.15)."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("buf", ctypes.c_void_p),
        ("size", ctypes.c_size_t),
        ("timestamp", ctypes.c_uint64),
        ("bit_info", ctypes.c_uint32),
    ]


class BridgeUnavailable(Exception):
    """The wheel does not export what clocking the bridge needs."""


def _load_lib() -> ctypes.CDLL:
    try:
        from pjsua2 import _pjsua2

        lib = ctypes.CDLL(_pjsua2.__file__)  # the loaded extension: same handle
        lib.pjsua_set_no_snd_dev.restype = ctypes.c_void_p
        lib.pjsua_set_no_snd_dev.argtypes = []
        lib.pjmedia_port_get_frame.restype = ctypes.c_int
        lib.pjmedia_port_get_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Frame)]
    except (ImportError, OSError, AttributeError) as exc:
        raise BridgeUnavailable(str(exc)) from exc
    return lib


class Pacer:
    """Clocks the conference bridge from the main thread, one poll a frame."""

    def __init__(self, clock_rate: int, channels: int = 1) -> None:
        self._lib = _load_lib()
        samples = clock_rate * FRAME_MS // 1000 * channels
        self._samples = samples
        self._buf = ctypes.create_string_buffer(samples * 2)
        self._frame = _Frame()
        self._port: int | None = None
        # The doorbell: a plain lock held while nobody rang. acquire(timeout) is one
        # futex wait; an Event's Condition costs twice the CPU a wake-up here.
        self._bell = threading.Lock()
        self._bell.acquire()
        self._next = 0.0  # monotonic time of the next frame; 0: not ticking
        self._last_busy = -TAIL_S
        self._ts = 0
        self.ticks = 0  # frames run (tests, logs)
        self.late = 0  # frames run late or dropped after a late wake-up

    def attach(self) -> None:
        """Take the bridge off any sound device (after libStart, main thread)."""
        port = self._lib.pjsua_set_no_snd_dev()
        if not port:
            raise BridgeUnavailable("pjsua_set_no_snd_dev returned no master port")
        self._port = port

    def wake(self) -> None:
        """Any thread: end the current frame's sleep early (the doorbell)."""
        with contextlib.suppress(RuntimeError):  # rung already: released once is enough
            self._bell.release()

    @property
    def ticking(self) -> bool:
        return self._next > 0.0

    def poll(self, ep: pj.Endpoint, busy: bool, limit_ms: int) -> None:
        """One pass of the engine loop's poll (main thread).

        ``busy``: a leg has media or a recording runs. ``limit_ms``: the
        longest the engine may wait (0: commands are queued).
        """
        now = time.monotonic()
        if busy:
            self._last_busy = now
        elif now - self._last_busy > TAIL_S:
            self._next = 0.0
            ep.libHandleEvents(limit_ms)  # idle: block in the SIP poll
            return
        if not self._next:
            self._next = now  # first frame at once
        # Sleep until the last frame of this batch is due; earlier ones run late,
        # within the batch (the jitter buffers hold them; RTP leaves in pairs).
        wait = min(self._next + (FRAMES_PER_WAKE - 1) * FRAME_S - now, limit_ms / 1000)
        # Held again after this, before the engine drains its queue: no ring is lost.
        self._bell.acquire(timeout=wait) if wait > 0 else self._bell.acquire(False)
        for _ in range(MAX_POLLS):
            if ep.libHandleEvents(0) <= 0:
                break
        self._tick_due()

    def _tick_due(self) -> None:
        now = time.monotonic()
        done = 0
        while self._next <= now and done < MAX_CATCH_UP:
            self._tick()
            self._next += FRAME_S
            done += 1
        if done > FRAMES_PER_WAKE:
            self.late += done - FRAMES_PER_WAKE
        if self._next <= now:  # still behind (overload): skip, do not burst
            self.late += int((now - self._next) / FRAME_S) + 1
            self._next = now + FRAME_S

    def _tick(self) -> None:
        frame = self._frame
        frame.type = 0  # as pjmedia's master port: the bridge sets it
        frame.buf = ctypes.addressof(self._buf)
        frame.size = self._samples * 2
        frame.timestamp = self._ts
        frame.bit_info = 0
        self._lib.pjmedia_port_get_frame(self._port, ctypes.byref(frame))
        self._ts += self._samples
        self.ticks += 1


def arm_null_device(ep: pj.Endpoint, auto_close_s: int, parked: list[tuple[float, Any]]) -> None:
    """Unpaced engines: let an idle engine's bridge clock stop (snd_auto_close_s).

    setNullDev() opens the device at once, and pjsua arms its auto-close
    timer only when a connection to the device is removed: connect and
    disconnect a silent tone generator once so the idle clock stops. The
    generator is freed by the engine's parked list (main thread).
    """
    if auto_close_s < 0:
        return
    tone = pj.ToneGenerator()
    tone.createToneGenerator(8000, 1)
    sink = ep.audDevManager().getPlaybackDevMedia()
    tone.startTransmit(sink)
    tone.stopTransmit(sink)
    parked.append((time.monotonic() + 0.2, tone))


def media_busy(engine: Any) -> bool:
    """Must the bridge tick: a leg has media (RTP, DTMF to send) or a recording runs."""
    return bool(engine.recordings) or any(leg.media_active for leg in engine.legs.values())


def attach_pacer(clock_rate: int) -> Pacer | None:
    """A Pacer on the bridge, or None (and a warning) when the wheel cannot."""
    try:
        pacer = Pacer(clock_rate)
        pacer.attach()
    except BridgeUnavailable as exc:
        log.warning("bridge pacing unavailable (%s): the null device's clock thread instead", exc)
        return None
    log.info("bridge paced by the main thread: one wake-up every %d ms while media flows",
             FRAME_MS * FRAMES_PER_WAKE)
    return pacer

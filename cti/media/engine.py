"""The PJSIP media engine: one process, one pjsua2 endpoint, up to 4 calls.

Threading model (see /work/shared/design/pjsua2.md, "A worker loop that costs
nothing when idle"): the main thread is the ONLY thread that calls pjsua2. It
blocks in ``libHandleEvents(5000)`` (SIP and RTP share one poll: no media
ioqueue), runs the queued commands, frees parked objects; a worker with media
wakes once every 40 ms instead and clocks the bridge itself (pacing.py). Other
threads only queue work and ring the "doorbell": a ``\\r\\n\\r\\n`` UDP datagram
(a SIP keep-alive PJSIP drops) to our SIP port: libHandleEvents returns at once.
"""

from __future__ import annotations

import contextlib
import gc
import hmac
import logging
import os
import queue
import socket
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

import pjsua2 as pj

from cti.media import protocol as P
from cti.media import quality
from cti.media.commands import PLAYER_GRACE_S, CommandError, Commands
from cti.media.model import EngineConfig, Leg
from cti.media.pacing import CLOCK_RATE, Pacer, arm_null_device, attach_pacer, media_busy
from cti.media.pjconfig import MAX_CALLS, account_config, endpoint_config
from cti.media.pjobjects import MediaAccount, MediaCall, MediaEndpoint, release
from cti.media.recording import Recording
from cti.media.sipmsg import parse_headers
from cti.media.sound import NULL_DEVICE, choose_sound

log = logging.getLogger("cti.media")

POLL_MS = 5000  # idle poll; the doorbell wakes us for anything else
DOORBELL = b"\r\n\r\n"
# Every call opens 2 RTP/RTCP sockets in PJSIP's select() ioqueue (64 keys; SIP
# uses ~6). A closed socket's key is only reusable 500 ms later, and running
# out is an assert (process abort), not an error: cap call starts per window.
CALL_RATE_WINDOW_S = 0.6
MAX_CALL_STARTS = 20
RTP_CHECK_S = 1.0  # how often confirmed legs' rx packet counts are looked at
CAUSE_RTP_TIMEOUT = "rtp_timeout"

Emit = Callable[[dict[str, Any]], None]

_STATES = {
    pj.PJSIP_INV_STATE_CALLING: P.STATE_CALLING,
    pj.PJSIP_INV_STATE_INCOMING: P.STATE_INCOMING,
    pj.PJSIP_INV_STATE_EARLY: P.STATE_EARLY,
    pj.PJSIP_INV_STATE_CONNECTING: P.STATE_CONNECTING,
    pj.PJSIP_INV_STATE_CONFIRMED: P.STATE_CONFIRMED,
    pj.PJSIP_INV_STATE_DISCONNECTED: P.STATE_DISCONNECTED,
}
_DTMF_METHODS = {pj.PJSUA_DTMF_METHOD_RFC2833: P.DTMF_RFC2833, pj.PJSUA_DTMF_METHOD_SIP_INFO: P.DTMF_INFO}
_AUDIO_UP = (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD)
_CODEC_PRIORITIES = {"PCMU/8000": 255, "PCMA/8000": 254, "G722/16000": 253}
# The edge's proof that an INVITE came through it (lower case: parse_headers).
EDGE_HEADER = "x-cti-edge"


class Engine(Commands):
    def __init__(self, cfg: EngineConfig, emit: Emit) -> None:
        self.cfg = cfg
        self._emit_raw = emit
        self._ep: MediaEndpoint | None = None
        self._local_acc: MediaAccount | None = None
        self._reg_acc: MediaAccount | None = None
        self.legs: dict[str, Leg] = {}
        self.audio = NULL_DEVICE  # which sound device (choose_sound at start)
        self.recordings: dict[str, Recording] = {}
        self._queue: queue.SimpleQueue[dict[str, Any] | Callable[[], None]] = queue.SimpleQueue()
        self._parked: list[tuple[float, Any]] = []  # (free-after monotonic time, pjsua2 obj)
        self._stopping = False
        self._call_starts: deque[float] = deque()  # monotonic times of dials/incoming
        self._udp_transport = -1  # pjsua transport id of our SIP UDP socket
        self._last_rtp_check = 0.0
        self._pacer: Pacer | None = None  # clocks the bridge when cfg.paced (pacing.py)
        self._bell = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._bell_addr = ("127.0.0.1" if cfg.ip in ("0.0.0.0", "") else cfg.ip, cfg.sip_port)

    # ------------------------------------------------------------ any thread
    def emit(self, name: str, **fields: Any) -> None:
        """Send an event (thread-safe: the sink serialises writes)."""
        self._emit_raw(P.event(name, **fields))

    def submit(self, msg: dict[str, Any]) -> None:
        """Queue a protocol command for the main thread."""
        self._queue.put(msg)
        self.ring()

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Queue an internal action for the main thread."""
        self._queue.put(fn)
        self.ring()

    def request_shutdown(self) -> None:
        """Stop the loop (no cmd.result): socket closed, EOF, or a signal."""
        self.call_soon(self._set_stopping)

    def ring(self) -> None:
        try:
            self._bell.sendto(DOORBELL, self._bell_addr)
            if self._pacer is not None:
                self._pacer.wake()  # a paced loop sleeps in Python, not in the SIP poll
        except OSError as exc:  # nothing useful to do: next poll (<= 5 s) picks it up
            log.warning("doorbell failed: %s", exc)

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Create the endpoint, transports and the local account (main thread)."""
        ep = MediaEndpoint(self)
        self._ep = ep
        try:
            ep.libCreate()
            ep.libInit(endpoint_config(self.cfg))
            self._create_transports()
            ep.libStart()
            # Workers clock the bridge themselves (pacing.py); else the null device or sound card.
            self._pacer = attach_pacer(CLOCK_RATE) if self.cfg.paced else None
            if self._pacer is None:
                self.audio = choose_sound(ep.audDevManager(), self.cfg.sound_device)
                arm_null_device(ep, self.cfg.snd_auto_close_s, self._parked)
            self._set_codec_priorities()
            self._local_acc = self._create_local_account()
        except Exception:
            self._destroy()
            raise
        log.info("engine started ip=%s sip_port=%s rtp=%s+%s", self.cfg.ip, self.cfg.sip_port,
                 self.cfg.rtp_port, self.cfg.rtp_range)

    def ready_event(self) -> None:
        self.emit(P.EV_READY, worker=self.cfg.ident, pid=os.getpid(), sip_port=self.cfg.sip_port,
                  max_calls=MAX_CALLS, protocol=P.PROTOCOL_VERSION, audio=self.audio)

    def run(self) -> int:
        """Main loop until shutdown; returns the process exit code."""
        assert self._ep is not None
        # Python's cyclic GC may run on any thread and free pjsua2 objects there
        # (abort): only collect here. Startup objects frozen: 15 ms a collection -> 0.
        gc.disable()
        gc.freeze()
        last_gc = time.monotonic()
        try:
            while not self._stopping:
                if self._pacer is None:
                    self._ep.libHandleEvents(self._poll_ms())
                else:  # one wake-up every 2 frames while media flows
                    self._pacer.poll(self._ep, media_busy(self), self._poll_ms())
                # Free due objects first: a Call dropped in this poll releases its
                # pjsua slot before a queued dial needs it (else PJ_ETOOMANY).
                self._free_parked()
                self._drain()
                self._free_parked()
                self._check_rtp()
                if time.monotonic() - last_gc > 30:
                    gc.collect()
                    last_gc = time.monotonic()
        except Exception:
            log.exception("main loop failed")
            return 1
        finally:
            self._shutdown()
        return 0

    def _create_transports(self) -> None:
        assert self._ep is not None
        for kind in (pj.PJSIP_TRANSPORT_UDP, pj.PJSIP_TRANSPORT_TCP):
            tc = pj.TransportConfig()
            tc.port = self.cfg.sip_port
            tc.boundAddress = self.cfg.ip
            tid = self._ep.transportCreate(kind, tc)
            if kind == pj.PJSIP_TRANSPORT_UDP:
                self._udp_transport = tid
        if self.cfg.tls_ca_file:
            # Client side only: any local port; the edge's certificate must chain to
            # the CA and name the address dialled (PJSIP checks both).
            tc = pj.TransportConfig()
            tc.boundAddress = self.cfg.ip
            tc.tlsConfig.CaListFile = self.cfg.tls_ca_file
            tc.tlsConfig.method = pj.PJSIP_TLSV1_2_METHOD
            tc.tlsConfig.verifyServer = True
            self._ep.transportCreate(pj.PJSIP_TRANSPORT_TLS, tc)

    def _set_codec_priorities(self) -> None:
        assert self._ep is not None
        for codec, prio in _CODEC_PRIORITIES.items():
            try:
                self._ep.codecSetPriority(codec, prio)
            except pj.Error as exc:
                log.warning("codec=%s priority not set: %s", codec, exc.reason)

    def _account_config(self, id_uri: str) -> pj.AccountConfig:
        return account_config(self.cfg, id_uri)

    def _create_local_account(self) -> MediaAccount:
        acc = MediaAccount(self, self.cfg.user)
        acfg = self._account_config(f"sip:{self.cfg.user}@{self.cfg.ip}:{self.cfg.sip_port}")
        if self.cfg.outbound_proxy:
            # Every dial goes to the edge (a Route header); the R-URI stays the target.
            acfg.sipConfig.proxies.append(self.cfg.outbound_proxy + ";lr")
            # The edge knows a worker by the source IP:port of its SIP UDP socket.
            # PJSIP sends a request over 1300 bytes by TCP instead (RFC 3261
            # 18.1.1), from a random port: the edge would take it for an outsider
            # (seen: a consult INVITE got 407). Pin the account to UDP.
            acfg.sipConfig.transportId = self._udp_transport
        acc.create(acfg, True)
        return acc

    # ------------------------------------------------------------ main loop
    def _poll_ms(self) -> int:
        if not self._queue.empty():
            return 0
        limit = POLL_MS
        if self._watching_rtp():
            limit = int(RTP_CHECK_S * 1000)
        if not self._parked:
            return limit
        due = min(t for t, _ in self._parked) - time.monotonic()
        return max(1, min(limit, int(due * 1000) + 1))

    def _watching_rtp(self) -> bool:
        return self.cfg.rtp_timeout_s > 0 and any(leg.rx_expected for leg in self.legs.values())

    def _check_rtp(self) -> None:
        """Hang up legs that received no RTP for cfg.rtp_timeout_s (main thread).

        PJSIP has no RTP inactivity timeout of its own: once a second look at each
        receiving leg's rx packet count. A leg on hold (sendonly/inactive: no
        audio expected) is not watched; its clock restarts when audio resumes.
        """
        now = time.monotonic()
        if not self._watching_rtp() or now - self._last_rtp_check < RTP_CHECK_S:
            return
        self._last_rtp_check = now
        for leg in list(self.legs.values()):
            call = leg.call
            if not leg.rx_expected or call is None or leg.end_cause or not call.isActive():
                continue
            try:
                packets = int(call.getStreamStat(leg.media_index).rtcp.rxStat.pkt)
            except pj.Error:
                continue  # no stream (being rebuilt): next time
            if packets != leg.rx_packets:
                leg.rx_packets, leg.rx_seen_at = packets, now
                continue
            if now - leg.rx_seen_at < self.cfg.rtp_timeout_s:
                continue
            log.warning("leg=%s no RTP for %.0fs (%d packets in all): hanging up", leg.id,
                        now - leg.rx_seen_at, packets)
            leg.end_cause = CAUSE_RTP_TIMEOUT
            try:
                call.hangup(self._op(0))
            except pj.Error as exc:
                log.warning("leg=%s hangup after RTP timeout failed: %s", leg.id, exc.reason)

    def _drain(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if callable(item):
                try:
                    item()
                except Exception:
                    log.exception("internal action failed")
            else:
                self._execute(item)

    def _park(self, obj: Any, delay: float = 0.0) -> None:
        """Free a pjsua2 object later, on the main thread, never in a callback."""
        self._parked.append((time.monotonic() + delay, obj))

    def _free_parked(self) -> None:
        if not self._parked:
            return
        now = time.monotonic()
        keep = [(t, o) for t, o in self._parked if t > now]
        if len(keep) != len(self._parked):
            for obj in [o for t, o in self._parked if t <= now]:
                release(obj)  # a Call whose slot was reused is kept, not destroyed
            self._parked = keep  # the last references go here: freed on this thread
            gc.collect(0)  # cheap safety net; pjsua2 objects are kept out of cycles

    def _set_stopping(self) -> None:
        self._stopping = True

    # ------------------------------------------------------------ commands
    def _execute(self, msg: dict[str, Any]) -> None:
        cmd, cid = msg.get("cmd"), msg.get("id")
        handler = getattr(self, f"_cmd_{cmd}", None) if cmd in P.COMMANDS else None
        if self._stopping and cmd != P.CMD_SHUTDOWN:
            self._emit_raw(P.result(cid, False, "shutting down"))
            return
        if handler is None:
            self._emit_raw(P.result(cid, False, f"unknown command {cmd!r}"))
            return
        try:
            extra = handler(msg) or {}
        except CommandError as exc:
            self._fail(cid, cmd, str(exc))
        except pj.Error as exc:
            self._fail(cid, cmd, f"{exc.reason} [status={exc.status}] ({exc.title})")
        except KeyError as exc:
            self._fail(cid, cmd, f"missing field {exc}")
        except (TypeError, ValueError) as exc:
            self._fail(cid, cmd, f"bad field: {exc}")
        except Exception as exc:  # a bug: keep the engine alive, report it
            log.exception("cmd=%s id=%s crashed", cmd, cid)
            self._fail(cid, cmd, f"internal error: {exc!r}")
        else:
            self._emit_raw(P.result(cid, True, **extra))

    def _fail(self, cid: Any, cmd: Any, error: str) -> None:
        log.warning("cmd=%s id=%s failed: %s", cmd, cid, error)
        self._emit_raw(P.result(cid, False, error))

    def _check_call_rate(self) -> None:
        """Refuse a dial that could exhaust the ioqueue (see MAX_CALL_STARTS)."""
        now = time.monotonic()
        while self._call_starts and now - self._call_starts[0] > CALL_RATE_WINDOW_S:
            self._call_starts.popleft()
        if len(self._call_starts) >= MAX_CALL_STARTS:
            raise CommandError(f"call rate limit: {MAX_CALL_STARTS} calls started in "
                               f"{CALL_RATE_WINDOW_S}s")
        self._call_starts.append(now)

    # ------------------------------------------------------------ media helpers
    def _connect_media(self, leg: Leg) -> None:
        """(Re)apply everything the leg should hear/say; the stream may be new."""
        if not leg.media_active or leg.call is None:
            return
        am = leg.audio_media()
        if leg.player is not None:
            leg.player.startTransmit(am)
        if leg.recorder is not None:
            am.startTransmit(leg.recorder)
        for rec_id, side in leg.taps.items():
            rec = self.recordings.get(rec_id)
            if rec is not None and not rec.paused and rec.recorders[side] is not None:
                am.startTransmit(rec.recorders[side])
        for peer_id in sorted(leg.bridges):
            peer = self.legs.get(peer_id)
            if peer is not None and peer.media_active and peer.call is not None:
                pm = peer.audio_media()
                am.startTransmit(pm)
                pm.startTransmit(am)
        # One-way links (listen), both those into this leg and out of it: a new
        # stream (hold, re-INVITE) has a new bridge port.
        for other in list(self.legs.values()):
            if other is leg or not other.media_active or other.call is None:
                continue
            if other.id in leg.hears:
                other.audio_media().startTransmit(am)
            if leg.id in other.hears:
                am.startTransmit(other.audio_media())

    def _stop_player(self, leg: Leg, call_alive: bool = True) -> None:
        player, leg.player = leg.player, None
        if player is None:
            return
        player.stopped = True
        if call_alive and leg.media_active and leg.call is not None:
            try:
                player.stopTransmit(leg.audio_media())
            except pj.Error as exc:
                log.warning("leg=%s stopTransmit(player) failed: %s", leg.id, exc.reason)
        self._park(player, PLAYER_GRACE_S)  # an EOF callback may still be pending

    def _stop_recorder(self, leg: Leg, call_alive: bool = True) -> None:
        rec, leg.recorder = leg.recorder, None
        if rec is None:
            return
        if call_alive and leg.media_active and leg.call is not None:
            try:
                leg.audio_media().stopTransmit(rec)
            except pj.Error as exc:
                log.warning("leg=%s stopTransmit(recorder) failed: %s", leg.id, exc.reason)
        self._park(rec)  # deleting it finalises the WAV header

    def _player_finished(self, leg_id: str, play_id: str) -> None:
        leg = self.legs.get(leg_id)
        if leg is not None and leg.player is not None and leg.player.play_id == play_id:
            self._stop_player(leg)

    # ------------------------------------------------------------ callbacks
    def on_incoming_call(self, acc: MediaAccount, prm: Any) -> None:
        leg_id = uuid.uuid4().hex
        call = MediaCall(self, acc, leg_id, prm.callId)
        headers = parse_headers(prm.rdata.wholeMsg)
        refused = 503 if self._stopping else self._refuse_code(headers, prm.rdata.srcAddress)
        if refused:
            # Before any answer (pjsua only sent 100 Trying): no leg, no event.
            if call.isActive():
                call.hangup(self._op(refused))
            self._park(call)
            return
        headers.pop(EDGE_HEADER, None)  # the secret goes no further than this check
        self.legs[leg_id] = Leg(leg_id, call)
        self._call_starts.append(time.monotonic())
        ci = call.getInfo()
        log.info("incoming leg=%s from=%s call_id=%s", leg_id, ci.remoteUri, ci.callIdString)
        # from/to without tags; the raw header values are in headers
        self.emit(P.EV_LEG_INCOMING, leg=leg_id, **{"from": ci.remoteUri}, to=ci.localUri,
                  sip_call_id=ci.callIdString,
                  headers=headers, source=prm.rdata.srcAddress)

    def _refuse_code(self, headers: dict[str, str], source: str) -> int:
        """403 for an INVITE that did not come through the edge (when we are behind one)."""
        secret = self.cfg.edge_secret
        if not secret:
            return 0
        given = headers.get(EDGE_HEADER, "")
        if hmac.compare_digest(given.encode(), secret.encode()):
            return 0
        log.warning("incoming INVITE from %s without the edge's secret: 403", source)
        return 403

    def on_call_state(self, call: MediaCall) -> None:
        ci = call.getInfo()
        state = _STATES.get(ci.state, str(ci.stateText).lower())
        log.info("leg.state leg=%s state=%s code=%s reason=%s", call.leg_id, state,
                 ci.lastStatusCode, ci.lastReason)
        leg = self.legs.get(call.leg_id)
        if leg is None:
            return  # refused in on_incoming_call (already parked): never announced
        extra: dict[str, Any] = {"cause": leg.end_cause} if leg.end_cause else {}
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            extra.update(quality.disconnected_fields(leg))
        self.emit(P.EV_LEG_STATE, leg=call.leg_id, state=state, code=ci.lastStatusCode,
                  reason=ci.lastReason, sip_call_id=ci.callIdString, **extra)
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self._leg_gone(call)

    def _leg_gone(self, call: MediaCall) -> None:
        """The call is dead: forget the leg, park everything (never touch its media)."""
        leg = self.legs.pop(call.leg_id, None)
        self._park(call)  # last reference dropped in the main loop, not in this callback
        if leg is None:
            return
        was_active, leg.media_active = leg.media_active, False
        for peer in self.legs.values():
            peer.bridges.discard(leg.id)
            peer.hears.discard(leg.id)
        leg.bridges.clear()
        leg.hears.clear()
        # A recording ends with its caller's leg (the others, alive, are untapped;
        # PJSIP already took the dead call's port out of the bridge); another leg
        # leaving (an advisor who transferred) just stops feeding it.
        for rec_id in list(leg.taps):
            rec = self.recordings.get(rec_id)
            if rec is None:
                continue
            if rec.legs[0] == leg.id:
                self._finish_recording(rec)
            elif leg.id in rec.legs:
                rec.legs.remove(leg.id)
        leg.taps.clear()
        self._stop_player(leg, call_alive=False)
        self._stop_recorder(leg, call_alive=False)
        leg.call = None
        if was_active:
            self.emit(P.EV_LEG_MEDIA, leg=leg.id, active=False)

    def on_call_media_state(self, call: MediaCall) -> None:
        leg = self.legs.get(call.leg_id)
        if leg is None:
            return
        ci = call.getInfo()  # keep it in a local: iterating a temporary's media is a use-after-free
        index = -1
        for i, mi in enumerate(ci.media):
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status in _AUDIO_UP:
                index = i
                break
        was_active = leg.media_active
        leg.media_active, leg.media_index = index >= 0, index
        # A new stream starts counting at 0; on hold nothing need arrive.
        mi = ci.media[index] if index >= 0 else None
        leg.rx_expected = bool(mi is not None and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE
                               and mi.dir & pj.PJMEDIA_DIR_DECODING)
        leg.rx_packets, leg.rx_seen_at = 0, time.monotonic()
        self._connect_media(leg)
        if was_active != leg.media_active:
            log.info("leg.media leg=%s active=%s", leg.id, leg.media_active)
            self.emit(P.EV_LEG_MEDIA, leg=leg.id, active=leg.media_active)

    def on_stream_destroyed(self, call: MediaCall, index: int) -> None:
        """Its statistics are still readable (also on our own hangup): keep them."""
        leg = self.legs.get(call.leg_id)
        if leg is not None:
            quality.keep(leg, call, index)

    def on_dtmf_digit(self, call: MediaCall, prm: Any) -> None:
        method = _DTMF_METHODS.get(prm.method, str(prm.method))
        log.info("leg.dtmf leg=%s digit=%s method=%s", call.leg_id, prm.digit, method)
        self.emit(P.EV_LEG_DTMF, leg=call.leg_id, digit=prm.digit, method=method)

    def on_player_eof(self, leg_id: str, play_id: str, loop: bool, stopped: bool) -> None:
        """On a PJSIP thread: emit and hand the cleanup to the main thread."""
        if loop or stopped:
            return
        self.emit(P.EV_PLAY_DONE, leg=leg_id, play_id=play_id)
        self.call_soon(partial(self._player_finished, leg_id, play_id))

    def on_reg_state(self, acc: MediaAccount, prm: Any) -> None:
        info = acc.getInfo()
        if prm.expiration == 0 or prm.code >= 300:
            acc.unregistering = False
        log.info("reg.state user=%s code=%s reason=%s active=%s", acc.user, prm.code,
                 prm.reason, info.regIsActive)
        self.emit(P.EV_REG_STATE, user=acc.user, code=prm.code, reason=prm.reason,
                  active=bool(info.regIsActive), expires=prm.expiration)

    def on_rejected_incoming(self, prm: Any) -> None:
        code, reason = getattr(prm, "statusCode", 0), getattr(prm, "reason", "")
        log.warning("incoming call rejected by pjsua code=%s reason=%s", code, reason)
        self.emit(P.EV_ERROR, message=f"incoming call rejected: {code} {reason}")

    # ------------------------------------------------------------ shutdown
    def _poll_for(self, seconds: float, until: Callable[[], bool]) -> None:
        assert self._ep is not None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not until():
            self._ep.libHandleEvents(20)

    def _shutdown(self) -> None:
        """Hang up, unregister, drop every pjsua2 reference, then libDestroy."""
        if self._ep is None:
            return
        self._stopping = True
        log.info("shutdown legs=%d", len(self.legs))
        try:
            self._ep.hangupAllCalls()
            if self._reg_acc is not None and self._reg_acc.getInfo().regIsActive:
                self._reg_acc.unregistering = True
                self._reg_acc.setRegistration(False)
        except pj.Error as exc:
            log.warning("shutdown: %s", exc.reason)
        self._poll_for(1.0, self._quiet)
        self._drain()  # answer queued commands ("shutting down")
        self._destroy()
        log.info("shutdown done")

    def _quiet(self) -> bool:
        reg = self._reg_acc
        return not self.legs and not (reg is not None and reg.unregistering)

    def _destroy(self) -> None:
        ep = self._ep
        if ep is None:
            return
        for leg in list(self.legs.values()):
            leg.player = leg.recorder = leg.call = None
        self.legs.clear()
        for rec in self.recordings.values():
            rec.recorders, rec.silence = [None, None], None
        self.recordings.clear()
        self._parked.clear()
        self._local_acc = self._reg_acc = None
        # A traceback kept by the interpreter would free pjsua2 objects after libDestroy.
        sys.last_type = sys.last_value = sys.last_traceback = None
        if hasattr(sys, "last_exc"):
            sys.last_exc = None
        gc.unfreeze()  # run() froze the startup objects: they go now, before libDestroy
        gc.collect()
        with contextlib.suppress(pj.Error):
            ep.libHandleEvents(100)
        ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
        self._ep = None
        gc.enable()

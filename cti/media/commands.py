"""The protocol commands of the Engine (a mixin: split out of engine.py for size).

Each ``_cmd_<name>`` runs on the main thread (the only pjsua2 thread), takes
the decoded message and returns None or extra cmd.result fields. Raising
CommandError / pj.Error / KeyError turns into ``cmd.result ok:false``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import pjsua2 as pj

from cti.media import protocol as P
from cti.media.model import EngineConfig, Leg
from cti.media.pjobjects import EngineHooks, MediaAccount, MediaCall, MediaEndpoint, MediaPlayer
from cti.media.recording import (
    LEFT,
    RIGHT,
    Recording,
    create_private,
    finish_in_thread,
    write_silence,
)

PLAYER_GRACE_S = 0.2  # destroy a stopped player >= 100 ms later (pjproject #4812)
PJ_ETOOMANY = 70010  # pj_status_t: every pjsua call slot is taken
DIAL_SLOT_RETRIES = 20  # x 10 ms: how long a dial waits for a slot being released
DIAL_SLOT_WAIT_MS = 10

log = logging.getLogger("cti.media")


class CommandError(Exception):
    """A command that cannot run (reported as cmd.result ok:false)."""


class Commands(EngineHooks):
    # provided by Engine (and the callbacks of EngineHooks, so that the pjsua2
    # objects made here can call the engine back)
    cfg: EngineConfig
    legs: dict[str, Leg]
    recordings: dict[str, Recording]
    _ep: MediaEndpoint | None
    _local_acc: MediaAccount | None
    _reg_acc: MediaAccount | None
    _stopping: bool

    def _connect_media(self, leg: Leg) -> None: ...
    def _stop_player(self, leg: Leg, call_alive: bool = True) -> None: ...
    def _stop_recorder(self, leg: Leg, call_alive: bool = True) -> None: ...
    def _account_config(self, id_uri: str) -> pj.AccountConfig: ...
    def _check_call_rate(self) -> None: ...
    def _free_parked(self) -> None: ...
    def emit(self, name: str, **fields: Any) -> None: ...
    def call_soon(self, fn: Callable[[], None]) -> None: ...
    def _park(self, obj: Any, delay: float = 0.0) -> None: ...

    def _leg(self, leg_id: Any) -> Leg:
        leg = self.legs.get(str(leg_id))
        if leg is None or leg.call is None:
            raise CommandError("unknown leg")
        return leg

    def _leg_call(self, leg_id: Any) -> tuple[Leg, MediaCall]:
        """A leg and its call, for the commands that act on the call."""
        leg = self._leg(leg_id)
        assert leg.call is not None  # _leg() checked it
        return leg, leg.call

    @staticmethod
    def _op(code: int = 0, headers: dict[str, Any] | None = None) -> pj.CallOpParam:
        op = pj.CallOpParam(True)
        op.statusCode = code
        for name, value in (headers or {}).items():
            h = pj.SipHeader()
            h.hName = str(name)
            h.hValue = str(value)
            op.txOption.headers.append(h)
        return op

    def _cmd_answer(self, msg: dict[str, Any]) -> None:
        leg, call = self._leg_call(msg["leg"])
        code = int(msg.get("code") or 200)
        if code not in (180, 183, 200):
            raise CommandError(f"answer code must be 180, 183 or 200, not {code}")
        call.answer(self._op(code, msg.get("headers")))
        log.info("answer leg=%s code=%s", leg.id, code)

    def _cmd_hangup(self, msg: dict[str, Any]) -> None:
        leg, call = self._leg_call(msg["leg"])
        if call.isActive():  # hangup() on a call with id -1 aborts the process
            call.hangup(self._op(int(msg.get("code") or 0)))
        log.info("hangup leg=%s", leg.id)

    def _cmd_dial(self, msg: dict[str, Any]) -> None:
        leg_id, uri = str(msg["leg"]), str(msg["uri"])
        if not leg_id or leg_id in self.legs:
            raise CommandError("leg id missing or already in use")
        self._check_call_rate()
        # A call that ended earlier in this same batch of commands still holds its
        # pjsua slot until its Call object is freed: free due objects first.
        self._free_parked()
        # The registered account carries the digest credentials for 401/407.
        acc = self._reg_acc or self._local_acc
        assert acc is not None
        for attempt in range(DIAL_SLOT_RETRIES + 1):
            try:
                self._make_call(acc, leg_id, uri, msg.get("headers"), msg.get("from"))
                break
            except pj.Error as exc:
                # A call hung up a moment ago keeps its pjsua slot until its BYE
                # transaction ends: poll briefly for it rather than fail the dial.
                if exc.status != PJ_ETOOMANY or attempt == DIAL_SLOT_RETRIES:
                    raise
                assert self._ep is not None  # started: there is an account
                self._ep.libHandleEvents(DIAL_SLOT_WAIT_MS)
                self._free_parked()
        log.info("dial leg=%s uri=%s", leg_id, uri)

    def _make_call(self, acc: Any, leg_id: str, uri: str, headers: Any,
                   from_uri: str | None = None) -> None:
        call = MediaCall(self, acc, leg_id)
        self.legs[leg_id] = Leg(leg_id, call)  # callbacks may fire inside makeCall
        op = self._op(0, headers)
        if from_uri:  # e.g. the caller's number on an advisor's ring, not the worker's
            op.txOption.localUri = str(from_uri)
        try:
            call.makeCall(uri, op)
        except Exception:
            leg = self.legs.pop(leg_id, None)
            if leg is not None:
                leg.call = None
            del call  # id is -1 (or already disconnected): safe to free here
            raise

    def _cmd_play(self, msg: dict[str, Any]) -> None:
        leg = self._leg(msg["leg"])
        path, loop = str(msg["file"]), bool(msg.get("loop", False))
        player = MediaPlayer(self, leg.id, str(msg.get("play_id") or ""), loop)
        # Raises pj.Error on a missing/bad WAV; the new player is then just dropped.
        player.createPlayer(path, 0 if loop else pj.PJMEDIA_FILE_NO_LOOP)
        self._stop_player(leg)
        leg.player = player
        self._connect_media(leg)
        log.info("play leg=%s file=%s loop=%s play_id=%s", leg.id, path, loop, player.play_id)

    def _cmd_stop_play(self, msg: dict[str, Any]) -> None:
        self._stop_player(self._leg(msg["leg"]))

    def _cmd_bridge(self, msg: dict[str, Any]) -> None:
        a, b = self._leg(msg["a"]), self._leg(msg["b"])
        if a is b:
            raise CommandError("cannot bridge a leg with itself")
        a.bridges.add(b.id)
        b.bridges.add(a.id)
        self._stop_player(a)
        self._stop_player(b)
        self._connect_media(a)  # connects both ways if both are active
        log.info("bridge a=%s b=%s", a.id, b.id)

    def _cmd_unbridge(self, msg: dict[str, Any]) -> None:
        a, b = self._leg(msg["a"]), self._leg(msg["b"])
        a.bridges.discard(b.id)
        b.bridges.discard(a.id)
        if a.media_active and b.media_active:
            am, bm = a.audio_media(), b.audio_media()
            am.stopTransmit(bm)
            bm.stopTransmit(am)
        log.info("unbridge a=%s b=%s", a.id, b.id)

    def _cmd_listen(self, msg: dict[str, Any]) -> None:
        """One way: ``leg`` hears ``source`` (``on`` false: no longer). A third leg
        joins a conversation with its own matrix (monitor, whisper, barge) this way."""
        leg, source = self._leg(msg["leg"]), self._leg(msg["source"])
        if leg is source:
            raise CommandError("a leg cannot listen to itself")
        on = bool(msg.get("on", True))
        if on:
            leg.hears.add(source.id)
            self._connect_media(leg)
        elif source.id in leg.hears:
            leg.hears.discard(source.id)
            if leg.media_active and source.media_active:
                source.audio_media().stopTransmit(leg.audio_media())
        log.info("listen leg=%s source=%s on=%s", leg.id, source.id, on)

    def _cmd_record_start(self, msg: dict[str, Any]) -> None:
        if "rec_id" in msg:
            self._stereo_start(msg)
            return
        leg = self._leg(msg["leg"])
        path = str(msg["file"])
        rec = pj.AudioMediaRecorder()
        rec.createRecorder(path)
        self._stop_recorder(leg)
        leg.recorder = rec
        self._connect_media(leg)
        log.info("record_start leg=%s file=%s", leg.id, path)

    def _cmd_record_stop(self, msg: dict[str, Any]) -> None:
        if "rec_id" in msg:
            self._finish_recording(self._recording(msg))
            return
        self._stop_recorder(self._leg(msg["leg"]))

    def _recording(self, msg: dict[str, Any]) -> Recording:
        rec = self.recordings.get(str(msg["rec_id"]))
        if rec is None:
            raise CommandError("unknown recording")
        return rec

    def _stereo_start(self, msg: dict[str, Any]) -> None:
        """One stereo WAV: left = what left_leg's far end sends, right = right_leg's."""
        rec_id, path = str(msg["rec_id"]), str(msg["path"])
        if not rec_id or rec_id in self.recordings:
            raise CommandError("rec_id missing or already in use")
        left, right = self._leg(msg["left_leg"]), self._leg(msg["right_leg"])
        if left is right:
            raise CommandError("left_leg and right_leg must differ")
        if not path.startswith("/"):
            raise CommandError("path must be absolute")
        rec = Recording(rec_id, path, [left.id, right.id], (path + ".left.wav", path + ".right.wav"),
                        silence_path=path + ".silence.wav")
        try:
            for side in (LEFT, RIGHT):
                create_private(rec.parts[side])  # the mono parts hold voices too: 0600
                recorder = pj.AudioMediaRecorder()
                recorder.createRecorder(rec.parts[side])
                rec.recorders[side] = recorder
            # A looping silent player feeds both recorders all along, so each writes
            # one frame per bridge tick whatever its leg does (a recorder with no
            # source writes nothing, measured): paused or missing media = silence,
            # and both sides stay aligned on the bridge clock.
            write_silence(rec.silence_path, rec.rate)
            silence = pj.AudioMediaPlayer()
            silence.createPlayer(rec.silence_path, 0)
            rec.silence = silence
            for recorder in rec.recorders:
                silence.startTransmit(recorder)
        except (OSError, pj.Error) as exc:
            self._drop_recorder_objects(rec)
            rec.remove_files()
            if isinstance(exc, OSError):  # e.g. no such folder: the caller's error
                raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None
            raise
        self.recordings[rec_id] = rec
        left.taps[rec_id], right.taps[rec_id] = LEFT, RIGHT
        self._connect_media(left)
        self._connect_media(right)
        log.info("record_start rec=%s left=%s right=%s path=%s", rec_id, left.id, right.id, path)

    def _cmd_record_tap(self, msg: dict[str, Any]) -> None:
        """Another leg's far end joins a side of a stereo recording (a consulted
        party, a transfer's target, the next advisor: right)."""
        rec = self._recording(msg)
        leg = self._leg(msg["leg"])
        side = {"left": LEFT, "right": RIGHT}.get(str(msg.get("side", "right")))
        if side is None:
            raise CommandError("side must be left or right")
        if rec.rec_id in leg.taps:
            return  # already feeding it
        leg.taps[rec.rec_id] = side
        rec.legs.append(leg.id)
        if not rec.paused:
            self._connect_media(leg)
        log.info("record_tap rec=%s leg=%s side=%s", rec.rec_id, leg.id, msg.get("side"))

    def _cmd_record_pause(self, msg: dict[str, Any]) -> None:
        rec = self._recording(msg)
        if not rec.paused:
            self._untap(rec)
            rec.pause()
        log.info("record_pause rec=%s", rec.rec_id)

    def _cmd_record_resume(self, msg: dict[str, Any]) -> None:
        rec = self._recording(msg)
        if rec.paused:
            rec.resume()
            for leg_id in rec.legs:
                leg = self.legs.get(leg_id)
                if leg is not None:
                    self._connect_media(leg)
        log.info("record_resume rec=%s", rec.rec_id)

    def _cmd_send_dtmf(self, msg: dict[str, Any]) -> None:
        leg, call = self._leg_call(msg["leg"])
        digits, method = str(msg["digits"]), msg.get("method") or P.DTMF_RFC2833
        if method == P.DTMF_RFC2833:
            call.dialDtmf(digits)
        elif method == P.DTMF_INFO:
            prm = pj.CallSendDtmfParam()
            prm.method = pj.PJSUA_DTMF_METHOD_SIP_INFO
            prm.digits = digits
            call.sendDtmf(prm)
        else:
            raise CommandError(f"unknown DTMF method {method!r}")
        log.info("send_dtmf leg=%s digits=%s method=%s", leg.id, digits, method)

    def _cmd_register(self, msg: dict[str, Any]) -> None:
        if self._reg_acc is not None:
            raise CommandError("already registered")
        user, registrar = str(msg["user"]), str(msg["registrar"])
        transport = msg.get("transport") or "udp"
        if transport not in ("udp", "tcp", "tls"):
            raise CommandError(f"transport must be udp, tcp or tls, not {transport!r}")
        suffix = "" if transport == "udp" else f";transport={transport}"
        host = registrar.split(":", 1)[1].split(";", 1)[0] if ":" in registrar else registrar
        acfg = self._account_config(f"sip:{user}@{host}")
        acfg.regConfig.registrarUri = registrar + suffix
        acfg.regConfig.timeoutSec = int(msg.get("expires") or 300)
        acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, str(msg["password"])))
        proxy = msg.get("proxy")  # extension: route every request of the account
        if proxy:
            acfg.sipConfig.proxies.append(str(proxy) + suffix + ";lr")
        acc = MediaAccount(self, user, registered=True)
        acc.create(acfg, True)
        self._reg_acc = acc
        log.info("register user=%s registrar=%s transport=%s", user, registrar, transport)

    def _cmd_set_registration(self, msg: dict[str, Any]) -> None:
        """Unregister (active false) or register again the account of `register`:
        a phone going offline and coming back, without losing its settings."""
        if self._reg_acc is None:
            raise CommandError("not registered: send register first")
        active = bool(msg["active"])
        self._reg_acc.unregistering = not active
        self._reg_acc.setRegistration(active)
        log.info("set_registration user=%s active=%s", self._reg_acc.user, active)

    def _cmd_shutdown(self, msg: dict[str, Any]) -> None:
        self._stopping = True  # cmd.result goes out first, then the loop ends

    # ------------------------------------------------------------ stereo recordings
    def _untap(self, rec: Recording) -> None:
        """Stop both live legs transmitting into the recording (never a dead leg's media)."""
        for leg_id in rec.legs:
            leg = self.legs.get(leg_id)
            side = leg.taps.get(rec.rec_id) if leg is not None else None
            recorder = rec.recorders[side] if side is not None else None
            if leg is None or recorder is None or not leg.media_active or leg.call is None:
                continue
            try:
                leg.audio_media().stopTransmit(recorder)
            except pj.Error as exc:
                log.warning("rec=%s leg=%s stopTransmit(recorder) failed: %s", rec.rec_id,
                            leg_id, exc.reason)

    def _drop_recorder_objects(self, rec: Recording) -> None:
        """Disconnect the silence player, park it and both recorders (main thread)."""
        silence, rec.silence = rec.silence, None
        recorders, rec.recorders = rec.recorders, [None, None]
        if silence is not None:
            for recorder in recorders:
                if recorder is not None:
                    try:
                        silence.stopTransmit(recorder)
                    except pj.Error as exc:
                        log.warning("rec=%s stopTransmit(silence) failed: %s", rec.rec_id,
                                    exc.reason)
            self._park(silence, PLAYER_GRACE_S)
        for recorder in recorders:
            if recorder is not None:
                self._park(recorder)  # deleting it finalises its WAV header

    def _finish_recording(self, rec: Recording) -> None:
        """record_stop, or a leg of the recording ended: close both parts, then merge."""
        if self.recordings.pop(rec.rec_id, None) is None:
            return
        if not rec.paused:
            self._untap(rec)
        rec.stop()
        for leg_id in rec.legs:
            leg = self.legs.get(leg_id)
            if leg is not None:
                leg.taps.pop(rec.rec_id, None)
        self._drop_recorder_objects(rec)
        log.info("record_stop rec=%s", rec.rec_id)
        # queued: runs after the main loop has freed the parked recorders
        self.call_soon(partial(
            finish_in_thread, rec,
            lambda fields: self.emit(P.EV_RECORD_DONE, **fields),
            lambda error: self.emit(P.EV_RECORD_FAILED, rec_id=rec.rec_id, error=error)))

"""pjsua2 subclasses whose callbacks forward to the Engine.

Every callback body goes through ``guard``: pjsua2 prints and swallows
exceptions raised in callbacks, so we log them ourselves with context.
Callbacks only forward; the Engine holds all state. These objects hold the
engine and plain strings, never another pjsua2 object, so dropping the last
reference frees them at once (no reference cycle left for a GC run on a
thread PJSIP does not know, which would abort the process).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import pjsua2 as pj

log = logging.getLogger("cti.media")


class EngineHooks(Protocol):
    """What these objects call back: the Engine implements it (cti/media/engine.py).

    A Protocol rather than the Engine class keeps this module below the engine
    in the import graph (the engine imports these objects)."""

    def on_rejected_incoming(self, prm: Any) -> None: ...
    def on_incoming_call(self, acc: MediaAccount, prm: Any) -> None: ...
    def on_reg_state(self, acc: MediaAccount, prm: Any) -> None: ...
    def on_call_state(self, call: MediaCall) -> None: ...
    def on_call_media_state(self, call: MediaCall) -> None: ...
    def on_dtmf_digit(self, call: MediaCall, prm: Any) -> None: ...
    def on_stream_destroyed(self, call: MediaCall, index: int) -> None: ...
    def on_player_eof(self, leg_id: str, play_id: str, loop: bool, stopped: bool) -> None: ...


def guard(what: str, fn: Callable[..., Any], *args: Any) -> None:
    """Run a callback body; log instead of letting pjsua2 swallow the error."""
    try:
        fn(*args)
    except Exception:
        log.exception("callback=%s failed", what)


class MediaEndpoint(pj.Endpoint):
    def __init__(self, engine: EngineHooks) -> None:
        super().__init__()
        self._engine = engine

    def onRejectedIncomingCall(self, prm: Any) -> None:  # noqa: N802 (pjsua2 API)
        guard("onRejectedIncomingCall", self._engine.on_rejected_incoming, prm)


class MediaAccount(pj.Account):
    """An account: the local one (direct IP calls) or a registered one."""

    def __init__(self, engine: EngineHooks, user: str = "", registered: bool = False) -> None:
        super().__init__()
        self._engine = engine
        self.user = user
        self.registered = registered
        self.unregistering = False

    def onIncomingCall(self, prm: Any) -> None:  # noqa: N802
        guard("onIncomingCall", self._engine.on_incoming_call, self, prm)

    def onRegState(self, prm: Any) -> None:  # noqa: N802
        guard("onRegState", self._engine.on_reg_state, self, prm)


class MediaCall(pj.Call):
    """A call tagged with our own leg id (pjsua call ids are reused)."""

    def __init__(
        self, engine: EngineHooks, acc: pj.Account, leg_id: str, call_id: int = pj.PJSUA_INVALID_ID
    ) -> None:
        super().__init__(acc, call_id)
        self._engine = engine
        self.leg_id = leg_id

    def slot_taken(self) -> bool:
        """Is this (finished) call's pjsua call id now owned by another, newer Call?

        pjsua hands a freed slot to the next call at once (with every slot busy,
        the one just freed). pjsua2's Call destructor works on the id it kept:
        it clears that slot's user data and hangs it up, so dropping the old
        object after the slot was reused would decline the newer call (603) and
        cut it off from its events. Call.lookup gives the Python object that
        owns the slot (the same object, not a copy)."""
        call_id = self.getId()
        if call_id == pj.PJSUA_INVALID_ID:
            return False
        owner = pj.Call.lookup(call_id)
        return owner is not None and owner is not self

    def onCallState(self, prm: Any) -> None:  # noqa: N802
        guard("onCallState", self._engine.on_call_state, self)

    def onCallMediaState(self, prm: Any) -> None:  # noqa: N802
        guard("onCallMediaState", self._engine.on_call_media_state, self)

    def onDtmfDigit(self, prm: Any) -> None:  # noqa: N802
        guard("onDtmfDigit", self._engine.on_dtmf_digit, self, prm)

    def onStreamDestroyed(self, prm: Any) -> None:  # noqa: N802
        # The stream's statistics are still readable here (cti/media/quality.py).
        guard("onStreamDestroyed", self._engine.on_stream_destroyed, self, int(prm.streamIdx))

    # pjsua's defaults would follow a REFER (dial the Refer-To URI: anyone in a
    # call could make the worker call any number), let an INVITE with Replaces
    # take this call over, and follow a 3xx to wherever it points. The controller
    # decides every leg: refuse all three (the edge refuses REFER/Replaces too).
    def onCallTransferRequest(self, prm: Any) -> None:  # noqa: N802
        guard("onCallTransferRequest", _refuse, prm, "REFER", self.leg_id, str(prm.dstUri))

    def onCallReplaceRequest(self, prm: Any) -> None:  # noqa: N802
        guard("onCallReplaceRequest", _refuse, prm, "INVITE with Replaces", self.leg_id, "")

    def onCallRedirected(self, prm: Any) -> int:  # noqa: N802
        guard("onCallRedirected", log.warning, "leg=%s redirect to %s refused", self.leg_id,
              prm.targetUri)
        return int(pj.PJSIP_REDIRECT_REJECT)


def release(obj: Any) -> None:
    """Let go of a parked pjsua2 object (main thread; the caller drops the last
    reference). A Call whose slot a newer call took is never destroyed: it is
    handed to its C++ side for good (SWIG's __disown__), so its destructor never
    runs against the newer call. It is inert (pjsua no longer points to it) and
    small; it only happens when a slot is reused within one poll."""
    if isinstance(obj, MediaCall) and obj.slot_taken():
        log.warning("leg=%s call id %d already reused by a newer call: old Call kept, "
                    "not destroyed", obj.leg_id, obj.getId())
        obj.__disown__()


def _refuse(prm: Any, what: str, leg_id: str, target: str) -> None:
    prm.statusCode = 603  # Decline: pjsua answers the request with it
    log.warning("leg=%s %s refused (603)%s", leg_id, what, f" target={target}" if target else "")


class MediaPlayer(pj.AudioMediaPlayer):
    """A WAV player for one leg. onEof2 comes on a PJSIP thread: only hand over."""

    def __init__(self, engine: EngineHooks, leg_id: str, play_id: str, loop: bool) -> None:
        super().__init__()
        self._engine = engine
        self.leg_id = leg_id
        self.play_id = play_id
        self.loop = loop
        self.stopped = False  # set on the main thread when replaced/stopped

    def onEof2(self, *_: Any) -> None:  # noqa: N802 (takes no param in this binding)
        guard("onEof2", self._engine.on_player_eof, self.leg_id, self.play_id, self.loop, self.stopped)

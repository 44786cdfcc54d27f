"""What the softphone shows: plain state, updated from CTI events and phone events.

No I/O here: SoftphoneClient feeds events in, the textual views render the
text functions below (also used by the tests).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cti.labels import word

#: GET /api/v1/labels: kind ("topics", "languages", ...) -> {code: word}.
Labels = dict[str, dict[str, str]]

# call.recording states -> what the call's recording is now (done, failed: not recorded)
_RECORDING = {"started": "recording", "resumed": "recording", "paused": "paused"}

# call.* events that only change the call's status line: type -> status text maker
_STATUS_EVENTS = {
    "call.transferring": lambda d: f"transferring ({d.get('kind', '')}) to {d.get('target')}",
    "call.transferred": lambda d: f"transferred to {d.get('target')}",
    "call.transfer_failed": lambda d: (f"transfer to {d.get('target')} failed: "
                                       f"{d.get('reason') or d.get('code')}"),
    "call.consult": lambda d: f"consult {d.get('state')}: {d.get('target')}",
}


@dataclass
class CallView:
    """The advisor's current (or last) customer call."""

    call_id: str
    pop: dict[str, Any] = field(default_factory=dict)  # the call.offered data
    status: str = "offered"  # offered, ringing, connected, ended
    held: bool = False
    recording: str | None = None  # "recording", "paused", None: not recorded
    detail: str = ""  # last transfer / consult / end information
    leg: str | None = None  # the phone's SIP leg for this call
    consult_leg: str | None = None  # the second leg of a consult (X-CTI-Consult)
    media: bool = False  # the phone's audio for the leg is active
    offered_at: float = field(default_factory=time.time)
    connected_at: float | None = None  # the talk timer (the event's time)
    held_at: float | None = None  # the hold timer, while held
    wrap_up: dict[str, Any] | None = None  # {code, note} once saved


@dataclass
class SoftphoneState:
    user: str
    registration: str = "not registered"
    audio: str = ""  # the phone's sound device, as its engine said it (cti.media.sound)
    registered: bool = False
    logged_in: bool = False
    ws_connected: bool = False
    advisor_state: str = "unknown"
    advisor_reason: str | None = None
    last_seq: int = 0
    call: CallView | None = None
    labels: Labels = field(default_factory=dict)  # words for codes; empty: the codes
    messages: list[str] = field(default_factory=list)  # newest last, bounded

    def note(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        self.messages.append(f"{stamp} {text}")
        del self.messages[:-200]

    # ------------------------------------------------------------ CTI events
    def apply_event(self, ev: dict[str, Any]) -> bool:
        """Apply a CTI event; False if it was already seen (replays after a reconnect)."""
        seq = int(ev.get("seq") or 0)
        if seq and seq <= self.last_seq:
            return False
        self.last_seq = max(self.last_seq, seq)
        typ, data, call_id = ev.get("type"), ev.get("data") or {}, ev.get("call_id")
        if typ == "agent.state":
            self.advisor_state, self.advisor_reason = data.get("state", "?"), data.get("reason")
        elif typ == "call.offered":
            self.call = CallView(call_id=call_id or "", pop=data)
        elif self.call is not None and call_id == self.call.call_id:
            self._apply_call_event(typ or "", data, float(ev.get("ts") or time.time()))
        return True

    def _apply_call_event(self, typ: str, data: dict[str, Any], ts: float) -> None:
        call = self.call
        assert call is not None
        if typ == "call.connected":
            call.status, call.connected_at = "connected", ts
        elif typ == "call.held":
            call.held = bool(data.get("on"))
            call.held_at = ts if call.held else None
        elif typ == "call.recording":
            call.recording = _RECORDING.get(str(data.get("state")))
        elif typ == "call.ended":
            call.status, call.held, call.recording, call.held_at = "ended", False, None, None
            call.detail = f"ended: {word(self.labels, 'end_reasons', data.get('reason'))}"
        elif typ == "call.wrap_up":
            call.wrap_up = {"code": data.get("code"), "note": data.get("note")}
        elif typ in _STATUS_EVENTS:
            call.detail = _STATUS_EVENTS[typ](data)


# ---------------------------------------------------------------- rendering
def _local_time(iso: str | None, tz: str | None) -> str:
    if not iso:
        return "unknown"
    try:
        t = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return f"{t:%H:%M} {tz or t.strftime('%z')}"


def _contact_line(c: dict[str, Any], words: Labels) -> str:
    when = c.get("started_at")
    if isinstance(when, (int, float)):
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(when))
    what = (f"{word(words, 'languages', c.get('language')) or '?'}/"
            f"{word(words, 'topics', c.get('topic')) or '?'}")
    parts = [str(when or "?"), what, c.get("advisor") or "-",
             word(words, "end_reasons", c.get("end_reason"))]
    if c.get("wrap_up_code"):
        code = word(words, "wrap_up_codes", c["wrap_up_code"])
        parts.append(f"[{code}] {c.get('note') or ''}".rstrip())
    return "  " + "  ".join(p for p in parts if p)


def pop_text(call: CallView | None, words: Labels | None = None) -> str:
    """The screen pop, as the advisor reads it before saying hello (words: the
    labels of GET /api/v1/labels; without them, the codes)."""
    if call is None:
        return "No call."
    words = words or {}
    p = call.pop
    caller = p.get("caller") or {}
    flags = p.get("flags") or {}
    crisis = bool(p.get("crisis") or flags.get("crisis"))
    # Only a raised priority is news (0 is every ordinary caller).
    priority = int(p.get("priority") or 0)
    lines = [
        f"Caller:     {caller.get('number', '?')}  ({caller.get('country') or '??'})",
        f"Local time: {_local_time(caller.get('local_time'), caller.get('timezone'))}",
        f"Language:   {word(words, 'languages', p.get('language')) or '?'}    "
        f"Topic: {word(words, 'topics', p.get('topic')) or '?'}",
        f"IVR path:   {' > '.join(p.get('ivr_path') or []) or '-'}",
        f"Waited:     {float(p.get('waited_s') or 0):.0f} s"
        + (f"    Priority caller (raised by {priority})" if priority > 0 else "")
        + ("    CRISIS" if crisis else ""),
    ]
    other = {k: v for k, v in flags.items() if k != "crisis" and v}
    if other:
        lines.append(f"Flags:      {', '.join(sorted(other))}")
    contacts = p.get("earlier_contacts") or []
    lines.append(f"Earlier contacts: {len(contacts) or 'none'}")
    lines += [_contact_line(c, words) for c in contacts[:5]]
    return "\n".join(lines)


def _clock(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 60}:{s % 60:02d}" if s >= 60 else f"{s} s"


def call_text(call: CallView | None, words: Labels | None = None,
              now: float | None = None) -> str:
    if call is None:
        return "Idle."
    now = time.time() if now is None else now
    status = call.status + (" (on hold)" if call.held else "")
    parts = [f"Call {call.call_id[:8]}: {status}"]
    if call.connected_at is not None and call.status == "connected":
        parts.append(f"talk {_clock(now - call.connected_at)}")
    if call.held_at is not None and call.held:
        parts.append(f"on hold {_clock(now - call.held_at)}")
    if call.recording:
        parts.append("RECORDING PAUSED" if call.recording == "paused" else "recording")
    if call.leg:
        parts.append(f"phone: {'audio' if call.media else 'no audio'}")
    if call.detail:
        parts.append(call.detail)
    if call.wrap_up:
        parts.append(f"wrap-up {word(words or {}, 'wrap_up_codes', call.wrap_up['code'])}")
    return "  |  ".join(parts)


def status_text(s: SoftphoneState) -> str:
    reason = (f" ({word(s.labels, 'away_reasons', s.advisor_reason)})"
              if s.advisor_reason else "")
    return (f"{s.user}  |  SIP: {s.registration}  |  API: "
            f"{'logged in' if s.logged_in else 'not logged in'}"
            f"{'' if s.ws_connected or not s.logged_in else ' (events offline)'}"
            f"  |  state: {word(s.labels, 'states', s.advisor_state)}{reason}"
            f"{f'  |  audio: {s.audio}' if s.audio else ''}")

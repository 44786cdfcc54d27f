"""The softphone's state and screen-pop text, from CTI events (no I/O)."""

from __future__ import annotations

import time
from typing import Any

from cti.softphone.model import SoftphoneState, call_text, pop_text, status_text


def ev(seq: int, type_: str, call_id: str | None = "c1", **data: Any) -> dict[str, Any]:
    return {"v": 1, "seq": seq, "type": type_, "ts": 0.0, "call_id": call_id,
            "advisor": "sofia", "data": data}


POP = {"caller": {"number": "+34911234567", "country": "ES", "timezone": "Europe/Madrid",
                  "local_time": "2026-11-29T21:05:00+01:00"},
       "language": "es", "topic": "visa", "ivr_path": ["hours:open", "lang:es", "topic:visa"],
       "priority": 5, "flags": {"crisis": True, "vip": True}, "waited_s": 12.4,
       "earlier_contacts": [{"call_id": "old", "started_at": 1795860000.0,
                             "topic": "passport", "language": "es", "advisor": "dalia",
                             "end_reason": "caller_hangup", "wrap_up_code": "callback",
                             "note": "call back with the form"}]}


def test_the_pop_shows_what_the_advisor_needs_before_hello() -> None:
    s = SoftphoneState(user="sofia")
    assert s.apply_event(ev(1, "call.offered", **POP))
    text = pop_text(s.call)
    assert "+34911234567  (ES)" in text
    assert "Local time: 21:05 Europe/Madrid" in text
    assert "Language:   es    Topic: visa" in text
    assert "hours:open > lang:es > topic:visa" in text
    assert "Waited:     12 s    Priority caller (raised by 5)    CRISIS" in text
    assert "Flags:      vip" in text
    assert "Earlier contacts: 1" in text
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(1795860000.0))
    assert f"{when}  es/passport  dalia  caller_hangup  [callback] call back with the form" in text


def test_unknown_local_time_and_no_call() -> None:
    s = SoftphoneState(user="sofia")
    s.apply_event(ev(1, "call.offered", caller={"number": "+999", "country": None,
                                                "local_time": None, "timezone": None}))
    assert "Local time: unknown" in pop_text(s.call)
    assert "Earlier contacts: none" in pop_text(s.call)
    assert pop_text(None) == "No call."
    assert call_text(None) == "Idle."


def test_call_events_change_the_call_and_replays_apply_once() -> None:
    s = SoftphoneState(user="sofia")
    s.apply_event(ev(5, "call.offered", **POP))
    s.apply_event(ev(6, "call.connected", waited_s=1))
    s.apply_event(ev(7, "call.held", on=True, by="sofia"))
    assert s.call is not None and s.call.status == "connected" and s.call.held
    assert "(on hold)" in call_text(s.call)
    assert not s.apply_event(ev(7, "call.held", on=False, by="sofia"))  # a replayed seq
    assert s.call.held
    s.apply_event(ev(8, "call.consult", state="talking", target="crisis_team"))
    assert "consult talking: crisis_team" in call_text(s.call)
    s.apply_event(ev(9, "call.ended", reason="transferred"))
    s.apply_event(ev(10, "agent.state", None, state="wrap_up", reason=None))
    s.apply_event(ev(11, "call.wrap_up", code="info", note="n", by="sofia"))
    assert s.call.status == "ended" and s.call.wrap_up == {"code": "info", "note": "n"}
    assert "state: wrap_up" in status_text(s)
    s.apply_event(ev(12, "call.held", "other-call", on=True))  # not this call
    assert not s.call.held and s.last_seq == 12


def test_the_call_panel_shows_the_recording_and_its_pause() -> None:
    s = SoftphoneState(user="sofia")
    s.apply_event(ev(1, "call.offered", **POP))
    s.apply_event(ev(2, "call.connected", waited_s=1))
    assert s.call is not None and s.call.recording is None
    assert "recording" not in call_text(s.call).lower()
    s.apply_event(ev(3, "call.recording", state="started", rec_id="r1", path="/x.wav"))
    assert s.call.recording == "recording" and call_text(s.call).endswith("|  recording")
    s.apply_event(ev(4, "call.recording", state="paused", rec_id="r1", by="sofia"))
    assert s.call.recording == "paused" and "RECORDING PAUSED" in call_text(s.call)
    s.apply_event(ev(5, "call.recording", "other-call", state="resumed", rec_id="r2"))
    assert s.call.recording == "paused"  # not this call
    s.apply_event(ev(6, "call.recording", state="resumed", rec_id="r1", by="sofia"))
    assert s.call.recording == "recording"
    s.apply_event(ev(7, "call.ended", reason="caller_hangup"))
    assert s.call.recording is None and "recording" not in call_text(s.call).lower()
    s.apply_event(ev(8, "call.recording", state="done", rec_id="r1", paused=[[1.0, 3.0]]))
    assert s.call.recording is None


WORDS = {"topics": {"visa": "Visa and entering the Netherlands", "passport": "Passport and ID card"},
         "languages": {"es": "Español"}, "wrap_up_codes": {"callback": "Call back needed"},
         "end_reasons": {"caller_hangup": "Caller hung up"},
         "states": {"wrap_up": "Wrapping up"}, "away_reasons": {"no_answer": "Missed offers"}}


def test_with_the_gateways_labels_the_softphone_shows_words() -> None:
    s = SoftphoneState(user="sofia", labels=WORDS)
    s.apply_event(ev(1, "call.offered", **{**POP, "priority": 0}))
    text = pop_text(s.call, s.labels)
    assert "Language:   Español    Topic: Visa and entering the Netherlands" in text
    assert "Priority" not in text  # an ordinary caller: nothing to say
    assert "Español/Passport and ID card  dalia  Caller hung up  [Call back needed]" in text
    s.apply_event(ev(2, "call.ended", reason="caller_hangup"))
    assert "ended: Caller hung up" in call_text(s.call, s.labels)
    s.apply_event(ev(3, "agent.state", None, state="wrap_up", reason=None))
    assert "state: Wrapping up" in status_text(s)
    s.apply_event(ev(4, "agent.state", None, state="away", reason="no_answer"))
    assert "state: away (Missed offers)" in status_text(s)  # no word for away: the code


def test_talk_and_hold_timers() -> None:
    s = SoftphoneState(user="sofia")
    s.apply_event(ev(1, "call.offered", **POP))
    s.apply_event({**ev(2, "call.connected", waited_s=1), "ts": 1000.0})
    assert "talk 12 s" in call_text(s.call, now=1012.0)
    s.apply_event({**ev(3, "call.held", on=True, by="sofia"), "ts": 1060.0})
    text = call_text(s.call, now=1075.0)
    assert "talk 1:15" in text and "on hold 15 s" in text
    s.apply_event({**ev(4, "call.held", on=False, by="sofia"), "ts": 1080.0})
    assert "on hold" not in call_text(s.call, now=1090.0)
    s.apply_event(ev(5, "call.ended", reason="caller_hangup"))
    assert "talk" not in call_text(s.call, now=1100.0)

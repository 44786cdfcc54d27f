"""Words for the codes screens would otherwise show (GET /api/v1/labels).

Topics, languages and wrap-up codes are named in the config; advisor states,
end reasons and the gateway's own away reasons are named here, the one place,
in English. A code without a word is shown as a readable form of itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cti.routing import AdvisorState

if TYPE_CHECKING:
    from cti.config import Settings

#: Advisor states (cti.routing.AdvisorState values and any a later state adds).
STATES = {
    "logged_out": "Logged out",
    "available": "Available",
    "reserved": "Being offered a call",
    "on_call": "On a call",
    "wrap_up": "Wrapping up",
    "away": "Away",
}

#: Why a call ended (docs/events.md, call.ended) and a stored record's ending.
END_REASONS = {
    "caller_hangup": "Caller hung up",
    "caller_abandoned": "Caller gave up waiting",
    "advisor_hangup": "Advisor hung up",
    "hangup_by_advisor": "Advisor ended the call",
    "hangup_by_supervisor": "Supervisor ended the call",
    "transfer_ended": "Ended after the transfer",
    "transferred": "Transferred",
    "transfer_failed": "Transfer failed",
    "worker_failed": "Technical failure",
    "rtp_timeout": "Caller's audio stopped",
    "shutdown": "Gateway shut down",
    "gateway_restart": "Gateway restarted",
    "closed": "Outside opening hours",
    "ivr_hangup": "Ended in the menu",
    "cancelled": "Cancelled",
}

#: Away reasons the gateway sets itself (not in config away_reasons).
SYSTEM_AWAY_REASONS = {
    "no_answer": "Missed offers",
    "phone_offline": "Phone offline",
    "recovery": "Recovery break",
}


def humanize(code: str) -> str:
    """``travel_advice`` -> ``Travel advice``: better than the code when nobody named it."""
    text = code.replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:] if text else code


def labels(settings: Settings) -> dict[str, dict[str, str]]:
    """Every kind of code a screen shows -> {code: word}."""
    wrap = {c.code: c.label for c in settings.wrap_up.codes}
    away = {r: humanize(r) for r in settings.away_reasons}
    return {
        "topics": {m.code: m.name for m in settings.ivr.topics},
        "languages": {m.code: m.name for m in settings.ivr.languages},
        "wrap_up_codes": wrap,
        "end_reasons": dict(END_REASONS),
        # A state added later still gets a word, if a plain one.
        "states": {**{s.value: humanize(s.value) for s in AdvisorState}, **STATES},
        "away_reasons": {**SYSTEM_AWAY_REASONS, **away},
    }


def word(table: dict[str, dict[str, str]], kind: str, code: str | None) -> str:
    """The word for a code of a kind; the code itself when there is none."""
    if not code:
        return ""
    return table.get(kind, {}).get(code, code)

"""Minimal SIP message header parsing (pure, no pjsua2).

PJSIP hands us the raw INVITE text (``prm.rdata.wholeMsg``); we only need
its headers, by lower-case name, with compact forms expanded.
"""

from __future__ import annotations

# RFC 3261 7.3.3 compact header forms (+ a few common extensions)
COMPACT = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
    "o": "event",
    "r": "refer-to",
    "b": "referred-by",
    "x": "session-expires",
    "u": "allow-events",
}


def parse_headers(raw: str) -> dict[str, str]:
    """Headers of a SIP message as {lower-case name: value}.

    Repeated headers are joined with ", " (RFC 3261 7.3.1); folded lines are
    unfolded; the start line and the body are ignored.
    """
    head = raw.replace("\r\n", "\n").split("\n\n", 1)[0]
    lines = head.split("\n")[1:]  # drop the request/status line
    headers: dict[str, str] = {}
    last = ""
    for line in lines:
        if not line.strip():
            continue
        if line[0] in " \t" and last:  # folded continuation
            headers[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name = name.strip().lower()
        name = COMPACT.get(name, name)
        value = value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
        last = name
    return headers

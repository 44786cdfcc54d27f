"""Phone numbers as callers give them ('+34…' or '0034…'): country and time zones.

Shared by the controller (the screen pop's country and local time) and plugins
(the callee's zone of a call back), so both read a number the same way.
"""

from __future__ import annotations

import functools

import phonenumbers
import phonenumbers.timezone


def international(number: str) -> str:
    """'0034…' written as '+34…' (anything else unchanged, stripped)."""
    digits = number.strip()
    return "+" + digits[2:] if digits.startswith("00") else digits


def country_of(number: str) -> str | None:
    """ISO country of an international number, None if unknown."""
    digits = international(number)
    if not digits.startswith("+"):
        return None
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(digits, None))
    except phonenumbers.NumberParseException:
        return None


@functools.lru_cache(maxsize=4096)  # every view of a call asks again
def zones_of(number: str) -> tuple[str, ...]:
    """The IANA zones of the number's country or area, in phonenumbers' order
    (several for the US, Russia ...; empty when unknown)."""
    try:
        zones = phonenumbers.timezone.time_zones_for_number(
            phonenumbers.parse(international(number), None))
    except phonenumbers.NumberParseException:
        return ()
    return tuple(z for z in zones if z != "Etc/Unknown")


def readable(number: str) -> str:
    """'+34911234567' as '+34 911 234 567' (phonenumbers' international format);
    anything phonenumbers cannot parse unchanged."""
    digits = international(number)
    try:
        parsed = phonenumbers.parse(digits, None)
    except phonenumbers.NumberParseException:
        return digits
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def caller_id(number: str, host: str, *parts: str | None) -> str:
    """A From / P-Asserted-Identity name-addr for an advisor's INVITE:
    '"+34 911 23 45 67 · visa · es" <sip:+34911234567@host>'. Only characters that
    are safe in a SIP user part reach the URI; no quote, backslash or control
    character (a header split) reaches the display name."""
    user = "".join(c for c in international(number) if c.isalnum() or c in "+-.") or "anonymous"
    name = " · ".join([readable(number), *(p for p in parts if p)])
    name = "".join(c for c in name if c.isprintable() and c not in '"\\')
    return f'"{name}" <sip:{user}@{host}>'

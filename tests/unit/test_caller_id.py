"""The caller ID an advisor's phone shows (From / P-Asserted-Identity)."""

from __future__ import annotations

from cti.core.numbers import caller_id, readable


def test_readable_international_format() -> None:
    assert readable("0034911234567") == "+34 911 23 45 67"
    assert readable("+31201234567") == "+31 20 123 4567"
    assert readable("anonymous") == "anonymous"


def test_caller_id_name_addr_with_topic_and_language() -> None:
    assert caller_id("+34911234567", "10.0.0.1", "visa", "es") == \
        '"+34 911 23 45 67 · visa · es" <sip:+34911234567@10.0.0.1>'
    assert caller_id("+34911234567", "h", None, None) == \
        '"+34 911 23 45 67" <sip:+34911234567@h>'


def test_caller_id_keeps_quotes_and_odd_characters_out() -> None:
    ident = caller_id('12"3>@x', "h", 'vi"sa\r\nX-Evil: 1')
    assert ident == '"123>@x · visaX-Evil: 1" <sip:123x@h>'
    assert caller_id("", "h") == '"" <sip:anonymous@h>'

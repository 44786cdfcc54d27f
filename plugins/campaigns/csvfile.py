"""A campaign's numbers in and its outcomes out, as CSV.

In: a header row naming the columns (``number`` required; ``name``, ``language``,
``note`` optional; others are refused, so a misspelt column is not silently
dropped), then one row per callee. Numbers are international (``+44…`` or
``0044…``). Every problem is reported with its line, all at once, so a
supervisor fixes the file in one go.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import phonenumbers

from cti.core.numbers import international

COLUMNS = ("number", "name", "language", "note")
#: The export's columns (one row per number, in the upload's order).
EXPORT = ("line", "number", "name", "language", "note", "status", "attempts",
          "last_reason", "advisor", "wrap_up_code", "wrap_up_note", "next_call_at",
          "zone", "call_id")
MAX_ERRORS = 20


@dataclass(frozen=True)
class Row:
    line: int
    number: str
    name: str
    language: str
    note: str


class CsvError(ValueError):
    """The upload does not fit; ``problems`` are "line N: ..." messages."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        more = "" if len(problems) <= MAX_ERRORS else f" (and {len(problems) - MAX_ERRORS} more)"
        super().__init__("; ".join(problems[:MAX_ERRORS]) + more)


def e164(text: str) -> str | None:
    """An international number as E.164, None if it cannot be one."""
    value = international(text.replace(" ", "").replace("-", ""))
    if not value.startswith("+") or not value[1:].isdigit():
        return None
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def parse_contacts(text: str, *, languages: Collection[str], default_language: str,
                   max_rows: int) -> list[Row]:
    """The rows of an upload, or :class:`CsvError` listing every problem."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = next(reader, None)
    if header is None or not any(h.strip() for h in header):
        raise CsvError(["line 1: a header row is needed (number, name, language, note)"])
    names = [h.strip().lower() for h in header]
    problems = [f"line 1: unknown column {n!r} (expected {', '.join(COLUMNS)})"
                for n in names if n not in COLUMNS]
    if "number" not in names:
        problems.append("line 1: the column 'number' is missing")
    if len(set(names)) != len(names):
        problems.append("line 1: a column appears twice")
    if problems:
        raise CsvError(problems)
    rows: list[Row] = []
    seen: dict[str, int] = {}
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue  # a blank line
        if len(cells) > len(names):
            problems.append(f"line {line}: {len(cells)} fields, the header has {len(names)}")
            continue
        values = dict(zip(names, (c.strip() for c in cells), strict=False))
        row, problem = _row(line, values, languages, default_language)
        if problem:
            problems.append(problem)
        elif row is not None:
            if row.number in seen:
                problems.append(f"line {line}: {row.number} is already on line "
                                f"{seen[row.number]}")
            seen.setdefault(row.number, line)
            rows.append(row)
        if len(rows) > max_rows:
            raise CsvError([f"line {line}: more than {max_rows} numbers in one campaign"])
    if problems:
        raise CsvError(problems)
    if not rows:
        raise CsvError(["the file has no numbers"])
    return rows


def _row(line: int, values: dict[str, str], languages: Collection[str],
         default_language: str) -> tuple[Row | None, str | None]:
    raw = values.get("number", "")
    number = e164(raw)
    if number is None:
        return None, (f"line {line}: {raw!r} is not an international phone number "
                      "(+44… or 0044…)" if raw else f"line {line}: the number is empty")
    language = values.get("language") or default_language
    if language not in languages:
        return None, (f"line {line}: language {language!r} is not an IVR language "
                      f"(expected one of {', '.join(sorted(languages))})")
    name, note = values.get("name", ""), values.get("note", "")
    if len(name) > 200 or len(note) > 2000:
        return None, f"line {line}: the name or note is too long"
    return Row(line, number, name, language, note), None


def export_csv(rows: Iterable[dict[str, object]]) -> str:
    """Outcomes, one line per number (cells that a spreadsheet would run as a
    formula are quoted with a leading apostrophe)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in EXPORT])
    return out.getvalue()


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "@", "\t", "\r") or (
        text[:1] in ("+", "-") and not text[1:].replace(".", "").isdigit()) else text

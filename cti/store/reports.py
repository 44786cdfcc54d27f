"""Read-only queries on the store's SQLite file: call records search, an
advisor's history, today's queue figures. Its own connection, so a long
search never holds the writer (WAL lets readers and the writer run together)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

# Calls with the wrap-up of the call (the last one saved) and who talked to them.
_SELECT = (
    "SELECT c.call_id, c.caller_number, c.caller_country, c.dialled, c.language, c.topic, "
    "c.priority, c.advisor, c.started_at, c.queued_at, c.answered_at, c.ended_at, "
    "c.end_reason, w.code AS wrap_up_code, w.note AS wrap_up_note, "
    "w.advisor AS wrap_up_by, "
    # the worst leg's figures, from the legs' JSON (cti/controller/quality.py)
    "(SELECT MAX(json_extract(l.value, '$.quality.loss_pct')) FROM json_each(c.legs) l) "
    "AS worst_loss_pct, "
    "(SELECT MAX(json_extract(l.value, '$.quality.jitter_ms')) FROM json_each(c.legs) l) "
    "AS worst_jitter_ms FROM calls c LEFT JOIN last_wrap_ups w ON w.call_id = c.call_id"
)
# An advisor's own calls: the last advisor, one who accepted an offer (before a
# transfer), or one who wrapped it up.
_OWN = (
    "(c.advisor = :me OR EXISTS (SELECT 1 FROM wrap_ups x WHERE x.call_id = c.call_id "
    "AND x.advisor = :me) OR EXISTS (SELECT 1 FROM offers o WHERE "
    "o.call_id = c.call_id AND o.advisor = :me AND o.outcome = 'accepted'))"
)
MAX_LIMIT = 500
#: A queued call for the service level: ((language, topic), queued_at,
#: answered_at, end_reason).
QueuedCall = tuple[tuple[str | None, str | None], float, float | None, str | None]


def start_of_today(now: float | None = None) -> float:
    """Local midnight of the gateway host, as a unix time."""
    today = datetime.fromtimestamp(now) if now is not None else datetime.now()
    return today.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


@dataclass(frozen=True)
class RecordQuery:
    number: str | None = None
    advisor: str | None = None
    topic: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 50
    own: str | None = None  # an advisor sees only their own calls


class Reports:
    """Opens a connection per query: no lifecycle to tie to the gateway's, and
    opening SQLite is cheap next to a scrape or a search."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _rows(self, sql: str, args: Any = ()) -> list[sqlite3.Row]:
        with contextlib.closing(sqlite3.connect(str(self.path))) as db:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA query_only = ON")
            return db.execute(sql, args).fetchall()

    def records(self, q: RecordQuery) -> list[dict[str, Any]]:
        """Ended calls matching every given filter, newest first."""
        where: list[str] = ["c.ended_at IS NOT NULL"]  # a row exists from a call's start
        args: dict[str, Any] = {"me": q.own}
        if q.own is not None:
            where.append(_OWN)
        for col, key, op in (("c.caller_number", "number", "="), ("c.advisor", "advisor", "="),
                             ("c.topic", "topic", "="), ("c.started_at", "since", ">="),
                             ("c.started_at", "until", "<")):
            value = getattr(q, key)
            if value is not None:
                where.append(f"{col} {op} :{key}")
                args[key] = value
        args["limit"] = max(1, min(q.limit, MAX_LIMIT))
        sql = (_SELECT + " WHERE " + " AND ".join(where)
               + " ORDER BY c.started_at DESC LIMIT :limit")
        return [dict(r) for r in self._rows(sql, args)]

    def history(self, advisor: str, since: float) -> list[dict[str, Any]]:
        """An advisor's calls since a time (today's), newest first, with wrap-ups;
        ``wrapped_up``: whether this advisor wrapped the call up (one not wrapped up
        in time can still be)."""
        rows = self.records(RecordQuery(own=advisor, since=since, limit=MAX_LIMIT))
        done = {r[0] for r in self._rows(
            "SELECT DISTINCT w.call_id FROM wrap_ups w JOIN calls c ON c.call_id = w.call_id "
            "WHERE w.advisor = ? AND c.started_at >= ?", (advisor, since))}
        for row in rows:
            row["wrapped_up"] = row["call_id"] in done
        return rows

    def queue_times(self, since: float) -> list[tuple[float, float | None, str | None]]:
        """(queued_at, answered_at, end_reason) of the ended calls queued since."""
        return [(q, a, e) for _, q, a, e in self.queue_times_by_queue(since)]

    def queue_times_by_queue(self, since: float) -> list[QueuedCall]:
        """((language, topic), queued_at, answered_at, end_reason) of the ended calls
        queued since."""
        rows = self._rows(
            "SELECT language, topic, queued_at, answered_at, end_reason FROM calls "
            "WHERE queued_at >= ? AND ended_at IS NOT NULL",
            (since,))
        return [((r[0], r[1]), r[2], r[3], r[4]) for r in rows]

    def offer_outcomes(self) -> dict[str, int]:
        """Offers made so far, counted by outcome ("open" while ringing)."""
        rows = self._rows(
            "SELECT COALESCE(outcome, 'open'), COUNT(*) FROM offers GROUP BY 1")
        return {str(r[0]): int(r[1]) for r in rows}


def service_figures(calls: Iterable[tuple[float, float | None, str | None]],
                    service_level_s: float) -> dict[str, Any]:
    """Answered, abandoned and the service level over queued calls.

    Service level: answered within service_level_s / (answered + abandoned in
    the queue); null while no call was answered or abandoned.
    """
    answered = within = abandoned = 0
    for queued_at, answered_at, end_reason in calls:
        if answered_at is not None:
            answered += 1
            within += answered_at - queued_at <= service_level_s
        elif end_reason == "caller_abandoned":
            abandoned += 1
    total = answered + abandoned
    return {"answered": answered, "answered_within_sl": within, "abandoned": abandoned,
            "service_level": round(within / total, 4) if total else None,
            "service_level_s": service_level_s}


def service_by_queue(calls: Iterable[QueuedCall], service_level_s: float) -> list[dict[str, Any]]:
    """service_figures per (language, topic) queue, in the queues' order."""
    per: dict[tuple[str, str], list[tuple[float, float | None, str | None]]] = {}
    for (language, topic), queued_at, answered_at, end_reason in calls:
        per.setdefault((language or "", topic or ""), []).append(
            (queued_at, answered_at, end_reason))
    return [{"language": lang, "topic": topic, **service_figures(times, service_level_s)}
            for (lang, topic), times in sorted(per.items())]

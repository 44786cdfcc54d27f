"""JSON-able views of the distributor's advisors, calls and queues (for snapshot)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from cti.routing.records import _Advisor, _Call


class ViewedDistributor(Protocol):
    """What the views read of the Distributor (a Protocol: the distributor imports
    this module, so this one does not import it back)."""

    @property
    def _calls(self) -> Mapping[str, _Call]: ...
    @property
    def _buckets(self) -> Mapping[tuple[str, str], list[tuple[tuple[float, float, int], str]]]: ...
    def position(self, call_id: str) -> int | None: ...
    def expected_wait_s(self, call_id: str, now: float | None = None) -> float | None: ...


def advisor_view(adv: _Advisor, now: float) -> dict[str, Any]:
    p = adv.profile
    return {
        "name": p.name, "state": adv.state.value, "reason": adv.reason,
        "since": adv.since, "call_id": adv.call_id,
        "pending": None if adv.pending is None else adv.pending[0].value,
        "languages": dict(p.languages), "topics": dict(p.topics),
        "trainings": sorted(p.trainings),
        "training_expiry": dict(p.trainings),
        "valid_trainings": sorted(p.valid_trainings(now)),
        "talk_s": round(adv.talk_s, 1), "missed": adv.missed, "wrap_until": adv.wrap_until,
        "wrap_call": adv.wrap_call,
    }


def queue_views(dist: ViewedDistributor, now: float) -> list[dict[str, Any]]:
    """Waiting calls per (language, topic): count and longest wait."""
    views = []
    for (language, topic), bucket in sorted(dist._buckets.items()):
        oldest = min(dist._calls[cid].enqueued_at for _, cid in bucket)
        views.append({"language": language, "topic": topic, "waiting": len(bucket),
                      "longest_wait_s": round(max(0.0, now - oldest), 1)})
    return views


def call_view(dist: ViewedDistributor, call: _Call, now: float) -> dict[str, Any]:
    req = call.requirements
    index, _ = call.step(now)
    return {
        "call_id": call.call_id, "status": call.status.value, "language": req.language,
        "topic": req.topic, "trainings": sorted(req.trainings), "reserve": sorted(req.reserve),
        "at_head": call.head, "priority": call.priority,
        "enqueued_at": call.enqueued_at, "waited_s": max(0.0, now - call.enqueued_at),
        "advisor": call.advisor, "position": dist.position(call.call_id),
        "step": index, "expected_wait_s": dist.expected_wait_s(call.call_id, now),
        "preferred_advisor": call.preferred, "escalated": sorted(call.escalated),
    }

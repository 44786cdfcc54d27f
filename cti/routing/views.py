"""JSON-able views of the distributor's advisors, calls and queues (for snapshot)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from cti.routing.eligibility import reserve_fit, skill_gap
from cti.routing.model import AdvisorState
from cti.routing.queue import WaitingCalls
from cti.routing.records import _Advisor, _Call


class ViewedDistributor(Protocol):
    """What the views read of the Distributor (a Protocol: the distributor imports
    this module, so this one does not import it back)."""

    @property
    def _calls(self) -> Mapping[str, _Call]: ...
    @property
    def _waiting(self) -> WaitingCalls: ...
    @property
    def _advisors(self) -> Mapping[str, _Advisor]: ...
    @property
    def _by_language(self) -> Mapping[str, set[str]]: ...
    @property
    def strategy(self) -> str: ...
    def avg_handle_s(self) -> float: ...
    def waiting_calls(self) -> list[str]: ...
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
    for (language, topic), bucket in sorted(dist._waiting.buckets.items()):
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


def expected_wait(dist: ViewedDistributor, call: _Call, position: int, now: float) -> float | None:
    """position x average handle time / logged-in advisors able to take the call now."""
    _, step = call.step(now)
    req = call.requirements
    able = sum(
        1 for name in dist._by_language.get(req.language, ())
        if dist._advisors[name].state is not AdvisorState.LOGGED_OUT
        and (skill_gap(dist._advisors[name].profile, req, step, now) is None
             or reserve_fit(dist._advisors[name].profile, req))
    )
    return None if able == 0 else round(position * dist.avg_handle_s() / able, 1)


def snapshot_view(dist: ViewedDistributor, now: float) -> dict[str, Any]:
    """JSON-able picture for supervisors (waited times at ``now``)."""
    calls = sorted(dist._calls.values(), key=lambda c: c.key)
    return {
        "now": now,
        "strategy": dist.strategy,
        "avg_handle_s": round(dist.avg_handle_s(), 1),
        "advisors": [advisor_view(a, now) for a in dist._advisors.values()],
        "calls": [call_view(dist, c, now) for c in calls],
        "waiting": dist.waiting_calls(),
        "queues": queue_views(dist, now),
    }

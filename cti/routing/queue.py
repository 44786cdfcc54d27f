"""The distributor's waiting calls and timers: sorted buckets and a heap, no decisions.

Waiting calls live in (language, topic) buckets sorted by a time-invariant key
(priority + aging folded into the enqueue time), so the best call an advisor may
take is found by looking at the head of the few buckets of their languages,
never at every call. Timers are a heap of (at, seq, kind, id); the distributor
says which entries are stale.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Callable, Iterator

from cti.routing.records import _Call

Key = tuple[float, float, int]
Timer = tuple[float, int, str, str]  # (at, seq, kind, id)


def queue_key(aging_per_s: float, priority: int, enqueued_at: float, seq: int) -> Key:
    """priority + aging x waited orders calls; minus that at enqueue time is the same
    order at any time, so buckets can stay sorted."""
    return (aging_per_s * enqueued_at - priority, enqueued_at, seq)


class WaitingCalls:
    """Waiting calls by (language, topic), each bucket sorted by the calls' keys."""

    def __init__(self) -> None:
        self.buckets: dict[tuple[str, str], list[tuple[Key, str]]] = {}
        self._topics: dict[str, set[str]] = {}  # language -> topics with a bucket

    def add(self, call: _Call) -> None:
        bisect.insort(self.buckets.setdefault(call.bucket, []), (call.key, call.call_id))
        self._topics.setdefault(call.bucket[0], set()).add(call.bucket[1])

    def remove(self, call: _Call) -> None:
        bucket = self.buckets[call.bucket]
        del bucket[bisect.bisect_left(bucket, (call.key, call.call_id))]
        if not bucket:
            del self.buckets[call.bucket]
            self._topics[call.bucket[0]].discard(call.bucket[1])

    def position(self, call: _Call) -> int:
        """1-based rank among the waiting calls of its language and topic."""
        return bisect.bisect_left(self.buckets[call.bucket], (call.key, call.call_id)) + 1

    def in_order(self) -> list[str]:
        """Every waiting call id, best key first."""
        return [cid for _, cid in sorted(e for b in self.buckets.values() for e in b)]

    def buckets_of(self, languages: Iterator[str] | list[str]) -> Iterator[list[tuple[Key, str]]]:
        """The sorted buckets of these languages (each scanned from its head)."""
        for lang in languages:
            for topic in self._topics.get(lang, ()):
                yield self.buckets[(lang, topic)]


class Timers:
    """A heap of timers; stale entries (the distributor decides) are skipped."""

    def __init__(self, stale: Callable[[Timer], bool]) -> None:
        self._heap: list[Timer] = []
        self._seq = itertools.count()
        self._stale = stale

    def push(self, at: float, kind: str, ident: str) -> None:
        heapq.heappush(self._heap, (at, next(self._seq), kind, ident))

    def due(self, now: float) -> Iterator[Timer]:
        """Pop every live timer due at ``now``, earliest first."""
        while self._heap and self._heap[0][0] <= now:
            entry = heapq.heappop(self._heap)
            if not self._stale(entry):
                yield entry

    def next_at(self) -> float | None:
        while self._heap and self._stale(self._heap[0]):
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

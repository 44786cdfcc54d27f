"""The event bus's replay buffer: numbered, bounded by count and by age."""

from __future__ import annotations

from cti.events import EventBus, make_event


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def publish(bus: EventBus, clock: Clock) -> int:
    event = make_event("agent.state", {"state": "available"}, advisor="sofia")
    event["ts"] = clock.now
    return bus.publish(event)["seq"]


def test_since_returns_the_events_after_a_number_oldest_first() -> None:
    clock = Clock()
    bus = EventBus(clock=clock)
    seqs = [publish(bus, clock) for _ in range(5)]
    assert [e["seq"] for e in bus.since(seqs[1])] == seqs[2:]
    assert [e["seq"] for e in bus.since(0)] == seqs
    assert bus.since(seqs[-1]) == []
    assert bus.since(seqs[-1] + 10) == []


def test_the_count_bound_drops_the_oldest() -> None:
    clock = Clock()
    bus = EventBus(replay=3, clock=clock)
    seqs = [publish(bus, clock) for _ in range(5)]
    assert [e["seq"] for e in bus.since(0)] == seqs[2:]
    assert bus.oldest_seq() == seqs[2]


def test_events_older_than_the_replay_age_are_forgotten() -> None:
    clock = Clock()
    bus = EventBus(replay_s=60, clock=clock)
    old = publish(bus, clock)
    clock.now += 30
    kept = publish(bus, clock)
    clock.now += 45  # the first is 75 s old, the second 45 s
    assert [e["seq"] for e in bus.since(0)] == [kept]
    assert bus.oldest_seq() == kept > old
    clock.now += 100  # nothing is young enough: a client asking for old ones reloads
    assert bus.since(0) == []
    assert bus.oldest_seq() == bus.last_seq + 1

"""Advisors added and removed while the distributor runs (the admin API)."""

from __future__ import annotations

import pytest

from cti.routing import AdvisorChanged, AdvisorProfile, AdvisorState, Distributor, Offer

AVAILABLE, LOGGED_OUT = AdvisorState.AVAILABLE, AdvisorState.LOGGED_OUT


def profile(name: str, langs: str = "en", topics: str = "visa") -> AdvisorProfile:
    return AdvisorProfile(name, frozenset(langs.split()), frozenset(topics.split()))


def test_an_advisor_added_live_takes_a_waiting_call_once_available() -> None:
    dist = Distributor([profile("ann", "nl")])
    assert dist.add_call("c1", language="es", topic="visa", now=0.0) == []
    dist.add_advisor(profile("lucia", "es"))
    assert dist.advisor_state("lucia") is LOGGED_OUT
    actions = dist.set_state("lucia", AVAILABLE, now=1.0)
    assert Offer("c1", "lucia") in actions


def test_adding_a_name_twice_is_refused() -> None:
    dist = Distributor([profile("ann")])
    with pytest.raises(ValueError):
        dist.add_advisor(profile("ann"))


def test_a_removed_advisor_is_logged_out_forgotten_and_never_offered() -> None:
    dist = Distributor([profile("ann"), profile("bob")])
    dist.set_state("ann", AVAILABLE, now=0.0)
    actions = dist.remove_advisor("ann", now=1.0)
    assert [a for a in actions if isinstance(a, AdvisorChanged)] == [
        AdvisorChanged("ann", LOGGED_OUT, None, 1.0)]
    assert "ann" not in dist.advisor_names()
    with pytest.raises(KeyError):
        dist.advisor_state("ann")
    assert dist.add_call("c1", language="en", topic="visa", now=2.0) == []
    assert dist.waiting_calls() == ["c1"]
    assert Offer("c1", "bob") in dist.set_state("bob", AVAILABLE, now=3.0)
    dist.add_advisor(profile("ann"))  # the name may come back, logged out
    assert dist.advisor_state("ann") is LOGGED_OUT


def test_an_advisor_on_a_call_is_not_removed() -> None:
    dist = Distributor([profile("ann")])
    dist.set_state("ann", AVAILABLE, now=0.0)
    assert Offer("c1", "ann") in dist.add_call("c1", language="en", topic="visa", now=1.0)
    with pytest.raises(ValueError, match="reserved"):
        dist.remove_advisor("ann", now=1.5)
    dist.offer_accepted("c1", 2.0)
    with pytest.raises(ValueError, match="on_call"):
        dist.remove_advisor("ann", now=2.5)
    assert "ann" in dist.advisor_names()


def test_a_call_kept_for_a_removed_advisor_goes_to_anyone() -> None:
    dist = Distributor([profile("ann"), profile("bob")], preferred_wait_s=60.0)
    dist.set_state("ann", AdvisorState.AWAY, now=0.0, reason="break")
    dist.set_state("bob", AVAILABLE, now=0.0)
    # ann is away, not logged out: the call waits for her
    assert dist.add_call("c1", language="en", topic="visa", preferred_advisor="ann",
                         now=1.0) == []
    assert Offer("c1", "bob") in dist.remove_advisor("ann", now=2.0)


def test_a_wrap_up_running_when_removed_leaves_no_timer_behind() -> None:
    dist = Distributor([profile("ann")], wrap_up_s=30.0)
    dist.set_state("ann", AVAILABLE, now=0.0)
    dist.add_call("c1", language="en", topic="visa", now=1.0)
    dist.offer_accepted("c1", 2.0)
    dist.call_ended("c1", 3.0)
    assert dist.advisor_state("ann") is AdvisorState.WRAP_UP
    dist.remove_advisor("ann", now=4.0)
    assert dist.tick(40.0) == [] and dist.next_deadline() is None

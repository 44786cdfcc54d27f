"""State follows the phone: the distributor's set_phone and the edge's ul.dump parser."""

from __future__ import annotations

from typing import Any

from cti.controller.presence import PhonePresence
from cti.edge.rpc import _aors
from cti.routing import PHONE_OFFLINE, AdvisorChanged, AdvisorState, Distributor, Offer
from tests.unit.test_distributor import make, profile

AVAILABLE, AWAY = AdvisorState.AVAILABLE, AdvisorState.AWAY


def test_phone_offline_sets_an_available_advisor_away_and_back() -> None:
    dist = make(profile("ann"), profile("bob"))
    (changed,) = dist.set_phone("ann", False, now=1.0)
    assert changed == AdvisorChanged("ann", AWAY, PHONE_OFFLINE, 1.0)
    actions = dist.add_call("c1", language="en", topic="visa", now=2.0)
    assert [o.advisor for o in actions if isinstance(o, Offer)] == ["bob"]
    assert dist.set_phone("ann", False, now=3.0) == []  # told twice: nothing new
    (back,) = dist.set_phone("ann", True, now=4.0)
    assert back == AdvisorChanged("ann", AVAILABLE, None, 4.0)


def test_choosing_available_while_offline_waits_for_the_phone() -> None:
    dist = make(profile("ann"), available=False)
    dist.set_phone("ann", False, now=0.0)  # logged out: stays logged out
    assert dist.advisor_state("ann") is AdvisorState.LOGGED_OUT
    dist.set_state("ann", AVAILABLE, now=1.0)
    assert (dist.advisor_state("ann"), dist.advisor_reason("ann")) == (AWAY, PHONE_OFFLINE)
    assert dist.add_call("c1", language="en", topic="visa", now=2.0) == []
    actions = dist.set_phone("ann", True, now=3.0)
    assert [a for a in actions if isinstance(a, Offer)] == [Offer("c1", "ann")]


def test_an_advisor_who_chose_away_stays_away_when_the_phone_returns() -> None:
    dist = make(profile("ann"))
    dist.set_phone("ann", False, now=1.0)
    dist.set_state("ann", AWAY, now=2.0, reason="lunch")
    assert dist.set_phone("ann", True, now=3.0) == []
    assert dist.advisor_reason("ann") == "lunch"


def test_a_call_in_progress_ends_in_phone_offline_not_available() -> None:
    dist = make(profile("ann"), wrap_up_s=0)
    dist.add_call("c1", language="en", topic="visa", now=1.0)
    dist.offer_accepted("c1", now=2.0)
    assert dist.set_phone("ann", False, now=3.0) == []  # the call goes on
    (changed,) = dist.call_ended("c1", now=4.0)
    assert (changed.state, changed.reason) == (AWAY, PHONE_OFFLINE)


def _dump(*aors: tuple[str, list[Any]]) -> dict[str, Any]:
    return {"Domains": [{"Domain": {"Domain": "location", "AoRs": [
        {"Info": {"AoR": aor, "Contacts": [{"Contact": {"Expires": e}} for e in exp]}}
        for aor, exp in aors]}}]}


def test_ul_dump_counts_live_contacts_only() -> None:
    dump = _dump(("ann", [299]), ("bob", ["expired"]), ("cy", ["expired", 30]),
                 ("dee", ["permanent"]), ("eve", []))
    assert _aors(dump) == {"ann", "cy", "dee"}
    assert _aors({}) == set() and _aors(None) == set()


def test_presence_reports_each_change_once() -> None:
    dist: Distributor = make(profile("ann"), profile("bob"))
    applied: list[Any] = []
    presence = PhonePresence(dist, applied.extend, lambda: None)
    presence.update({"ann", "bob"})
    assert applied == []
    presence.update({"bob"})
    presence.update({"bob"})
    assert [(a.advisor, a.reason) for a in applied] == [("ann", PHONE_OFFLINE)]

"""Who works here, live: the config's advisors as the seed, the admin API's
changes over them (stored, audited), logins and routing following at once."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from cti.api.auth import Authenticator, hash_password, sip_ha1
from cti.config import AdvisorSettings, Settings, parse_settings
from cti.controller.admin import AdvisorAdmin
from cti.controller.context import FlowContext
from cti.controller.prompts import PromptLibrary
from cti.controller.workers import WorkerPool
from cti.core.advisors import AdminError, AdvisorDirectory, record_of
from cti.events import EventBus
from cti.plugins import PluginHost
from cti.routing import AdvisorState
from cti.store.db import Store
from cti.store.sessions import StoredSession

REPO = Path(__file__).resolve().parents[2]
LUCIA = {"display_name": "Lucía", "languages": {"es": 5}, "topics": {"visa": 4}}


def settings() -> Settings:
    data: dict[str, Any] = yaml.safe_load((REPO / "config" / "cti.yaml").read_text())
    return parse_settings(data, REPO / "config" / "cti.yaml")


def advisor(name: str, password: str = "a-long-password", **fields: Any) -> AdvisorSettings:
    return AdvisorSettings.model_validate({
        "name": name, "password_hash": hash_password(password),
        "sip_ha1": sip_ha1(name, "cti.local", password), **(fields or LUCIA)})


def test_the_store_wins_and_a_removed_name_is_not_brought_back_by_the_seed() -> None:
    seed = settings().advisors
    sofia = next(a for a in seed if a.name == "sofia")
    lucia = advisor("lucia")
    changed = sofia.model_copy(update={"display_name": "Sofía M."})
    d = AdvisorDirectory(seed, {"lucia": lucia, "emre": None, "sofia": changed})
    assert d.names()[-1] == "lucia" and "emre" not in d.names()
    assert d.get("sofia") is changed and d.names().index("sofia") == 2  # its place kept
    assert d.get("emre") is None and "emre" not in d
    assert d.sip_ha1s()["lucia"] == lucia.sip_ha1 and "emre" not in d.sip_ha1s()
    d.remove("lucia")
    with pytest.raises(KeyError):
        d.remove("lucia")


def test_a_stored_row_that_no_longer_validates_is_skipped_and_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    seed = settings().advisors
    rows: dict[str, Any] = {"sofia": {"name": "sofia", "password_hash": "plain"},
                            "lucia": record_of(advisor("lucia"))}
    with caplog.at_level(logging.ERROR, logger="cti.advisors"):
        d = AdvisorDirectory.load(seed, rows)
    assert d.get("sofia") == next(a for a in seed if a.name == "sofia")  # the config's
    assert d.get("lucia") is not None
    assert "stored advisor 'sofia' ignored" in caplog.text


async def test_the_repo_keeps_records_and_removals_with_their_audit(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    lucia = advisor("lucia")
    await store.skills.save("lucia", {"languages": {"nl": 1}, "topics": {"visa": 1}}, "x")
    await store.advisors.save("lucia", record_of(lucia), "advisor.add", "ada",
                              {"topics": {"visa": 4}}, "10.0.0.1", new_skills=True)
    assert store.skills.all() == {}  # the new record's skills, not an older edit
    await store.sessions.add(StoredSession("h", "emre", "advisor", 1e12), 0)
    await store.advisors.remove("emre", "ada")
    assert list(store.advisors.all()) == ["lucia", "emre"]
    assert store.advisors.all()["emre"] is None
    assert AdvisorSettings.model_validate(store.advisors.all()["lucia"]) == lucia
    assert store.sessions.live(0) == []
    lines = store.audit.lines(action="advisor.")
    assert [(x.action, x.who, x.details["advisor"]) for x in lines] == [
        ("advisor.remove", "ada", "emre"), ("advisor.add", "ada", "lucia")]
    assert lines[1].address == "10.0.0.1"
    store.close()


class EdgeTable:
    """The edge's users table as the admin service keeps it (the e2e test runs the
    real Kamailio): what it was told, in order."""

    def __init__(self) -> None:
        self.told: list[tuple[str, str | None]] = []

    async def set(self, name: str, ha1: str) -> None:
        self.told.append((name, ha1))

    async def remove(self, name: str) -> None:
        self.told.append((name, None))


def flow_context(s: Settings, tmp: Path) -> FlowContext:
    async def nothing(*_: Any) -> None:
        return None

    pool = WorkerPool([], tmp / "w.sock", tmp, lambda *_: None, nothing, nothing)
    return FlowContext(s, pool, EventBus(), Store(tmp / "s.db"), PluginHost(),
                       PromptLibrary(tmp, None))


async def test_admin_changes_reach_logins_routing_and_the_edge_at_once(tmp_path: Path) -> None:
    s = settings()
    ctx = flow_context(s, tmp_path)
    auth = Authenticator(s, ctx.store.sessions, ctx.advisors)
    edge = EdgeTable()
    applied: list[Any] = []
    admin = AdvisorAdmin(ctx, applied.extend, auth, edge)

    with pytest.raises(AdminError) as short:
        await admin.add("lucia", "short", LUCIA, "ada")
    assert short.value.status == 422
    with pytest.raises(AdminError) as no_skills:
        await admin.add("lucia", "demo-lucia", {"role": "advisor"}, "ada")
    assert no_skills.value.status == 422
    with pytest.raises(AdminError) as taken:
        await admin.add("sofia", "demo-sofia-2", LUCIA, "ada")
    assert taken.value.status == 409

    lucia = await admin.add("lucia", "demo-lucia", LUCIA, "ada")
    assert lucia.sip_ha1 == sip_ha1("lucia", s.sip.realm, "demo-lucia")
    assert edge.told == [("lucia", lucia.sip_ha1)]
    assert ctx.distributor.advisor_state("lucia") is AdvisorState.LOGGED_OUT
    assert ctx.distributor.advisor_profile("lucia").languages == {"es": 5}
    token = await auth.login("lucia", "demo-lucia")
    assert token is not None and auth.check(token) is not None

    # A supervisor now: out of routing, the advisor's token ends.
    await admin.update("lucia", {"role": "supervisor"}, None, "ada")
    assert "lucia" not in ctx.distributor.advisor_names()
    assert auth.check(token) is None
    await admin.update("lucia", {"role": "advisor", "topics": {"visa": 2}}, "new-password-1",
                       "ada")
    assert ctx.distributor.advisor_profile("lucia").topics == {"visa": 2}
    assert edge.told[-1] == ("lucia", sip_ha1("lucia", s.sip.realm, "new-password-1"))
    assert await auth.login("lucia", "demo-lucia") is None

    token = await auth.login("lucia", "new-password-1")
    await admin.remove("lucia", "ada")
    assert auth.check(token) is None and await auth.login("lucia", "new-password-1") is None
    assert "lucia" not in ctx.distributor.advisor_names() and "lucia" not in ctx.advisors
    assert edge.told[-1] == ("lucia", None)
    with pytest.raises(AdminError) as gone:
        await admin.remove("lucia", "ada")
    assert gone.value.status == 404
    details = [x.details for x in ctx.store.audit.lines(action="advisor.")]
    assert [d["advisor"] for d in details] == ["lucia"] * 4
    assert not any("password_hash" in d or "sip_ha1" in d for d in details)
    assert details[1] == {"advisor": "lucia", "role": "advisor", "topics": {"visa": 2},
                          "password_changed": True}

    # A new start on the same store: the seed, with the changes over it.
    again = AdvisorDirectory.load(s.advisors, ctx.store.advisors.all())
    assert "lucia" not in again and "sofia" in again
    ctx.store.close()

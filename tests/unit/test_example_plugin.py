"""The example third-party plugin (examples/cti-plugin-hello), installed into the
venv by scripts/setup.sh: found by its entry point, its settings validated by the
host, its event schema, its route rules, and its behaviour over fake services."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType, SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import jsonschema
import pytest
from cti_plugin_hello.http import RULES, make_router
from cti_plugin_hello.plugin import HelloPlugin
from cti_plugin_hello.schemas import HelloSettings
from cti_plugin_hello.services import EVENT, FLAG, vip_call_data
from fastapi import FastAPI, Request
from fastapi.routing import APIRoute

from cti.config import ConfigError
from cti.core.views import CallView
from cti.events import EventBus
from cti.plugins import PluginHost, available_plugins
from cti.plugins.api import PluginManifest, RoutingRequest
from cti.plugins.services import PluginEvents, PluginHttp, PluginRouter

AMS = ZoneInfo("Europe/Amsterdam")


def manifest() -> PluginManifest:
    host = PluginHost()
    host.load({"hello": None}, "cti.yaml")
    return host.plugins["hello"].manifest


def view(number: str = "+31612345678", **changes: Any) -> CallView:
    call = CallView(
        call_id="c-1", kind="inbound", state="incoming", caller_number=number,
        caller_country="NL", caller_timezone=None, dialled="+31701234567", language=None, topic=None, priority=0,
        trainings=frozenset(), reserve=frozenset(), flags=MappingProxyType({}), ivr_path=(),
        advisor=None, worker="w1", held=False, started_at=0.0, queued_at=None,
        answered_at=None, ended_at=None, end_reason=None)
    return replace(call, **changes)


# ------------------------------------------------------------ installation, settings
def test_the_entry_point_is_found() -> None:
    ep = available_plugins()["hello"]
    assert ep.value == "cti_plugin_hello.plugin:HelloPlugin"
    assert ep.load() is HelloPlugin


def test_the_host_loads_it_with_its_settings_validated() -> None:
    host = PluginHost()
    host.load({"hello": {"vip_numbers": ["0031 6 1234 5678"], "priority": 60}}, "cti.yaml")
    loaded = host.plugins["hello"]
    assert isinstance(loaded.obj, HelloPlugin)
    assert loaded.settings == HelloSettings(vip_numbers=["+31612345678"], priority=60)
    assert {"cti_call_incoming", "cti_call_routing", "cti_load"} <= set(host.hooks_of("hello"))


@pytest.mark.parametrize(("raw", "message"), [
    ({"vip_number": ["+31612345678"]},
     r"^cti\.yaml: plugins\.hello\.vip_number: unknown key \(did you mean 'vip_numbers'\?\)$"),
    ({"priority": "high"},
     r"^cti\.yaml: plugins\.hello\.priority: Input should be a valid integer.*\(got 'high'\)$"),
    ({"vip_numbers": "+31612345678"},
     r"^cti\.yaml: plugins\.hello\.vip_numbers: Input should be a valid list"),
    ({"vip_numbers": ["call me"]},
     r"^cti\.yaml: plugins\.hello\.vip_numbers\[1\]: String should match pattern"),
])
def test_a_bad_setting_names_plugins_hello_key(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PluginHost().load({"hello": raw}, "cti.yaml")


# ------------------------------------------------------------------- events
def test_the_manifest_declares_its_event_type_with_a_schema() -> None:
    events = manifest().events
    assert list(events) == [EVENT] == ["hello.vip_call"]
    jsonschema.Draft202012Validator.check_schema(dict(events[EVENT]))


def test_the_event_data_it_builds_matches_its_schema() -> None:
    schema = dict(manifest().events[EVENT])
    data = vip_call_data(view("0031612345678"), 40)
    jsonschema.validate(data, schema)
    assert data == {"number": "+31612345678", "dialled": "+31701234567", "priority": 40}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**data, "extra": 1}, schema)


async def test_the_gateway_declares_its_event_type_and_publishes_its_data() -> None:
    """Through the host's own event code: the type is accepted, the data validated."""
    bus, host = EventBus(), PluginHost()
    host.load({"hello": None}, "cti.yaml")
    for type_, schema in host.plugins["hello"].manifest.events.items():
        bus.types.declare("hello", type_, dict(schema))
    events = PluginEvents("hello", bus, host)
    seq = events.publish(EVENT, vip_call_data(view(), 40), call_id="c-1")
    assert bus.since(seq - 1)[0]["data"]["number"] == "+31612345678"
    with pytest.raises(ValueError, match="does not match its schema"):
        events.publish(EVENT, {"number": "+31612345678"}, call_id="c-1")


# ------------------------------------------------------------------ routes
def test_rules_cover_every_route_and_nothing_else() -> None:
    router = make_router(SimpleNamespace())  # type: ignore[arg-type]
    routes = {(m, r.path) for r in router.routes if isinstance(r, APIRoute) for m in r.methods}
    assert routes == set(RULES)
    assert all(isinstance(r, APIRoute) for r in router.routes)
    mounted: list[PluginRouter] = []
    PluginHttp("hello", mounted, RULES).include_router(router)  # the host's own check
    assert mounted[0].rules == {("GET", "/api/v1/plugins/hello/vips"): "supervisor",
                                ("POST", "/api/v1/plugins/hello/vips"): "supervisor"}


# ----------------------------------------------------- behaviour over fake services
class SqliteStore:
    """services.store over an in-memory SQLite, with the plugin's migrations applied."""

    prefix = "p_hello_"

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        db.row_factory = sqlite3.Row

    def migrate(self, m: PluginManifest) -> None:
        """Each step once, in order (as the gateway's store does)."""
        self.db.execute("CREATE TABLE IF NOT EXISTS versions (version INTEGER)")
        done = {r[0] for r in self.db.execute("SELECT version FROM versions")}
        for step in sorted(m.migrations, key=lambda x: x.version):
            if step.version not in done:
                self.db.execute(step.sql.format(prefix=self.prefix))
                self.db.execute("INSERT INTO versions VALUES (?)", (step.version,))

    async def write(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = self.db.execute(sql, params)
        self.db.commit()
        return int(cur.lastrowid or cur.rowcount)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute(sql, params)]


@dataclass
class FakeServices:
    settings: HelloSettings
    store: SqliteStore
    clock: list[float]
    name: str = "hello"
    log: logging.Logger = logging.getLogger("cti.plugin.hello")
    gateway: Any = field(default_factory=lambda: SimpleNamespace(ivr=SimpleNamespace(
        opening_hours=SimpleNamespace(timezone="Europe/Amsterdam"))))
    flags: list[tuple[str, str, Any]] = field(default_factory=list)
    published: list[tuple[str, dict[str, Any], str | None]] = field(default_factory=list)
    audits: list[tuple[str, str | None, dict[str, Any]]] = field(default_factory=list)
    routers: list[PluginRouter] = field(default_factory=list)
    starters: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    stoppers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.http = PluginHttp(self.name, self.routers, RULES)
        self.calls = SimpleNamespace(set_flag=lambda cid, k, v: self.flags.append((cid, k, v)))
        self.events = SimpleNamespace(publish=self._publish)
        self.audit = SimpleNamespace(record=self._record)

    def _publish(self, type_: str, data: dict[str, Any], *, call_id: str | None = None,
                 advisor: str | None = None) -> int:
        jsonschema.validate(data, dict(manifest().events[type_]))  # as the gateway does
        self.published.append((type_, data, call_id))
        return len(self.published)

    async def _record(self, action: str, by: str | None, details: dict[str, Any]) -> None:
        self.audits.append((action, by, details))

    def now(self) -> float:
        return self.clock[0]

    def on_start(self, fn: Callable[[], Awaitable[None]]) -> None:
        self.starters.append(fn)

    def on_stop(self, fn: Callable[[], Awaitable[None]]) -> None:
        self.stoppers.append(fn)


async def gateway(db: sqlite3.Connection, at: dt.datetime, **settings: Any
                  ) -> tuple[HelloPlugin, FakeServices, httpx.AsyncClient]:
    """What the gateway does for the plugin: load, mount the routes, start."""
    plugin = HelloPlugin()
    services = FakeServices(HelloSettings(**settings), SqliteStore(db), [at.timestamp()])
    services.store.migrate(plugin.cti_plugin_manifest())
    plugin.cti_load(services)  # type: ignore[arg-type]
    for start in services.starters:
        await start()
    app = FastAPI()

    @app.middleware("http")
    async def as_supervisor(request: Request, call_next: Any) -> Any:  # the guard's part
        request.state.principal = SimpleNamespace(user="ines", role="supervisor")
        return await call_next(request)

    app.include_router(services.routers[0].router, prefix=services.http.prefix)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    return plugin, services, client


async def stop(plugin: HelloPlugin, services: FakeServices) -> None:
    for fn in services.stoppers:
        await fn()


async def test_a_vip_call_is_flagged_announced_counted_and_served_first() -> None:
    db = sqlite3.connect(":memory:")
    evening = dt.datetime(2026, 12, 1, 23, 30, tzinfo=AMS)
    plugin, s, client = await gateway(db, evening, vip_numbers=["+31612345678"], priority=45)
    plugin.cti_call_incoming(view("0031612345678"))
    plugin.cti_call_incoming(view("+34911234567", call_id="c-2"))  # not a VIP
    await asyncio.sleep(0)  # the count is stored in a task
    assert s.flags == [("c-1", FLAG, True)]
    assert s.published == [(EVENT, {"number": "+31612345678", "dialled": "+31701234567",
                                    "priority": 45}, "c-1")]
    flagged = view(flags=MappingProxyType({FLAG: True}))
    assert plugin.cti_call_routing(flagged) == RoutingRequest(priority=45)
    assert plugin.cti_call_routing(view("+34911234567")) is None
    async with client:
        assert (await client.get("/api/v1/plugins/hello/vips")).json() == [
            {"number": "+31612345678", "calls_today": 1, "added_by": None}]
        s.clock[0] = evening.timestamp() + 3600  # past midnight in Amsterdam: a new day
        assert (await client.get("/api/v1/plugins/hello/vips")).json()[0]["calls_today"] == 0
        plugin.cti_call_incoming(view("+31612345678"))
        await stop(plugin, s)
        assert (await client.get("/api/v1/plugins/hello/vips")).json()[0]["calls_today"] == 1


async def test_a_vip_added_by_a_supervisor_is_stored_and_known_after_a_restart() -> None:
    db = sqlite3.connect(":memory:")
    at = dt.datetime(2026, 12, 1, 10, 0, tzinfo=AMS)
    plugin, s, client = await gateway(db, at)
    async with client:
        r = await client.post("/api/v1/plugins/hello/vips", json={"number": "0044 20 7946 0000"})
        assert r.status_code == 201
        assert r.json() == {"number": "+442079460000", "calls_today": 0, "added_by": "ines"}
        again = await client.post("/api/v1/plugins/hello/vips", json={"number": "+442079460000"})
        assert again.status_code == 409 and "already a VIP" in again.json()["detail"]
        bad = await client.post("/api/v1/plugins/hello/vips", json={"number": "x", "n": 1})
        assert bad.status_code == 422
    assert s.audits == [("hello.vip_added", "ines", {"number": "+442079460000"})]
    await stop(plugin, s)
    plugin, s, client = await gateway(db, at)  # a new gateway over the same store
    plugin.cti_call_incoming(view("+442079460000"))
    assert s.flags == [("c-1", FLAG, True)]
    await stop(plugin, s)
    async with client:
        assert (await client.get("/api/v1/plugins/hello/vips")).json() == [
            {"number": "+442079460000", "calls_today": 1, "added_by": "ines"}]

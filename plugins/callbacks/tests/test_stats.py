"""The wallboard's call back counts: computed by SQL over the plugin's real table,
"today" from the gateway's local midnight (as the reports count it), the clock the
plugin's (``services.now()``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cti.store.reports import start_of_today
from plugins.callbacks.http import make_router
from plugins.callbacks.services import Callbacks
from plugins.callbacks.storage import Request, RequestRepository
from plugins.callbacks.tests.test_callbacks import NOON, make_services, view
from plugins.callbacks.timing import start_of_today as plugin_start_of_today

MIDNIGHT = start_of_today(NOON)


def request(status: str, updated_at: float, due_at: float = NOON) -> Request:
    return Request(callback_id=0, number="+34911234567", status=status, language="es",
                   topic="visa", priority=0, enqueued_at=NOON - 900,
                   requested_at=NOON - 900, due_at=due_at, zone="Europe/Madrid",
                   updated_at=updated_at)


async def add(repo: RequestRepository, *reqs: Request) -> None:
    for r in reqs:
        await repo.add(r)


@pytest.fixture
def services(tmp_path: Any) -> SimpleNamespace:
    return make_services(tmp_path)


def test_the_plugins_midnight_is_the_reports_midnight() -> None:
    for t in (NOON, MIDNIGHT, MIDNIGHT - 1, NOON + 36 * 3600):
        assert plugin_start_of_today(t) == start_of_today(t)


async def test_no_call_backs_count_zero(services: SimpleNamespace) -> None:
    assert Callbacks(services).stats() == {
        "pending": 0, "scheduled": 0, "queued": 0, "connected_today": 0,
        "unreached_today": 0, "cancelled_today": 0, "next_due_at": None}


async def test_pending_now_and_finished_since_local_midnight(
        services: SimpleNamespace) -> None:
    s = services
    cb = Callbacks(s)
    await add(cb.repo,
              request("scheduled", NOON - 10, due_at=NOON + 3600),
              request("scheduled", MIDNIGHT - 3600, due_at=NOON + 600),  # pending: any day
              request("queued", MIDNIGHT - 7200),
              request("connected", MIDNIGHT),  # at midnight: today
              request("connected", NOON - 60),
              request("connected", MIDNIGHT - 1),  # yesterday
              request("unreached", NOON - 5),
              request("cancelled", MIDNIGHT - 100),
              request("cancelled", NOON - 1))
    assert cb.stats() == {
        "pending": 3, "scheduled": 2, "queued": 1, "connected_today": 2,
        "unreached_today": 1, "cancelled_today": 1, "next_due_at": NOON + 600}
    # A day later by the plugin's clock: yesterday's finished ones no longer count.
    s.now.t = NOON + 24 * 3600
    assert cb.stats() == {
        "pending": 3, "scheduled": 2, "queued": 1, "connected_today": 0,
        "unreached_today": 0, "cancelled_today": 0, "next_due_at": NOON + 600}


async def test_the_route_counts_a_request_then_its_cancel(
        services: SimpleNamespace) -> None:
    s = services
    cb = Callbacks(s)
    app = FastAPI()
    app.include_router(make_router(cb), prefix="/api/v1/plugins/callbacks")
    url = "/api/v1/plugins/callbacks/stats"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://t") as http:
        assert (await http.get(url)).json()["pending"] == 0
        asap = await cb.request(view("c1", number="+34911000001"), "+34911000001", "asap")
        later = await cb.request(view("c2", number="+34911000002"), "+34911000002",
                                 "tomorrow")
        got = (await http.get(url)).json()
        assert (got["pending"], got["queued"], got["scheduled"]) == (2, 1, 1)
        assert got["next_due_at"] == later.due_at
        await cb.cancel(asap.callback_id, "nadia")
        got = (await http.get(url)).json()
        assert (got["pending"], got["queued"], got["cancelled_today"]) == (1, 0, 1)

"""A store that cannot write never strands a call (issue 12, acceptance 1).

During a call the store's writer connection starts refusing writes the way SQLite
does for a read-only database (tests/store_faults.py: the real sqlite3 error, on
the real store). The call ends normally and leaves the active list, /health says
"degraded" with the reason, the next caller still reaches the advisor; once the
store writes again, both calls have their record, offers and wrap-up.
"""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from cti.store.db import RESTART_END_REASON
from tests.e2e.gateway_harness import (
    Advisor,
    call_hotline,
    gateway_settings,
    running_gateway,
    until,
)
from tests.e2e.test_serve_process import _descendants, _serve, _until_gone
from tests.peers.phone import Phone
from tests.store_faults import make_read_only, make_writable

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


async def _answered(emre: Advisor, caller: Phone) -> str:
    """The call of ``caller`` offered to emre, answered."""
    offered = await emre.stream.wait_for(
        "call.offered", timeout=20,
        where=lambda e: e["data"]["caller"]["number"] == caller.name)
    call_id = str(offered["call_id"])
    incoming = await emre.phone.wait_for("leg.incoming", timeout=15)
    await emre.phone.command("answer", leg=incoming["leg"], code=200)
    await emre.stream.wait_for("call.connected", call_id=call_id)
    return call_id


async def _health(emre: Advisor) -> dict[str, Any]:
    r = await emre.http.get("/api/v1/health")
    r.raise_for_status()
    return dict(r.json())


async def test_calls_go_on_while_the_store_cannot_write(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw, Advisor(gw, "emre") as emre, \
            Phone(name="+905321234567") as first, Phone(name="+905321234568") as second:
        await emre.set_state("available")
        assert (await _health(emre))["store"]["ok"] is True
        leg = await call_hotline(first, gw, "42")  # Türkçe, visa
        call_1 = await _answered(emre, first)

        make_read_only(gw.store)  # mid-call: nothing can be written from now on
        await first.command("hangup", leg=leg)
        ended = await emre.stream.wait_for("call.ended", call_id=call_1)
        assert ended["data"]["reason"] == "caller_hangup"
        assert gw.flow.calls.get(call_1) is None  # not stuck in the active list
        health = await _health(emre)
        assert health["status"] == "degraded"
        assert health["store"]["ok"] is False and health["store"]["pending"] >= 1
        assert "readonly" in health["store"]["error"]
        assert any(r.startswith("store:") for r in health["reasons"])
        metrics = (await emre.http.get("/metrics")).text
        assert "cti_store_ok 0" in metrics
        # A durable action is not acknowledged: a clear 503, the flag stays as it was.
        r = await emre.http.post("/api/v1/login",
                                 json={"username": "nadia", "password": "demo-nadia"})
        nadia = {"Authorization": f"Bearer {r.json()['token']}"}
        r = await emre.http.put("/api/v1/ivr/flags/crisis", json={"value": True},
                                headers=nadia)
        assert r.status_code == 503 and "readonly" in r.json()["detail"], r.text
        assert not gw.flow.flags.get("crisis")

        # The next caller still reaches the advisor (the offer's trace is queued).
        await until(lambda: gw.flow.distributor.advisor_state("emre").value == "available", 15)
        leg2 = await call_hotline(second, gw, "42")
        call_2 = await _answered(emre, second)
        assert call_2 != call_1
        await second.command("hangup", leg=leg2)
        await emre.stream.wait_for("call.ended", call_id=call_2)
        assert len(gw.flow.calls) == 0
        rec = gw.store.get_call(call_1)  # its row from the start, its end not yet
        assert rec is not None and rec.ended_at is None

        # The store writes again: the queue is written, /health is ok again.
        make_writable(gw.store)
        await until(lambda: gw.store.spool.status()["ok"], 20)
        health = await _health(emre)
        assert health["store"]["ok"] is True and not any(
            r.startswith("store:") for r in health["reasons"])
        db = sqlite3.connect(gw.store.path)
        try:
            for call_id in (call_1, call_2):
                row = db.execute("SELECT advisor, end_reason, ended_at FROM calls "
                                 "WHERE call_id = ?", (call_id,)).fetchone()
                assert row is not None and row[:2] == ("emre", "caller_hangup") and row[2]
                offers = db.execute("SELECT outcome FROM offers WHERE call_id = ?",
                                    (call_id,)).fetchall()
                assert offers == [("accepted",)]
        finally:
            db.close()


async def test_a_call_in_flight_when_serve_is_killed_is_recorded_as_ended_by_the_restart(
        tmp_path: Path) -> None:
    """Acceptance 4 (the record): the call's row exists from its first second; the
    next start ends it with end_reason gateway_restart."""
    settings = gateway_settings(tmp_path)
    db = settings.path(settings.store.path)
    gw = cast(Any, SimpleNamespace(settings=settings))
    async with _serve(tmp_path, settings) as served, Advisor(gw, "emre") as emre, \
            Phone(name="+905321234567") as caller:
        await emre.set_state("available")
        await call_hotline(caller, gw, "42")
        call_id = await _answered(emre, caller)
        row = _row(db, call_id)  # written when the call started, no end yet
        assert row is not None and row["ended_at"] is None and row["started_at"]
        assert row["advisor"] == "emre"

        children = _descendants(served.proc.pid)
        served.proc.kill()
        assert await served.proc.wait() == -signal.SIGKILL
        await _until_gone(children, timeout=10)
        row = _row(db, call_id)
        assert row is not None and row["ended_at"] is None  # nobody could end it

    async with _serve(tmp_path, settings):
        row = _row(db, call_id)
        assert row is not None and row["end_reason"] == RESTART_END_REASON
        assert row["ended_at"] >= row["started_at"]
        assert row["advisor"] == "emre" and row["answered_at"]  # saved when it connected


def _row(db: Path, call_id: str) -> dict[str, Any] | None:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        row = con.execute("SELECT * FROM calls WHERE call_id = ?", (call_id,)).fetchone()
    finally:
        con.close()
    return None if row is None else dict(row)

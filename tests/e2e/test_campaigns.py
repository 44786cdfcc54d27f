"""A campaign of three numbers end to end (issue 10, acceptance 4).

A supervisor uploads a CSV: one PSTN phone at the test carrier answers (the
advisor, rung first, and the callee hear each other; the advisor's wrap-up is
stored), one rejects every call (busy: retried, then no answer), and one is in
Tokyo, outside its calling window (it waits). The CSV export shows each outcome.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.audio import tone_present, tone_seconds, write_tone
from tests.e2e.gateway_harness import (
    REPO,
    Advisor,
    bus_event,
    hear_each_other,
    running_gateway,
)
from tests.e2e.test_callback_restart import Supervisor
from tests.e2e.test_trunk import TRUNK_PASSWORD, TRUNK_USER, register_pstn, trunk
from tests.peers.carrier import Carrier
from tests.peers.phone import Phone

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ANSWERS, BUSY, TOKYO = "+442071230001", "+442071230002", "+81312345678"
BASE = "/api/v1/plugins/campaigns/campaigns"


def london_window() -> tuple[str, str]:
    """A four-hour window around London's present hour: open for the London numbers,
    closed for Tokyo (nine hours ahead) — whatever the time of the run."""
    now = datetime.now(ZoneInfo("Europe/London"))
    start = (now - timedelta(hours=1)).strftime("%H:00")
    end = (now + timedelta(hours=3)).strftime("%H:00")
    return start, end


async def test_a_campaign_of_three_numbers(tmp_path: Path, short_prompts: Path) -> None:
    write_tone(tmp_path / "caller.wav", 1000, 30)  # the advisor plays this
    write_tone(tmp_path / "team.wav", 440, 30)  # the callee plays this
    start, end = london_window()
    plugins = {"campaigns": {"retry_after_s": 0.3, "max_attempts": 2, "max_share": 1.0,
                             "pace_s": 1}}
    async with Carrier(trunk_user=TRUNK_USER, trunk_password=TRUNK_PASSWORD) as carrier, \
            Phone(name=ANSWERS) as callee, Phone(name=BUSY) as busy:
        await register_pstn(carrier, callee, ANSWERS)
        await register_pstn(carrier, busy, BUSY)
        prompts = {"texts": str(REPO / "config" / "prompts.yaml"),
                   "cache_dir": str(REPO / "var" / "prompts"), "override_dir": str(short_prompts)}
        async with running_gateway(tmp_path, plugins=plugins, trunks=[trunk(carrier)],
                                   prompts=prompts) as gw, \
                Supervisor(gw.settings) as nadia, Advisor(gw, "sofia") as sofia:
            auth = {"Authorization": f"Bearer {nadia.token}"}
            upload = ("number,name,language,note\n"
                      f"{ANSWERS},Ann Smith,en,stranded in Lima\n"
                      f"{BUSY},Bob Jones,en,\n"
                      f"{TOKYO},Chiyo Sato,en,hotel near Shinjuku\n")
            r = await nadia.http.post(BASE, headers=auth, json={
                "name": "Repatriation Peru", "topic": "visa", "csv": upload,
                "window_start": start, "window_end": end})
            assert r.status_code == 201, r.text
            campaign = r.json()
            assert campaign["counts"]["total"] == 3 and campaign["status"] == "running"
            cid = campaign["campaign_id"]
            bad = await nadia.http.post(BASE, headers=auth, json={
                "name": "x", "topic": "visa", "csv": "number\n12345\n"})
            assert bad.status_code == 422 and "line 2" in bad.json()["detail"]

            # Sofia (English, visa) becomes available: her phone rings first.
            await sofia.set_state("available")
            ring = await sofia.phone.wait_for("leg.incoming", timeout=20)
            first = ring["headers"]["x-cti-call-id"]
            assert not carrier.invites_to(ANSWERS)
            offered = await bus_event(gw, "call.offered")
            assert offered["call_id"] == first and offered["data"]["kind"] == "outbound"
            assert offered["data"]["plugins"]["campaigns"]["name"] == "Ann Smith"
            await sofia.phone.command("answer", leg=ring["leg"], code=200)
            back = await callee.wait_for("leg.incoming", timeout=20)
            await callee.command("answer", leg=back["leg"], code=200)
            await callee.wait_for("leg.media", leg=back["leg"], active=True)
            await bus_event(gw, "call.reached")
            # The callee hears who is calling, in the row's language, then the advisor.
            greeting = await bus_event(gw, "ivr.prompt", kind="greeting")
            assert greeting["data"]["prompts"] == ["en/campaigns.greeting"]
            bridged = await bus_event(gw, "call.bridged")
            assert bridged["call_id"] == first and bridged["data"]["greeted"] is True
            heard_by_sofia, heard_by_callee = await hear_each_other(
                tmp_path, sofia.phone, ring["leg"], callee, back["leg"], "camp")
            assert tone_present(heard_by_sofia, 440, min_seconds=1.2), \
                tone_seconds(heard_by_sofia, 440)
            assert tone_present(heard_by_callee, 1000, min_seconds=1.2), \
                tone_seconds(heard_by_callee, 1000)
            await callee.command("hangup", leg=back["leg"])
            await sofia.phone.wait_for("leg.state", leg=ring["leg"], state="disconnected")
            await bus_event(gw, "campaign.attempt", status="reached")
            w = await sofia.http.post(f"/api/v1/calls/{first}/wrap-up",
                                      headers={"Authorization": f"Bearer {sofia.token}"},
                                      json={"code": "info_given", "note": "flight on Friday"})
            assert w.status_code == 200, w.text

            # Bob's phone rejects every call: busy, retried, then no answer.
            for attempt in (1, 2):
                ring = await sofia.phone.wait_for("leg.incoming", timeout=20)
                await sofia.phone.command("answer", leg=ring["leg"], code=200)
                inc = await busy.wait_for("leg.incoming", timeout=20)
                await busy.command("hangup", leg=inc["leg"], code=486)  # busy
                await sofia.phone.wait_for("leg.state", leg=ring["leg"],
                                           state="disconnected", timeout=20)
                tried = await bus_event(gw, "campaign.attempt", attempt=attempt, line=3)
                assert tried["data"]["reason"] == "busy"
                assert tried["data"]["status"] == ("scheduled" if attempt == 1
                                                   else "no_answer")

            # Tokyo waits for its window; nobody rings there.
            progress = await nadia.http.get(f"{BASE}/{cid}", headers=auth)
            counts = progress.json()["counts"]
            assert (counts["reached"], counts["no_answer"], counts["scheduled"]) == (1, 1, 1)
            assert progress.json()["status"] == "running"
            assert not carrier.invites_to(TOKYO)

            export = await nadia.http.get(f"{BASE}/{cid}/export.csv", headers=auth)
            assert export.status_code == 200
            assert export.headers["content-type"].startswith("text/csv")
            rows = {r["number"]: r for r in csv.DictReader(io.StringIO(export.text))}
            assert (rows[ANSWERS]["status"], rows[ANSWERS]["wrap_up_code"],
                    rows[ANSWERS]["wrap_up_note"], rows[ANSWERS]["advisor"]) == (
                "reached", "info_given", "flight on Friday", "sofia")
            assert (rows[BUSY]["status"], rows[BUSY]["attempts"],
                    rows[BUSY]["last_reason"]) == ("no_answer", "2", "busy")
            assert (rows[TOKYO]["status"], rows[TOKYO]["attempts"]) == ("scheduled", "0")
            opens = datetime.fromisoformat(rows[TOKYO]["next_call_at"])
            assert opens.utcoffset() == timedelta(hours=9)  # Tokyo's local time
            assert opens.strftime("%H:%M") == start and opens.timestamp() > time.time()

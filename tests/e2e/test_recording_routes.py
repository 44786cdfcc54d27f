"""The coach routes on a real gateway (real SQLite, real HTTP server): the roles,
Range, the audit of listens and downloads, missing files, paths outside the
directory, holds and signed audio links. The recording plugin is enabled; the
test puts index rows and files in place itself (harness.py), without calls."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from plugins.recording.services import Recordings
from plugins.recording.tests.harness import add_with_file, recording
from tests.e2e.gateway_harness import running_gateway

pytestmark = pytest.mark.e2e

API = "/api/v1/plugins/recording"
LISTEN = "plugin.recording.recording.listen"


@dataclass
class Env:
    http: httpx.AsyncClient
    plugin: Recordings
    directory: Path
    users: dict[str, dict[str, str]]

    async def audit(self, action: str) -> list[dict[str, Any]]:
        r = await self.http.get("/api/v1/audit", params={"action": action},
                                headers=self.users["nadia"])
        assert r.status_code == 200, r.text
        return list(r.json())


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    directory = tmp_path / "recordings"
    async with running_gateway(tmp_path,
                               plugins={"recording": {"directory": str(directory)}}) as gw:
        plugin = gw.plugins.plugins["recording"].obj.rec
        base = f"http://{gw.settings.http.host}:{gw.settings.http.port}"
        async with httpx.AsyncClient(base_url=base) as http:
            users = {}
            for user in ("sofia", "ines", "nadia"):
                r = await http.post("/api/v1/login",
                                    json={"username": user, "password": f"demo-{user}"})
                assert r.status_code == 200, r.text
                users[user] = {"Authorization": f"Bearer {r.json()['token']}"}
            yield Env(http, plugin, directory, users)


async def test_an_advisor_is_refused_and_a_coach_finds_recordings(env: Env) -> None:
    rec, _ = await add_with_file(env.plugin.repo, env.directory, "call-a")
    await add_with_file(env.plugin.repo, env.directory, "call-b", advisors=["michel"],
                        topic="visa")
    sofia, ines = env.users["sofia"], env.users["ines"]
    for method, path in (("GET", "/recordings"), ("GET", f"/recordings/{rec.recording_id}"),
                         ("GET", f"/recordings/{rec.recording_id}/audio"),
                         ("GET", f"/recordings/{rec.recording_id}/download"),
                         ("POST", f"/recordings/{rec.recording_id}/audio-link")):
        r = await env.http.request(method, API + path, headers=sofia)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["detail"] == "coaches, supervisors and admins only"
        assert (await env.http.request(method, API + path)).status_code == 401
    r = await env.http.get(f"{API}/recordings", headers=ines)
    assert r.status_code == 200
    assert sorted(x["call_id"] for x in r.json()) == ["call-a", "call-b"]
    r = await env.http.get(f"{API}/recordings", params={"advisor": "sofia"}, headers=ines)
    assert [x["call_id"] for x in r.json()] == ["call-a"]
    assert r.json()[0]["paused"] == [[0.5, 0.7]]
    r = await env.http.get(f"{API}/recordings", params={"topic": "visa"}, headers=ines)
    assert [x["call_id"] for x in r.json()] == ["call-b"]
    r = await env.http.get(f"{API}/recordings", params={"limit": 501}, headers=ines)
    assert r.status_code == 422
    r = await env.http.get(f"{API}/recordings/{rec.recording_id}", headers=env.users["nadia"])
    assert r.status_code == 200 and r.json()["call_id"] == "call-a"
    # Nobody hears anything: no listen was audited.
    assert await env.audit(LISTEN) == []


async def test_range_requests_get_exactly_their_bytes_and_one_listen_is_audited(
        env: Env) -> None:
    rec, data = await add_with_file(env.plugin.repo, env.directory, "call-r")
    size, ines = len(data), env.users["ines"]
    url = f"{API}/recordings/{rec.recording_id}/audio"

    r = await env.http.get(url, headers={**ines, "Range": "bytes=0-"})
    assert r.status_code == 206 and r.content == data
    assert r.headers["content-range"] == f"bytes 0-{size - 1}/{size}"
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["content-type"] == "audio/wav"
    r = await env.http.get(url, headers={**ines, "Range": "bytes=100-1099"})
    assert r.status_code == 206 and r.content == data[100:1100]
    assert r.headers["content-range"] == f"bytes 100-1099/{size}"
    assert r.headers["content-length"] == "1000"
    r = await env.http.get(url, headers={**ines, "Range": "bytes=-44"})
    assert r.status_code == 206 and r.content == data[-44:]
    assert r.headers["content-range"] == f"bytes {size - 44}-{size - 1}/{size}"
    r = await env.http.get(url, headers={**ines, "Range": f"bytes={size - 10}-{size + 500}"})
    assert r.status_code == 206 and r.content == data[-10:]

    # One playback (0-, then seeks): one listen, by ines, of this recording, from here.
    listens = await env.audit(LISTEN)
    assert len(listens) == 1
    assert listens[0]["who"] == "ines"
    details = listens[0]["details"]
    assert (details["recording_id"], details["call_id"], details["address"]) == (
        rec.recording_id, "call-r", "127.0.0.1")

    for bad in (f"bytes={size}-", f"bytes={size + 5}-{size + 9}", "bytes=-0"):
        r = await env.http.get(url, headers={**ines, "Range": bad})
        assert r.status_code == 416, bad
        assert r.headers["content-range"] == f"bytes */{size}"
    assert len(await env.audit(LISTEN)) == 1

    r = await env.http.get(url, headers=ines)  # no Range: the whole file, a new listen
    assert r.status_code == 200 and r.content == data
    assert r.headers["accept-ranges"] == "bytes"
    assert len(await env.audit(LISTEN)) == 2


async def test_download_is_an_audited_attachment(env: Env) -> None:
    rec, data = await add_with_file(env.plugin.repo, env.directory, "call-d")
    r = await env.http.get(f"{API}/recordings/{rec.recording_id}/download",
                           headers=env.users["nadia"])
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-disposition"] == \
        f'attachment; filename="recording-{rec.recording_id}.wav"'
    [line] = await env.audit("plugin.recording.recording.download")
    assert line["who"] == "nadia" and line["details"]["call_id"] == "call-d"
    assert line["details"]["address"] == "127.0.0.1"


async def test_unknown_declined_failed_gone_and_escaping_recordings(
        env: Env, caplog: pytest.LogCaptureFixture) -> None:
    repo, ines = env.plugin.repo, env.users["ines"]
    declined = recording("call-no", None, status="declined", consent="declined")
    failed = recording("call-f", None, status="failed", error="worker lost")
    await repo.add(declined)
    await repo.add(failed)
    outside = env.directory.parent / "outside.wav"
    outside.write_bytes(b"RIFF secret")
    escape = recording("call-x", "../outside.wav")
    await repo.add(escape)
    (env.directory / "link.wav").symlink_to(outside)
    linked = recording("call-l", "link.wav")
    await repo.add(linked)
    gone, _ = await add_with_file(repo, env.directory, "call-g")
    os.unlink(env.directory / str(gone.path))

    def audio(rec_id: int) -> str:
        return f"{API}/recordings/{rec_id}/audio"

    r = await env.http.get(audio(9999), headers=ines)
    assert r.status_code == 404 and r.json()["detail"] == "no recording 9999"
    assert (await env.http.get(f"{API}/recordings/9999", headers=ines)).status_code == 404
    r = await env.http.get(audio(declined.recording_id), headers=ines)
    assert r.status_code == 404 and "declined" in r.json()["detail"]
    r = await env.http.get(f"{API}/recordings/{failed.recording_id}/download", headers=ines)
    assert r.status_code == 404 and "failed (worker lost)" in r.json()["detail"]
    caplog.set_level(logging.ERROR)
    for rec in (escape, linked):
        r = await env.http.get(audio(rec.recording_id), headers=ines)
        assert r.status_code == 403, r.text
        assert "outside the recordings directory" in r.json()["detail"]
        assert b"secret" not in r.content
    r = await env.http.get(audio(gone.recording_id), headers={**ines, "Range": "bytes=0-"})
    assert r.status_code == 410 and "no longer on disk" in r.json()["detail"]
    assert any("is missing" in m and gone.call_id in m for m in caplog.messages)
    assert any("leads outside" in m for m in caplog.messages)
    assert await env.audit(LISTEN) == []  # nothing was heard


async def test_a_supervisor_holds_a_recording_and_a_coach_may_not(env: Env) -> None:
    rec, _ = await add_with_file(env.plugin.repo, env.directory, "call-h")
    url = f"{API}/recordings/{rec.recording_id}/hold"
    body = {"held": True, "reason": "complaint 42"}
    r = await env.http.post(url, json=body, headers=env.users["ines"])
    assert r.status_code == 403 and r.json()["detail"] == "supervisors and admins only"
    r = await env.http.post(url, json=body, headers=env.users["nadia"])
    assert r.status_code == 200 and (r.json()["held"], r.json()["held_reason"]) == (
        True, "complaint 42")
    assert env.plugin.repo.get(rec.recording_id).held  # type: ignore[union-attr]
    [line] = await env.audit("plugin.recording.recording.hold")
    assert line["who"] == "nadia"
    assert line["details"] | {} == {"recording_id": rec.recording_id, "call_id": "call-h",
                                    "address": "127.0.0.1", "held": True,
                                    "reason": "complaint 42"}
    r = await env.http.post(f"{API}/recordings/9999/hold", json=body,
                            headers=env.users["nadia"])
    assert r.status_code == 404


async def test_a_signed_audio_link_plays_one_recording_only(env: Env) -> None:
    rec, data = await add_with_file(env.plugin.repo, env.directory, "call-s")
    other, _ = await add_with_file(env.plugin.repo, env.directory, "call-o")
    r = await env.http.post(f"{API}/recordings/{rec.recording_id}/audio-link",
                            headers=env.users["ines"])
    assert r.status_code == 200
    url = r.json()["url"]
    assert url.startswith(f"{API}/recordings/{rec.recording_id}/stream?link=")
    r = await env.http.get(url, headers={"Range": "bytes=0-99"})  # no token needed
    assert r.status_code == 206 and r.content == data[:100]
    [line] = await env.audit(LISTEN)
    assert line["who"] == "ines" and line["details"]["recording_id"] == rec.recording_id
    link = url.split("link=")[1]
    for bad_url in (f"{API}/recordings/{other.recording_id}/stream?link={link}",
                    f"{API}/recordings/{rec.recording_id}/stream",
                    f"{API}/recordings/{rec.recording_id}/stream?link={link[:-1]}"
                    f"{'1' if link.endswith('0') else '0'}"):
        r = await env.http.get(bad_url)
        assert r.status_code == 403, bad_url
    user, expires, sig = link.split(".")
    r = await env.http.get(f"{API}/recordings/{rec.recording_id}/stream"
                           f"?link={user}.{int(expires) + 3600}.{sig}")
    assert r.status_code == 403  # a longer life is not signed

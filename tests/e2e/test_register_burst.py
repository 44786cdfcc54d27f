"""A shift starts: 40 advisors' phones REGISTER at the same moment (issue 15).

Real phones: one SIPp with a CSV row per advisor, digest auth, all 40 outstanding
at once, against a real Kamailio edge. The edge's usrloc writes every binding
through to sqlite (db_mode 1); before the writes were serialised, two Kamailio
children saving at once got "database is locked" and the phone a 500, and that
advisor stayed offline until their phone registered again.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cti.edge import EdgeSettings, KamailioEdge
from cti.edge.render import paths_for
from cti.ports import free_port
from scripts.load.sipp import Sipp, register_xml

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(90),
    pytest.mark.skipif(shutil.which("kamailio") is None or shutil.which("sipp") is None,
                       reason="kamailio and sipp needed"),
]

REALM = "cti.test"
PHONES = 40


def _password(name: str) -> str:
    return f"{name}-secret"


@pytest.fixture
async def edge() -> AsyncIterator[KamailioEdge]:
    # Short path on purpose: unix socket paths are limited to 107 bytes.
    runtime_dir = Path(tempfile.mkdtemp(prefix="cti-regb-"))
    names = [f"adv{i:02d}" for i in range(PHONES)]
    settings = EdgeSettings(
        ip="127.0.0.1", port=free_port(), runtime_dir=runtime_dir, realm=REALM,
        hotline_numbers=["+31247247247"], workers=[],
        advisors={n: _password(n) for n in names},
        # Every SIP child takes REGISTERs: more of them, more writers at once.
        children=4,
    )
    edge = KamailioEdge(settings)
    try:
        await edge.start()
        yield edge
    finally:
        await edge.stop()
        shutil.rmtree(runtime_dir, ignore_errors=True)


def _stored_users(db: Path) -> set[str]:
    con = sqlite3.connect(db)
    try:
        return {row[0] for row in con.execute("SELECT username FROM location")}
    finally:
        con.close()


async def test_forty_phones_registering_at_once_all_get_200(edge: KamailioEdge) -> None:
    settings = edge.settings
    names = sorted(settings.advisors)
    folder = settings.runtime_dir / "sipp"
    folder.mkdir()
    csv = folder / "phones.csv"
    csv.write_text("SEQUENTIAL\n" + "".join(
        f"{n};[authentication username={n} password={_password(n)}]\n" for n in names))
    phones = Sipp("phones", folder, [
        "-inf", str(csv), "-m", str(PHONES), "-l", str(PHONES), "-r", "1000"])
    phones.start(register_xml(free_port(), 3600), f"127.0.0.1:{settings.port}")
    try:
        assert phones.wait(60) == 0, (folder / "phones-errors.log").read_text()
    finally:
        phones.stop()

    counts = phones.counts()
    assert counts["successful"] == PHONES and counts["failed"] == 0, counts
    assert await edge.rpc.registered_users() == set(names)
    # Written through: every binding is in the file an edge restart loads back.
    assert _stored_users(paths_for(settings.runtime_dir).location_db) == set(names)
    assert edge.files is not None
    assert "database is locked" not in edge.files.log_file.read_text()

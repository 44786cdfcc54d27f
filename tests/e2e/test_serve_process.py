"""`cti serve` as a real process: it prints where it listens and leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.gateway_harness import REPO, gateway_settings

pytestmark = pytest.mark.e2e


def _alive(pid: int) -> bool:
    """True if pid runs and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            found.add(c)
            todo.append(c)
    return found


async def _until_gone(pids: set[int], timeout: float = 10) -> None:
    async def poll() -> None:
        while any(_alive(p) for p in pids):
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


@contextlib.asynccontextmanager
async def _serve(tmp: Path):  # noqa: ANN201
    settings = gateway_settings(tmp)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cti.cli", "serve", "--config", str(settings.source),
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True)
    try:
        lines = []
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line, f"cti serve exited early: {lines}"
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        assert any("is running" in x for x in lines)
        assert any(f"{settings.sip.ip}:{settings.sip.port}" in x for x in lines)
        yield proc, settings
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_serve_stops_everything_it_started(tmp_path: Path, sig: signal.Signals) -> None:
    async with _serve(tmp_path) as (proc, settings):
        url = f"http://{settings.http.host}:{settings.http.port}/api/v1/health"
        async with httpx.AsyncClient() as http:
            health = (await http.get(url)).json()
        assert health["status"] == "ok"
        assert all(w["up"] for w in health["workers"].values())
        children = _descendants(proc.pid)
        names = {Path(f"/proc/{p}/comm").read_text().strip() for p in children}
        assert "kamailio" in names and len(children) >= 3
        runtime = settings.path(settings.runtime_dir)

        proc.send_signal(sig)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
        await _until_gone(children, timeout=5)
        assert not list(runtime.rglob("*.sock")), "sockets left behind"


async def test_killed_serve_takes_its_children_with_it(tmp_path: Path) -> None:
    async with _serve(tmp_path) as (proc, _settings):
        children = _descendants(proc.pid)
        assert children
        proc.kill()
        await proc.wait()
        await _until_gone(children, timeout=5)

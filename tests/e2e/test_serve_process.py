"""`cti serve` as a real process: it prints where it listens and leaves nothing behind.

SIGTERM (a service manager), SIGINT (Ctrl-C: the terminal signals the foreground
process group) and SIGKILL of `cti serve` itself (only the parent-death signal
is left) must all take Kamailio and every media worker with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from cti.config import Settings
from tests.e2e.gateway_harness import REPO, gateway_settings

pytestmark = pytest.mark.e2e

START_TIMEOUT = 20  # workers + Kamailio are ready in about 1 s


def _alive(pid: int) -> bool:
    """True if pid runs and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            found.add(c)
            todo.append(c)
    return found


async def _until_gone(pids: set[int], timeout: float) -> None:
    async def poll() -> None:
        while any(_alive(p) for p in pids):
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        left = {p: _comm(p) for p in pids if _alive(p)}
        raise AssertionError(f"still running after {timeout} s: {left}") from None


@dataclass
class Served:
    proc: asyncio.subprocess.Process
    settings: Settings
    runtime: Path
    stderr_path: Path
    stdout: list[str] = field(default_factory=list)
    pids: dict[str, int] = field(default_factory=dict)  # what serve started, by role

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-3000:]

    async def rest_of_stdout(self) -> list[str]:
        assert self.proc.stdout is not None
        rest = (await asyncio.wait_for(self.proc.stdout.read(), 5)).decode()
        self.stdout += rest.splitlines(keepends=True)
        return self.stdout


@contextlib.asynccontextmanager
async def _serve(tmp: Path, settings: Settings | None = None) -> AsyncIterator[Served]:
    """``settings``: from gateway_settings(tmp, ...) (which wrote tmp/cti.yaml), to
    serve that config again; by default the demo config on free ports."""
    settings = settings or gateway_settings(tmp)  # free ports; writes tmp/cti.yaml
    runtime = settings.path(settings.runtime_dir)
    stderr_path = tmp / "serve.stderr"
    for n in range(2, 100):  # served again: each run keeps its own log
        if not stderr_path.exists():
            break
        stderr_path = tmp / f"serve.{n}.stderr"
    with stderr_path.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cti.cli", "serve", "--config", str(tmp / "cti.yaml"),
            cwd=REPO, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=err, start_new_session=True)  # its own group, like a terminal job
    served = Served(proc, settings, runtime, stderr_path)
    try:
        assert proc.stdout is not None
        while not any("Ctrl-C stops everything" in x for x in served.stdout):
            line = (await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)).decode()
            assert line, f"cti serve exited early: {served.stdout}\n{served.stderr()}"
            served.stdout.append(line)
        yield served
    finally:
        # Whatever happened: nothing this test started may survive it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in [*served.pids.values(), *_descendants(proc.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        await proc.wait()
        shutil.rmtree(runtime, ignore_errors=True)


async def _check_running(served: Served) -> None:
    """It says where it listens, health shows both workers up; note every pid."""
    s = served.settings
    out = "".join(served.stdout)
    assert "is running" in out
    assert f"{s.sip.ip}:{s.sip.port}" in out and f":{s.http.port}/api/v1" in out
    async with httpx.AsyncClient() as http:
        r = await http.get(f"http://{s.http.host}:{s.http.port}/api/v1/health", timeout=5)
    health = r.json()
    assert r.status_code == 200 and health["status"] == "ok", health
    assert set(health["workers"]) == {"w1", "w2"}
    assert all(w["up"] and w["pid"] for w in health["workers"].values()), health
    for wid, w in health["workers"].items():
        served.pids[wid] = w["pid"]
        assert f"media worker {wid}" in out and f"pid {w['pid']}" in out
    pid_file = served.runtime / "edge" / "kamailio.pid"
    served.pids["kamailio"] = int(pid_file.read_text().strip())
    assert _comm(served.pids["kamailio"]) == "kamailio"

    children = _descendants(served.proc.pid)
    assert set(served.pids.values()) <= children, (served.pids, children)
    kamailio_kids = _descendants(served.pids["kamailio"])
    assert kamailio_kids, "Kamailio forks its SIP/RPC processes"
    for n, pid in enumerate(kamailio_kids):
        served.pids[f"kamailio-{n}"] = pid
    assert all(_alive(p) for p in served.pids.values())


def _ctrl_c(proc: asyncio.subprocess.Process) -> None:
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C


def _sigterm(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGTERM)


@pytest.mark.parametrize("stop", [_sigterm, _ctrl_c], ids=["sigterm", "ctrl-c"])
async def test_serve_stops_everything_it_started(tmp_path: Path, stop) -> None:  # noqa: ANN001
    async with _serve(tmp_path) as served:
        await _check_running(served)

        stop(served.proc)
        try:
            code = await asyncio.wait_for(served.proc.wait(), 8)
        except TimeoutError:
            raise AssertionError(f"cti serve did not exit: {served.stderr()}") from None
        assert code == 0, served.stderr()
        out = await served.rest_of_stdout()
        assert out[-2:] == ["cti: stopping\n", "cti: stopped\n"], out
        # serve waits for its children: they are gone when it has exited.
        await _until_gone(set(served.pids.values()), timeout=1)
        assert not _descendants(served.proc.pid)
        left = [p for p in served.runtime.rglob("*") if p.is_socket()]
        assert not left, f"sockets left behind: {left}"
        assert "Traceback" not in served.stderr(), served.stderr()


async def test_killed_serve_takes_its_children_with_it(tmp_path: Path) -> None:
    async with _serve(tmp_path) as served:
        await _check_running(served)

        served.proc.kill()  # no handler runs: only PR_SET_PDEATHSIG can stop the children
        await served.proc.wait()
        # A bound, not a speed: under load the children take longer to exit.
        await _until_gone(set(served.pids.values()), timeout=10)

"""Many media workers (issue 15): a `cti serve` with 60 workers forked from the
zygote starts, and every worker takes calls from real SIPp callers through the
edge, with no RTP port taken twice; forked workers (and the zygote) killed come back. Memory and start time at 100-500 workers are
benchmarks (docs/benchmarks.md), not asserted here."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import tempfile
from pathlib import Path

import pytest

from cti.controller.workers import WorkerLink, WorkerPool, WorkerSpec
from scripts.load.report import table
from scripts.load.scenarios import CALLS_PER_WORKER, Plan, run
from tests.peers.ports import free_port, free_port_range

pytestmark = pytest.mark.e2e

WORKERS = 60


@pytest.mark.timeout(300)
async def test_sixty_forked_workers_start_and_every_one_takes_calls() -> None:
    # Every slot filled: whichever worker the edge picks first, each gets calls.
    plan = Plan("ivr-queue", callers=WORKERS * CALLS_PER_WORKER, advisors=0, seconds=3,
                workers=WORKERS, webrtc=False, keep=True)
    result = await run(plan)
    report = table(result)
    assert result.folder is not None
    try:
        assert result.failed == 0, report
        run_dir = result.folder / "run"
        logs = sorted(run_dir.glob("worker-w*.log"))
        assert len(logs) == WORKERS, report
        idle = [p.name for p in logs if "incoming leg=" not in p.read_text(errors="replace")]
        assert not idle, f"workers that took no call: {idle}"
        clashes = [p.name for p in logs
                   if re.search("already in use", p.read_text(errors="replace"), re.I)]
        assert not clashes, f"port clashes in {clashes}"
        # forked: the workers are the zygote's children, measured as workers
        assert (run_dir / "zygote.log").exists()
        workers = next(u for u in result.gateway if u.role == "workers")
        assert workers.processes == WORKERS, report
    finally:
        shutil.rmtree(result.folder, ignore_errors=True)


def _ppid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[1])


async def _all_up(pool: WorkerPool, old: dict[str, int], timeout: float = 20) -> None:
    """Every worker up again with a new pid (not the one in ``old``)."""
    async def poll() -> None:
        while not all(link.up and link.process is not None
                      and link.process.pid != old[w] for w, link in pool.links.items()):
            await asyncio.sleep(0.05)
    await asyncio.wait_for(poll(), timeout)


@pytest.mark.timeout(90)
async def test_a_killed_worker_and_a_killed_zygote_are_restarted(tmp_path: Path) -> None:
    """The pool alone (no edge): kill -9 of a forked worker is seen through the
    zygote's report and the worker comes back; kill -9 of the zygote takes its
    workers down, and all of them come back under a new zygote."""
    specs = [WorkerSpec(f"w{i}", "127.0.0.1", free_port(), free_port_range(8), 8)
             for i in range(3)]
    downs: list[str] = []

    async def on_up(_: WorkerLink) -> None:
        return None

    async def on_down(link: WorkerLink) -> None:
        downs.append(link.worker_id)

    run_dir = Path(tempfile.mkdtemp(prefix="cti-zy-"))  # unix socket paths are short
    pool = WorkerPool(specs, run_dir / "w.sock", tmp_path, on_event=lambda *_: None,
                      on_up=on_up, on_down=on_down, restart_delay_s=0.05,
                      fork_from_zygote=True)
    try:
        await pool.start()
        assert pool.zygote is not None and pool.zygote.process is not None
        first_zygote = pool.zygote.process.pid
        pids = {w: link.process.pid for w, link in pool.links.items() if link.process}
        assert {_ppid(p) for p in pids.values()} == {first_zygote}

        os.kill(pids["w1"], signal.SIGKILL)
        await _all_up(pool, {**pids, "w0": -1, "w2": -1})
        assert downs == ["w1"] and pool.links["w1"].restarts == 1
        assert pool.links["w0"].process is not None
        assert pool.links["w0"].process.pid == pids["w0"]  # the others untouched

        pids = {w: link.process.pid for w, link in pool.links.items() if link.process}
        os.kill(first_zygote, signal.SIGKILL)
        await _all_up(pool, pids)
        assert sorted(downs[1:]) == ["w0", "w1", "w2"]
        assert pool.zygote.process.pid != first_zygote and pool.zygote.starts == 2
        assert {_ppid(link.process.pid) for link in pool.links.values()
                if link.process} == {pool.zygote.process.pid}
        for p in pids.values():  # none of the old workers lingers
            assert not Path(f"/proc/{p}").exists() or _ppid(p) != first_zygote
    finally:
        await pool.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    assert not any(Path(f"/proc/{link.process.pid}").exists()
                   for link in pool.links.values() if link.process)

"""Many idle media workers: start time, memory and idle CPU per worker (issue 15).

    .venv/bin/python scripts/measure_workers.py --workers 100 --idle-s 30 [--spawn]

Starts `cti serve` with the load generator's config (scripts/load/gwconfig.py: the
demo config on free ports, no advisors, no rtpengine), N workers forked from the
zygote (``--spawn``: each its own python process, the old way), and measures:
the time from start to /health answering (every worker up, the edge running),
PSS and RSS per worker (/proc/<pid>/smaps_rollup, /proc/<pid>/status) and their
CPU over an idle window (utime + stime, % of one core). Stops the gateway at the
end; bounded at 2,000 workers and 600 s.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.load import api, procstat  # noqa: E402
from scripts.load.gwconfig import generate  # noqa: E402

MAX_WORKERS = 2000


async def measure(workers: int, idle_s: float, spawn: bool) -> dict[str, float]:
    cfg = generate(workers, 0, webrtc=False)
    data = cfg.data
    data["workers"]["fork_from_zygote"] = not spawn
    cfg.path.write_text(yaml.safe_dump(data, allow_unicode=True))
    folder = cfg.path.parent
    cti = Path(sys.executable).with_name("cti")
    log = (folder / "gateway.log").open("wb")
    started = time.monotonic()
    gw = subprocess.Popen([str(cti), "serve", "--config", str(cfg.path)],
                          stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    ok = False
    try:
        async with httpx.AsyncClient(base_url=cfg.api, timeout=30) as http:
            await api.wait_healthy(http, min(600, 60 + workers * 0.5), gw, folder / "gateway.log")
        up_s = time.monotonic() - started
        roles = {q: procstat.gateway_role(q, gw.pid) for q in procstat.descendants(gw.pid)}
        pids = [q for q, role in roles.items() if role == "workers"]
        if len(pids) != workers:
            raise RuntimeError(f"{len(pids)} worker processes, not {workers}")
        await asyncio.sleep(2)  # the last workers' start-up out of the window
        before = procstat.sample(roles)
        await asyncio.sleep(idle_s)
        after = procstat.sample(roles)
        usage = {u.role: u for u in procstat.usage(before, after)}
        w = usage["workers"]
        ok = True
        return {
            "workers": workers, "up_s": up_s,
            "pss_mib_per_worker": w.pss_mib / workers,
            "rss_mib_per_worker": sum(procstat.rss_kib(q) for q in pids) / 1024 / workers,
            "idle_cpu_pct_per_worker": w.cpu_pct / workers,
            "workers_pss_mib": w.pss_mib,
            "other_pss_mib": usage["other"].pss_mib if "other" in usage else 0.0,
            "controller_pss_mib": usage["controller"].pss_mib,
            "kamailio_pss_mib": usage["kamailio"].pss_mib if "kamailio" in usage else 0.0,
            "kamailio_cpu_pct": usage["kamailio"].cpu_pct if "kamailio" in usage else 0.0,
            "controller_cpu_pct": usage["controller"].cpu_pct,
        }
    finally:
        if gw.poll() is None:
            gw.send_signal(signal.SIGTERM)
            try:
                gw.wait(120)
            except subprocess.TimeoutExpired:
                gw.kill()
                gw.wait()
        log.close()
        if ok:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"kept {folder}", file=sys.stderr)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=100)
    p.add_argument("--idle-s", type=float, default=30)
    p.add_argument("--spawn", action="store_true",
                   help="spawn each worker (fork_from_zygote: false), the old way")
    a = p.parse_args()
    if not 1 <= a.workers <= MAX_WORKERS or not 1 <= a.idle_s <= 600:
        p.error(f"--workers 1-{MAX_WORKERS}, --idle-s 1-600")
    load = Path("/proc/loadavg").read_text().split()[:3]
    res = asyncio.run(measure(a.workers, a.idle_s, a.spawn))
    res_load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"mode: {'spawned' if a.spawn else 'forked from the zygote'}; "
          f"load average before {' '.join(load)}, after {' '.join(res_load)}")
    for key, value in res.items():
        print(f"{key:26} {value:10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

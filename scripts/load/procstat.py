"""CPU and memory of processes by role, from /proc: the gateway's own (the ``cti
serve`` process and its descendants) apart from the load generator's.

CPU is utime + stime (/proc/<pid>/stat) over a window, as % of one core; memory is
PSS (/proc/<pid>/smaps_rollup), which shares a page's cost among the processes
mapping it (RSS counts the wheel's and Python's pages once per worker).
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
GATEWAY_ROLES = ("controller", "kamailio", "workers", "rtpengine", "other")


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, utime + stime in ticks), None once gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()  # the name may hold spaces
    return int(fields[1]), int(fields[11]) + int(fields[12])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _kib(path: str, key: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kib(pid: int) -> int:
    return _kib(f"/proc/{pid}/smaps_rollup", "Pss:")


def rss_kib(pid: int) -> int:
    return _kib(f"/proc/{pid}/status", "VmRSS:")


def descendants(root: int) -> list[int]:
    """root and every process below it."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None:
                children[st[0]].append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def gateway_role(pid: int, root: int) -> str:
    if pid == root:
        return "controller"
    cmd = _cmdline(pid)
    if "cti.media.worker" in cmd:
        return "workers"
    if "cti.media.zygote" in cmd:
        # Forked workers keep the zygote's command line; the zygote is the
        # controller's child (counted in "other": one process, shared pages).
        st = _stat(pid)
        return "other" if st is None or st[0] == root else "workers"
    if "kamailio" in cmd:
        return "kamailio"
    if "rtpengine" in cmd:
        return "rtpengine"
    return "other"


@dataclass
class Sample:
    at: float
    ticks: dict[int, int]  # pid -> utime + stime
    roles: dict[int, str]


def sample(roles: dict[int, str]) -> Sample:
    ticks = {pid: st[1] for pid in roles if (st := _stat(pid)) is not None}
    return Sample(time.monotonic(), ticks, dict(roles))


@dataclass(frozen=True)
class RoleUsage:
    role: str
    processes: int
    cpu_pct: float  # % of one core over the window
    pss_mib: float


def usage(before: Sample, after: Sample) -> list[RoleUsage]:
    """Per role: CPU between the samples (processes alive at both), PSS now."""
    span = after.at - before.at
    cpu: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    pss: dict[str, int] = defaultdict(int)
    for pid, role in after.roles.items():
        if pid not in after.ticks:
            continue
        count[role] += 1
        pss[role] += pss_kib(pid)
        if pid in before.ticks:
            cpu[role] += (after.ticks[pid] - before.ticks[pid]) / CLK_TCK / span * 100
    order = [*GATEWAY_ROLES, *sorted(set(count) - set(GATEWAY_ROLES))]
    return [RoleUsage(r, count[r], cpu[r], pss[r] / 1024) for r in order if count[r]]

#!/usr/bin/env python3
"""How many calls back the controller holds: N callbacks queued through the
controller's ``Callbacks`` (the path plugins use, ``services.tasks.callback``) on a
CallFlow with idle fake workers and a real SQLite store; the time per callback
queued, the memory they take, and the time of the routing decision when an
advisor becomes available with all of them waiting.

    .venv/bin/python scripts/bench_callbacks.py [--callbacks 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cti.config import load_settings  # noqa: E402
from cti.controller.flow import CallFlow  # noqa: E402
from cti.controller.prompts import PromptLibrary  # noqa: E402
from cti.controller.workers import WorkerSpec  # noqa: E402
from cti.events import EventBus  # noqa: E402
from cti.plugins import PluginHost  # noqa: E402
from cti.store.db import Store  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


class IdleLink:
    def __init__(self, worker_id: str, port: int) -> None:
        self.worker_id, self.up, self.restarts = worker_id, True, 0
        self.spec = WorkerSpec(worker_id, "127.0.0.1", port, 20000, 40)

    async def command(self, cmd: str, **fields: Any) -> dict[str, Any]:
        return {"ok": True}


class IdlePool:
    def __init__(self, n: int) -> None:
        self.links = {f"w{i}": IdleLink(f"w{i}", 5071 + i) for i in range(n)}

    def get(self, worker_id: str) -> IdleLink | None:
        return self.links.get(worker_id)


async def main(n: int) -> None:
    settings = load_settings(REPO / "config" / "cti.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "cti.sqlite3")

        async def delivered(advisor: str, seq: int, timeout: float) -> bool:
            return True

        flow = CallFlow(settings, IdlePool(4), EventBus(replay=1000), store, PluginHost(),
                        PromptLibrary(Path(tmp), None), delivered)
        langs = ["nl", "en", "es", "tr"]
        topics = ["passport", "visa", "travel_advice", "digid"]
        t0 = time.time() - n
        started = time.perf_counter()
        for i in range(n // 2):
            flow.callbacks.callback(f"+3161{i:07d}", language=langs[i % 4],
                                    topic=topics[i % 4], enqueued_at=t0 + i)
        queued_s = (time.perf_counter() - started) / (n // 2)
        tracemalloc.start()  # memory of the second half (tracing slows the calls)
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n // 2, n):
            flow.callbacks.callback(f"+3161{i:07d}", language=langs[i % 4],
                                    topic=topics[i % 4], enqueued_at=t0 + i)
        held = (tracemalloc.get_traced_memory()[0] - before) / (n - n // 2)
        tracemalloc.stop()
        started = time.perf_counter()
        flow.set_advisor_state("sofia", "available")
        decide_ms = (time.perf_counter() - started) * 1000
        offered = [c for c in flow.calls.all() if c.state == "offered"]
        await asyncio.sleep(0)
        store.close()
    print(f"machine: {platform.node()} {platform.machine()} python {platform.python_version()}")
    print(f"callbacks queued: {n}, {queued_s * 1e6:.0f} us each, memory {held / 1024:.1f} "
          f"KiB each ({held * n / 2**20:.0f} MiB for all)")
    print(f"advisor available with {n} waiting: decision {decide_ms:.1f} ms, "
          f"offered {len(offered)} (the oldest Spanish visa call back: "
          f"{offered[0].caller_number if offered else '-'})")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--callbacks", type=int, default=20000)
    asyncio.run(main(ap.parse_args().callbacks))

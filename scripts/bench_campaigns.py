#!/usr/bin/env python3
"""What a large campaign costs: an upload of N rows checked and stored (the
campaigns plugin's path: CSV parsing, zones, one transaction of N rows in the real
SQLite store through the plugin's fenced storage), then the dialer's round (the
query for the next due number and the progress counts) with all N waiting.

    .venv/bin/python scripts/bench_campaigns.py [--rows 20000]

The controller is not in the loop: the dialer's call to ``services.tasks`` goes to
a stub that only counts (the controller's side is scripts/bench_callbacks.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cti.config import load_settings  # noqa: E402
from cti.store.db import Store  # noqa: E402
from cti.store.plugin_storage import PluginStorage  # noqa: E402
from plugins.campaigns.schemas import CampaignIn, CampaignsSettings  # noqa: E402
from plugins.campaigns.services import Campaigns  # noqa: E402
from plugins.campaigns.storage import MIGRATIONS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


class Floor:
    """services.tasks / calls / advisors: advisors working, tasks counted."""

    def __init__(self) -> None:
        self.made = 0
        self.advisors = [SimpleNamespace(name=f"a{i}", state="available") for i in range(100)]

    def callback(self, number: str, **kw: Any) -> str:
        self.made += 1
        return f"c{self.made}"

    def cancel(self, call_id: str, by: str | None = None) -> bool:
        return True

    def get(self, call_id: str) -> Any:
        return SimpleNamespace(state="queued")

    def list(self) -> list[Any]:
        return self.advisors


class Quiet:
    def publish(self, *a: Any, **k: Any) -> int:
        return 0

    async def record(self, *a: Any) -> None:
        pass

    def inc(self, *a: Any, **k: Any) -> None:
        pass


async def main(rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "cti.sqlite3")
        floor, quiet = Floor(), Quiet()
        s = SimpleNamespace(
            settings=CampaignsSettings(window_start="00:00", window_end="24:00"),
            gateway=load_settings(REPO / "config" / "cti.yaml"),
            store=PluginStorage(store, "campaigns", MIGRATIONS), tasks=floor, calls=floor,
            advisors=floor, events=quiet, audit=quiet, metrics=quiet, now=time.time,
            log=logging.getLogger("bench"), spawn=asyncio.get_running_loop().create_task)
        cp = Campaigns(s)  # type: ignore[arg-type]
        # UK, Spanish, Japanese, US numbers (the US has several zones).
        prefixes = ["+442071", "+34911", "+813123", "+12125"]
        text = "number,name,language,note\n" + "".join(
            f"{prefixes[i % 4]}{i:06d},Person {i},en,row {i}\n" for i in range(rows))
        t0 = time.perf_counter()
        c = await cp.create(CampaignIn(name="bench", topic="visa", csv=text, start=True),
                            "bench")
        upload = time.perf_counter() - t0
        rounds = []
        for _ in range(20):
            cp.live.clear()  # every round finds room and queues one number
            t1 = time.perf_counter()
            await cp.tick()
            rounds.append(time.perf_counter() - t1)
        t2 = time.perf_counter()
        counts = cp.counts(c.campaign_id)
        count_s = time.perf_counter() - t2
        t3 = time.perf_counter()
        export = cp.export(c.campaign_id)
        export_s = time.perf_counter() - t3
        store.close()
    print(f"machine: {platform.node()} {platform.machine()} python {platform.python_version()}")
    print(f"rows: {rows} (stored {counts['total']}, {floor.made} queued by the rounds)")
    print(f"upload (parse, check, zones, one transaction): {upload:.2f} s "
          f"({upload / rows * 1e6:.0f} µs a row)")
    print(f"a dialer round (next due, queue it, progress event): median "
          f"{statistics.median(rounds) * 1e3:.1f} ms, max {max(rounds) * 1e3:.1f} ms")
    print(f"the progress counts: {count_s * 1e3:.1f} ms; the CSV export: {export_s:.2f} s "
          f"({len(export) / 1e6:.1f} MB)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=20000)
    asyncio.run(main(p.parse_args().rows))

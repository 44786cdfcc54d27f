"""The overload decision (cti/controller/overload.py), without a machine."""

from __future__ import annotations

from pathlib import Path

from cti.config_overload import OverloadSettings
from cti.controller.overload import CpuMeter, OverloadGuard, OverloadState, Sample


def _run(state: OverloadState, cpus: list[float], lag: float = 0.0) -> list[bool | None]:
    return [state.observe(Sample(c, lag)) for c in cpus]


def test_refusing_starts_after_over_s_samples_above_the_limit() -> None:
    state = OverloadState(OverloadSettings(cpu_percent=90, over_s=3))
    # a burst of two seconds is taken; the third in a row starts refusing
    assert _run(state, [95, 95, 50, 95, 95]) == [None] * 5
    assert not state.shedding
    assert _run(state, [96]) == [True]
    assert state.shedding and "CPU 96 %" in state.reason


def test_refusing_stops_only_after_clear_s_calm_samples_below_the_margin() -> None:
    state = OverloadState(OverloadSettings(cpu_percent=90, over_s=1, clear_s=3,
                                           clear_margin_percent=10))
    assert _run(state, [91]) == [True]
    # 85 is below the limit but not below limit - margin (80): still refusing
    assert _run(state, [85, 85, 85, 70, 70, 95, 70, 70]) == [None] * 8
    assert state.shedding
    assert _run(state, [70]) == [False]
    assert not state.shedding and state.reason == ""


def test_the_event_loop_lag_alone_starts_it_and_zero_turns_a_limit_off() -> None:
    state = OverloadState(OverloadSettings(cpu_percent=0, loop_lag_ms=500, over_s=2))
    assert _run(state, [100, 100]) == [None, None]  # CPU is not watched
    assert _run(state, [10, 10], lag=800) == [None, True]
    assert "event loop 800 ms late" in state.reason


def test_cpu_meter_reads_the_busy_share_since_the_last_reading(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    meter = CpuMeter(stat)
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n")
    assert meter() == 0.0  # the first reading is the baseline
    stat.write_text("cpu  250 0 200 750 100 0 0 0 0 0\n")  # +250 busy, +50 idle
    assert round(meter(), 1) == round(100 * 250 / 300, 1)


async def test_the_guard_refreshes_the_flag_while_refusing_and_counts_across_edges() -> None:
    cpu = [99.0]
    answers = iter([3, 5, 2, 2])  # the edge's own count; a new edge starts from 0
    calls: list[bool] = []

    async def set_flag(on: bool) -> int | None:
        calls.append(on)
        return next(answers)

    guard = OverloadGuard(OverloadSettings(over_s=1, clear_s=1), set_flag,
                          lambda: 0.0, cpu=lambda: cpu[0], clock=lambda: 1000.0)
    await guard.tick()
    await guard.tick()
    await guard.tick()
    assert calls == [True, True, True] and guard.refused == 7  # 3, +2, then 2 anew
    cpu[0] = 10.0
    await guard.tick()
    assert calls[-1] is False and not guard.state.shedding
    assert guard.status()["episodes"] == 1 and guard.refused == 7

"""How the controller starts a media worker behind the edge (no process started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cti.config import ConfigError, parse_settings
from cti.controller.gateway import worker_specs
from cti.controller.workers import WorkerPool, WorkerSpec
from cti.media.protocol import EDGE_SECRET_ENV
from tests.e2e.gateway_harness import DEMO_CONFIG, demo_config_data


async def _nothing(*_: object) -> None:
    return None


def test_workers_dial_through_the_edge_and_get_its_secret_in_the_environment(
    tmp_path: Path,
) -> None:
    settings = parse_settings(demo_config_data(), DEMO_CONFIG)
    specs = worker_specs(settings)
    edge = f"sip:{settings.sip.ip}:{settings.sip.port}"
    assert {s.outbound_proxy for s in specs} == {edge}
    secret = "0123456789abcdef0123456789abcdef"
    pool = WorkerPool(specs, tmp_path / "w.sock", tmp_path, on_event=lambda *_: None,
                      on_up=_nothing, on_down=_nothing, edge_secret=secret)
    argv = pool._argv(specs[0])
    assert argv[argv.index("--outbound-proxy") + 1] == edge
    assert secret not in " ".join(argv)  # argv is readable by anyone (ps)
    env = pool._env()
    assert env is not None and env[EDGE_SECRET_ENV] == secret


def test_no_secret_no_proxy_nothing_added(tmp_path: Path) -> None:
    spec = WorkerSpec("w1", "127.0.0.1", 5071, 20000, 40)
    pool = WorkerPool([spec], tmp_path / "w.sock", tmp_path, on_event=lambda *_: None,
                      on_up=_nothing, on_down=_nothing)
    assert "--outbound-proxy" not in pool._argv(spec)
    assert pool._env() is None


def test_rtp_timeout_and_session_timers_reach_the_worker(tmp_path: Path) -> None:
    data = demo_config_data()
    data["workers"].update(rtp_timeout_s=12.5, session_expires_s=600)
    spec = worker_specs(parse_settings(data, DEMO_CONFIG))[0]
    pool = WorkerPool([spec], tmp_path / "w.sock", tmp_path, on_event=lambda *_: None,
                      on_up=_nothing, on_down=_nothing)
    argv = pool._argv(spec)
    assert argv[argv.index("--rtp-timeout") + 1] == "12.5"
    assert argv[argv.index("--session-expires") + 1] == "600"
    off = WorkerSpec("w1", "127.0.0.1", 5071, 20000, 40)  # 0: neither option at all
    assert not {"--rtp-timeout", "--session-expires"} & set(pool._argv(off))


def test_a_session_interval_under_the_rfc_minimum_is_a_config_error() -> None:
    data = demo_config_data()
    data["workers"]["session_expires_s"] = 30
    with pytest.raises(ConfigError, match="session_expires_s"):
        parse_settings(data, DEMO_CONFIG)


def test_no_worker_cap_below_memory_but_the_port_plan_must_fit() -> None:
    data = demo_config_data()
    data["workers"].update(count=500, sip_port_base=40000, rtp_port_base=10000,
                           rtp_ports_per_worker=18)
    settings = parse_settings(data, DEMO_CONFIG)
    assert settings.workers.fork_from_zygote  # the default
    specs = worker_specs(settings)
    assert len(specs) == 500 and specs[-1].rtp_port == 10000 + 499 * 18
    data["workers"].update(count=2000, rtp_ports_per_worker=40)
    with pytest.raises(ConfigError, match="past 65535"):
        parse_settings(data, DEMO_CONFIG)
    data["workers"].update(count=2, rtp_ports_per_worker=41)
    with pytest.raises(ConfigError, match="even"):
        parse_settings(data, DEMO_CONFIG)

"""A broken config stops `cti serve` with one line: the file, the key, what was expected."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.gateway_harness import REPO, demo_config_data, gateway_settings


def _serve(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cti.cli", "serve", "--config", str(config)],
        cwd=REPO, capture_output=True, text=True, timeout=60)


def _write(tmp: Path, data: Any) -> Path:
    gateway_settings(tmp)  # writes a runnable cti.yaml on free ports
    cfg = tmp / "cti.yaml"
    base = yaml.safe_load(cfg.read_text())
    data(base)
    cfg.write_text(yaml.safe_dump(base, allow_unicode=True))
    return cfg


def _typo_top(d: dict) -> None:
    d["advisorz"] = d.pop("advisors")


def _typo_nested(d: dict) -> None:
    d["sip"]["prot"] = d["sip"].pop("port")


def _wrong_type(d: dict) -> None:
    d["workers"]["count"] = "many"


def _bad_advisor_name(d: dict) -> None:
    d["advisors"][0]["name"] = "mi chel"


def _unknown_plugin(d: dict) -> None:
    d["plugins"] = ["crisis_lien"]


def _missing_prompts(d: dict) -> None:
    d["prompts"]["cache_dir"] = d["store"]["path"] + ".empty-prompts"
    d["prompts"]["override_dir"] = d["store"]["path"] + ".no-overrides"


def _unknown_notice(d: dict) -> None:
    d["ivr"]["notice"] = "crisis_kabul"


def _bad_hours(d: dict) -> None:
    d["ivr"]["opening_hours"] = {"days": {"mon": "8-12"}}


@pytest.mark.parametrize(("mutate", "expected"), [
    (_unknown_notice, ["prompts", "missing prompt file", "crisis_kabul.wav"]),
    (_bad_hours, ["ivr.opening_hours.days", "mon: expected HH:MM-HH:MM"]),
    (_typo_top, ["advisorz: unknown key (did you mean 'advisors'?)"]),
    (_typo_nested, ["sip.prot: unknown key (did you mean 'port'?)"]),
    (_wrong_type, ["workers.count", "integer", "'many'"]),
    (_bad_advisor_name, ["advisors.0.name", "SIP user name"]),
    (_unknown_plugin, ["plugins.0", "unknown plugin 'crisis_lien'"]),
    (_missing_prompts, ["prompts", "missing prompt file", ".wav", "cti prompts build"]),
])
def test_broken_config_one_clear_line_and_nothing_started(
    tmp_path: Path, mutate: Any, expected: list[str],
) -> None:
    cfg = _write(tmp_path, mutate)
    res = _serve(cfg)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert str(cfg) in lines[0]
    for part in expected:
        assert part in lines[0], lines[0]
    assert res.stdout == ""  # never said it was running
    run_dir = Path(yaml.safe_load(cfg.read_text())["runtime_dir"])
    assert not (run_dir / "edge" / "kamailio.pid").exists()


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    cfg = tmp_path / "cti.yaml"
    cfg.write_text("sip:\n  port: [5060\nhttp: {}\n")
    res = _serve(cfg)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1
    assert str(cfg) in res.stderr and "line" in res.stderr and "not valid YAML" in res.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    res = _serve(tmp_path / "nope.yaml")
    assert res.returncode == 2
    assert "nope.yaml: cannot read" in res.stderr


def test_check_config_accepts_the_demo_config() -> None:
    res = subprocess.run([sys.executable, "-m", "cti.cli", "check-config"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "ok" in res.stdout
    assert demo_config_data()["sip"]["hotlines"] == ["+31247247247"]

"""The command line: options of `cti phone` and `cti worker` reach the media engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from cti.cli import main


@pytest.mark.parametrize("command", ["phone", "worker"])
def test_engine_commands_take_their_own_options(
    command: str, capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as stop:
        main([command, "--ip", "127.0.0.1", "--help"])
    assert stop.value.code == 0
    assert "--sip-port" in capsys.readouterr().out


def test_unknown_options_of_other_commands_are_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["check-config", "--bogus"])
    assert stop.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_cti_plugins_lists_installed_and_enabled_with_what_they_bring(
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = Path(__file__).resolve().parents[2] / "config" / "cti.yaml"
    assert main(["plugins", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "crisis_line          plugins.crisis_line.plugin:CrisisLinePlugin  [enabled]" in out
    assert "hello " in out and "[not enabled]" in out  # the third-party example
    assert "cti_ivr_extend" in out and "cti_call_routing" in out
    assert "POST /api/v1/plugins/crisis_line/crises [supervisor]" in out
    assert "crisis.started" in out and "overflow_after_s=120.0" in out

"""The command line: options of `cti phone` and `cti worker` reach the media engine."""

from __future__ import annotations

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

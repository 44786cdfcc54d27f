"""The plugin host: hooks by name, error isolation, firstresult, unknown plugins."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from cti.config import ConfigError
from cti.hookspecs import hookimpl
from cti.plugins import PluginHost


class Broken:
    @hookimpl
    def cti_call_incoming(self, call: object) -> None:
        raise RuntimeError("boom")

    @hookimpl
    def cti_call_priority(self, call: object) -> int:
        raise RuntimeError("boom")


class Crisis:
    def __init__(self) -> None:
        self.seen: list[object] = []

    @hookimpl
    def cti_call_incoming(self, call: SimpleNamespace) -> None:
        call.flags["crisis"] = "floods"
        self.seen.append(call)

    @hookimpl
    def cti_call_priority(self, call: object) -> int:
        return 20


class NoOpinion:
    @hookimpl
    def cti_call_priority(self, call: object) -> None:
        return None


def test_a_raising_plugin_is_logged_and_skipped_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    host = PluginHost()
    crisis = Crisis()
    host.register(Broken(), "broken")
    host.register(crisis, "crisis")
    call = SimpleNamespace(flags={})
    with caplog.at_level(logging.ERROR):
        host.call("cti_call_incoming", call_id="c-1", call=call)
    assert call.flags == {"crisis": "floods"}
    assert crisis.seen == [call]
    assert "plugin=broken" in caplog.text and "call_id=c-1" in caplog.text


def test_firstresult_hook_takes_the_first_answer_and_skips_failures() -> None:
    host = PluginHost()
    host.register(NoOpinion(), "none")
    host.register(Broken(), "broken")
    host.register(Crisis(), "crisis")
    assert host.first("cti_call_priority", call_id="c", call=object()) == 20


def test_no_plugin_gives_none() -> None:
    assert PluginHost().first("cti_call_priority", call_id="c", call=object()) is None


def test_unknown_plugin_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"plugins\.0: unknown plugin 'nope'"):
        PluginHost().load(["nope"], "cti.yaml")

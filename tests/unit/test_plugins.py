"""The plugin host: hooks through pluggy (wrappers too), error isolation and counts,
firstresult, settings validated by the plugin's model, unknown plugins."""

from __future__ import annotations

import logging
from collections.abc import Generator
from types import SimpleNamespace
from typing import Any

import pytest

from cti.config import ConfigError
from cti.hookspecs import hookimpl
from cti.plugins import PluginHost
from cti.plugins.api import PluginConfig, PluginManifest


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
        self.seen.append(call)

    @hookimpl
    def cti_call_priority(self, call: object) -> int:
        return 20


class NoOpinion:
    @hookimpl
    def cti_call_priority(self, call: object) -> None:
        return None


class Timing:
    """A new-style wrapper around every incoming call."""

    def __init__(self) -> None:
        self.around: list[str] = []

    @hookimpl(wrapper=True)
    def cti_call_incoming(self, call: SimpleNamespace) -> Generator[None, Any, Any]:
        self.around.append(f"before {call.call_id}")
        result = yield
        self.around.append(f"after {call.call_id}")
        return result


class Settings(PluginConfig):
    overflow_after_s: float = 60
    team: str = "crisis_team"


class WithSettings:
    @hookimpl
    def cti_plugin_manifest(self) -> PluginManifest:
        return PluginManifest(description="test", config=Settings)


def view(call_id: str = "c-1") -> SimpleNamespace:
    return SimpleNamespace(call_id=call_id, flags={})


def test_a_raising_plugin_is_logged_counted_and_skipped_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    host = PluginHost()
    crisis = Crisis()
    host.register(Broken(), "broken")
    host.register(crisis, "crisis")
    call = view()
    with caplog.at_level(logging.ERROR):
        host.call("cti_call_incoming", call_id="c-1", call=call)
        host.call("cti_call_incoming", call_id="c-1", call=call)
    assert crisis.seen == [call, call]
    assert "plugin=broken" in caplog.text and "call_id=c-1" in caplog.text
    assert host.error_counts() == {("broken", "cti_call_incoming"): 2}


def test_hook_wrappers_see_every_call() -> None:
    host = PluginHost()
    timing, crisis = Timing(), Crisis()
    host.register(timing, "timing")
    host.register(crisis, "crisis")
    host.register(Broken(), "broken")
    host.call("cti_call_incoming", call=view("c-9"))
    assert timing.around == ["before c-9", "after c-9"]
    assert len(crisis.seen) == 1


def test_firstresult_hook_takes_the_first_answer_and_skips_failures() -> None:
    host = PluginHost()
    host.register(NoOpinion(), "none")
    host.register(Broken(), "broken")
    host.register(Crisis(), "crisis")
    assert host.first("cti_call_priority", call_id="c", call=view()) == 20


def test_no_plugin_gives_none() -> None:
    assert PluginHost().first("cti_call_priority", call_id="c", call=view()) is None


def test_unknown_plugin_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"plugins\.nope: unknown plugin 'nope'"):
        PluginHost().load({"nope": None}, "cti.yaml")


def test_settings_are_validated_by_the_plugins_model() -> None:
    loaded = PluginHost().register(WithSettings(), "crisis_line", {"overflow_after_s": 5})
    assert isinstance(loaded.settings, Settings) and loaded.settings.overflow_after_s == 5
    assert PluginHost().register(WithSettings(), "crisis_line", None).settings == Settings()


@pytest.mark.parametrize(("raw", "message"), [
    ({"overflow_after": 5},
     r"^cti\.yaml: plugins\.crisis_line\.overflow_after: unknown key "
     r"\(did you mean 'overflow_after_s'\?\)$"),
    ({"overflow_after_s": "soon"},
     r"^cti\.yaml: plugins\.crisis_line\.overflow_after_s: Input should be a valid number"),
    ({"team": 5}, r"^cti\.yaml: plugins\.crisis_line\.team: Input should be a valid string"),
])
def test_a_bad_setting_names_plugins_name_key(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PluginHost().register(WithSettings(), "crisis_line", raw, "cti.yaml")


def test_a_plugin_without_a_model_refuses_settings() -> None:
    with pytest.raises(ConfigError, match=r"plugins\.crisis\.x: unknown key"):
        PluginHost().register(Crisis(), "crisis", {"x": 1}, "cti.yaml")


def test_per_plugin_caller_reaches_one_plugin_only() -> None:
    host = PluginHost()
    host.register(Crisis(), "crisis")
    host.register(WithSettings(), "with")
    assert host.one("crisis", "cti_plugin_manifest")() is None
    assert host.one("with", "cti_plugin_manifest")().description == "test"
    assert host.hooks_of("crisis") == ["cti_call_incoming", "cti_call_priority"]

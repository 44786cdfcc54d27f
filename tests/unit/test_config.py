"""Config errors are one helpful line: the file, the key, what was expected."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from cti.config import ConfigError, ivr_flows, load_settings, parse_settings

DEMO = Path(__file__).resolve().parents[2] / "config" / "cti.yaml"
SRC = Path("/etc/cti/cti.yaml")


def demo() -> dict[str, Any]:
    return yaml.safe_load(DEMO.read_text())


def error(data: Any) -> str:
    with pytest.raises(ConfigError) as e:
        parse_settings(data, SRC)
    msg = str(e.value)
    assert msg.startswith(f"{SRC}: ") and "\n" not in msg
    return msg.removeprefix(f"{SRC}: ")


def test_the_demo_config_is_valid() -> None:
    settings = load_settings(DEMO)
    assert settings.sip.hotlines == ["+31247247247", "+31247247248"]
    assert set(ivr_flows(settings)) == {"", "+31247247248"}  # the crisis line has a flow


def test_a_typo_is_one_error_with_a_suggestion() -> None:
    d = demo()
    d["advisorz"] = d.pop("advisors")
    assert error(d) == "advisorz: unknown key (did you mean 'advisors'?)"


def test_an_unknown_key_without_a_close_match_lists_the_keys() -> None:
    d = demo()
    d["sip"]["xyzzy"] = 1
    assert error(d) == ("sip.xyzzy: unknown key (expected one of ip, port, realm, hotlines, "
                        "accept_from, max_calls_per_source, call_attempts_per_source_per_minute, flood_requests_per_second, tls)")


def test_a_typo_inside_a_mapping_of_lists_gets_a_suggestion() -> None:
    d = demo()
    d["routing"]["escalation"]["default"][0]["aftr_s"] = d["routing"]["escalation"][
        "default"][0].pop("after_s")
    assert error(d) == ("routing.escalation.default[1].aftr_s: unknown key "
                        "(did you mean 'after_s'?)")


def test_list_items_are_named() -> None:
    d = demo()
    d["advisors"][2]["languages"]["es"] = 7
    assert error(d) == ("advisors[3] (sofia).languages.es: "
                        "Input should be less than or equal to 5 (got 7)")


def test_wrap_up_wrong_type_is_one_plain_error() -> None:
    d = demo()
    d["routing"]["wrap_up_s"] = "lots"
    assert error(d) == ("routing.wrap_up_s: expected seconds (a number), or seconds per "
                        "topic ({default: 5, emergency: 30}) (got 'lots')")


def test_a_misspelt_topic_under_routing_is_refused() -> None:
    d = demo()
    d["routing"]["escalation"]["visaa"] = d["routing"]["escalation"]["default"]
    msg = error(d)
    assert msg.startswith("routing.escalation.visaa: not an IVR topic (did you mean 'visa'?")


def test_section_validators_name_the_key_without_dumping_the_section() -> None:
    d = demo()
    d["ivr"]["default_language"] = "fr"
    assert error(d) == ("ivr.default_language: 'fr' is not in languages "
                        "(expected one of en, es, nl, tr)")


def test_a_duplicate_advisor_is_reported_at_advisors() -> None:
    d = demo()
    d["advisors"].append(dict(d["advisors"][0]))
    assert error(d) == "advisors: advisor 'michel' is listed twice"


def test_a_section_that_is_not_a_mapping() -> None:
    d = demo()
    d["workers"] = 3
    assert error(d) == "workers: expected a section of keys (a mapping) (got 3)"


def test_yaml_errors_and_duplicate_keys(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sip: {port: 1}\nhttp: {}\nsip: {port: 2}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: line 3 column 1: not valid YAML: "
                                          r"duplicate key 'sip'"):
        load_settings(bad)
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="cannot read: not UTF-8"):
        load_settings(bad)


def test_max_wait_action_must_name_an_ivr_topic() -> None:
    data = yaml.safe_load((Path(__file__).parents[2] / "config" / "cti.yaml").read_text())
    data["routing"]["max_wait_action"] = "queue:travel_advise"
    with pytest.raises(ConfigError, match=r"max_wait_action: 'travel_advise' is not an IVR topic"):
        parse_settings(data, Path("cti.yaml"))
    data["routing"]["max_wait_action"] = "hangup"
    with pytest.raises(ConfigError, match=r"routing\.max_wait_action"):
        parse_settings(data, Path("cti.yaml"))


@pytest.mark.parametrize(("change", "message"), [
    ({"workers": {"sip_port_base": 5060}},
     r"workers\.sip_port_base: ports 5060-5061 on 127\.0\.0\.1 overlap sip\.port"),
    ({"http": {"port": 5060}}, r"http\.port: ports 5060-5060 on 127\.0\.0\.1 overlap sip\.port"),
    ({"sip": {"tls": {"port": 8080, "cert_file": "c.pem", "key_file": "k.pem"}}},
     r"http\.port: ports 8080-8080 on 127\.0\.0\.1 overlap sip\.tls\.port"),
    ({"sip": {"tls": {"port": 5060, "cert_file": "c.pem", "key_file": "k.pem"}}},
     r"sip\.tls\.port: ports 5060-5060 on 127\.0\.0\.1 overlap sip\.port"),
    ({"webrtc": {"ws_port": 8080}},
     r"webrtc\.ws_port: ports 8080-8080 on 127\.0\.0\.1 overlap http\.port"),
    ({"webrtc": {"wss_port": 5060}},
     r"webrtc\.wss_port: ports 5060-5060 on 127\.0\.0\.1 overlap sip\.port"),
    ({"webrtc": {"wss_port": 5066}},
     r"webrtc\.wss_port: ports 5066-5066 on 127\.0\.0\.1 overlap webrtc\.ws_port"),
    ({"webrtc": {"rtp_port_min": 20050, "rtp_port_max": 20100}},
     r"workers\.rtp_port_base: ports 20000-20079 on 127\.0\.0\.1 overlap webrtc\.rtp_port_min"),
])
def test_port_clashes_name_their_keys(tmp_path: Path, change: dict[str, Any],
                                      message: str) -> None:
    data = yaml.safe_load(DEMO.read_text())
    for section, values in change.items():
        data[section].update(values)
    cfg = tmp_path / "cti.yaml"
    cfg.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=message):
        load_settings(cfg)


@pytest.mark.parametrize(("key", "set_it"), [
    ("store.path", lambda d: d.__setitem__("store", {"path": "/dev/null/cti.sqlite3"})),
    ("runtime_dir", lambda d: d.__setitem__("runtime_dir", "/dev/null/run")),
    ("prompts.cache_dir", lambda d: d["prompts"].__setitem__("cache_dir", "/dev/null/p")),
    ("prompts.override_dir", lambda d: d["prompts"].__setitem__("override_dir", "/dev/null")),
    ("plugins.recording.directory",
     lambda d: d["plugins"].__setitem__("recording", {"directory": "/dev/null/rec"})),
])
def test_a_path_that_cannot_be_a_directory_is_named(
    tmp_path: Path, key: str, set_it: Callable[[dict[str, Any]], None],
) -> None:
    from cti.controller.gateway import prepare

    data = yaml.safe_load(DEMO.read_text())
    data["prompts"]["texts"] = str(DEMO.parents[1] / "config" / "prompts.yaml")
    data["prompts"]["cache_dir"] = str(DEMO.parents[1] / "var" / "prompts")
    data["prompts"]["override_dir"] = str(DEMO.parents[1] / "config" / "prompts")
    data["runtime_dir"] = str(tmp_path / "run")
    data["plugins"]["guides"]["directory"] = str(DEMO.parent / "guides")
    set_it(data)
    cfg = tmp_path / "cti.yaml"
    cfg.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=re.escape(key) + r".*/dev/null is not a directory"):
        prepare(load_settings(cfg))


def test_an_advisor_skill_naming_an_unknown_topic_is_refused() -> None:
    d = demo()
    d["advisors"][2]["topics"] = {"passport": 5, "digit": 4}
    assert error(d) == ("advisors[3] (sofia).topics.digit: unknown topic 'digit' (did you "
                        "mean 'digid'?); known: passport, visa, travel_advice, digid, emergency")


def test_languages_beyond_the_menu_are_known_through_extra_languages() -> None:
    d = demo()
    d["extra_languages"] = []  # dalia's Arabic is no longer known
    assert error(d) == ("advisors[2] (dalia).languages.ar: unknown language 'ar'; "
                        "known: nl, en, es, tr")


@pytest.mark.parametrize(("where", "value", "message"), [
    (("ivr", "emergency_topics"), ["emergncy"],
     "ivr.emergency_topics.emergncy: unknown topic 'emergncy' (did you mean 'emergency'?)"),
    (("plugins", "crisis_line"), {"topic": "visaa"},
     "plugins.crisis_line.topic: unknown topic 'visaa' (did you mean 'visa'?)"),
    (("plugins", "callbacks"), {"topics": ["visa", "pasport"]},
     "plugins.callbacks.topics[2]: unknown topic 'pasport' (did you mean 'passport'?)"),
    (("plugins", "crisis_line"), {"reserve_training": "crisiss"},
     "plugins.crisis_line.reserve_training: unknown training (no advisor has it) 'crisiss'"),
])
def test_every_reference_to_a_topic_or_training_is_checked(
    where: tuple[str, str], value: Any, message: str,
) -> None:
    d = demo()
    d[where[0]][where[1]] = value
    assert error(d).startswith(message)


def test_webrtc_tls_without_a_wss_port_is_an_error() -> None:
    data = demo()
    data["webrtc"]["tls"] = {"cert_file": "c.pem", "key_file": "k.pem"}
    assert "webrtc: tls is set but wss_port is 0" in error(data)
    data["webrtc"]["wss_port"] = 5067
    settings = parse_settings(data, SRC)
    assert settings.webrtc.wss_port == 5067 and settings.webrtc.tls is not None
    assert parse_settings(demo(), SRC).webrtc.wss_port == 0  # off unless asked for

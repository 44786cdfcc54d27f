"""A broken config stops `cti serve` with one line: the file, the key, what was expected.

And nothing is started: no Kamailio, no worker, not even the runtime files.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.gateway_harness import REPO, gateway_settings

pytestmark = pytest.mark.e2e


def _run(*args: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    """Run cti; if it wrongly starts and keeps running, stop it and all it started."""
    argv = [sys.executable, "-m", "cti.cli", *args]
    with subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)  # a clean stop of a gateway that did start
            try:
                out, err = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()  # the parent-death signal stops Kamailio and the workers
                out, err = proc.communicate()
            pytest.fail(f"cti {' '.join(args)} did not exit: {out}{err[-2000:]}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _kamailios_using(run_dir: Path) -> list[int]:
    """Kamailio processes whose command line points into run_dir."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"kamailio") and any(str(run_dir).encode() in a
                                                          for a in argv):
            found.append(int(entry.name))
    return found


@pytest.fixture
def runnable(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(config file, its runtime dir): the demo config on free ports in tmp_path."""
    settings = gateway_settings(tmp_path)
    run_dir = settings.path(settings.runtime_dir)
    yield tmp_path / "cti.yaml", run_dir
    shutil.rmtree(run_dir, ignore_errors=True)


def _assert_refused(res: subprocess.CompletedProcess[str], cfg: Path,
                    expected: list[str], run_dir: Path | None = None) -> str:
    """Exit 2, one line on stderr naming the file and `expected`, nothing started."""
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    line = lines[0]
    assert line.startswith(f"cti: config error: {cfg}: "), line
    for part in expected:
        assert part in line, f"{part!r} not in {line!r}"
    assert res.stdout == ""  # never said it was running
    if run_dir is not None:
        assert list(run_dir.iterdir()) == [], "something was started"
        assert not _kamailios_using(run_dir)
    return line


def _edit(cfg: Path, mutate: Callable[[dict[str, Any]], None]) -> None:
    data = yaml.safe_load(cfg.read_text())
    mutate(data)
    cfg.write_text(yaml.safe_dump(data, allow_unicode=True))


def _typo_top(d: dict[str, Any]) -> None:
    d["advisorz"] = d.pop("advisors")


def _typo_nested(d: dict[str, Any]) -> None:
    d["sip"]["prot"] = d["sip"].pop("port")


def _wrong_type(d: dict[str, Any]) -> None:
    d["workers"]["count"] = "many"


def _unknown_plugin(d: dict[str, Any]) -> None:
    d["plugins"] = {"crisis_lien": None}


def _plugin_typo(d: dict[str, Any]) -> None:
    d["plugins"]["crisis_line"]["overflow_after"] = d["plugins"]["crisis_line"].pop(
        "overflow_after_s")


def _plugin_wrong_type(d: dict[str, Any]) -> None:
    d["plugins"]["crisis_line"]["priority"] = "high"


def _plugin_unknown_team(d: dict[str, Any]) -> None:
    d["plugins"]["crisis_line"]["team"] = "crisis_tem"


def _bad_advisor_level(d: dict[str, Any]) -> None:
    sofia = next(a for a in d["advisors"] if a["name"] == "sofia")
    sofia["languages"]["es"] = 7


def _skill_unknown_topic(d: dict[str, Any]) -> None:
    sofia = next(a for a in d["advisors"] if a["name"] == "sofia")
    sofia["topics"] = {"passport": 5, "digit": 4}


def _skill_unknown_language(d: dict[str, Any]) -> None:
    sofia = next(a for a in d["advisors"] if a["name"] == "sofia")
    sofia["languages"]["fr"] = 3


def _plugin_unknown_training(d: dict[str, Any]) -> None:
    d["plugins"]["crisis_line"] = {**(d["plugins"].get("crisis_line") or {}),
                                   "training": "crsis"}


def _misspelt_topic(d: dict[str, Any]) -> None:
    d["routing"]["wrap_up_s"] = {"default": 5, "emergncy": 30}


def _broken_flow_node(d: dict[str, Any]) -> None:
    d["ivr"]["flows"]["+31247247248"]["nodes"]["topic"]["options"]["2"] = "crisis_tem"


def _trunk(d: dict[str, Any], **over: Any) -> None:
    d["trunks"] = [{"name": "carrier", "address": "192.0.2.10:5060", "username": "cti",
                    "password": "s3cret", "allowed_prefixes": ["+31"]} | over]


def _trunk_prefix(d: dict[str, Any]) -> None:
    _trunk(d, allowed_prefixes=["+31", "0044"])


def _trunk_address(d: dict[str, Any]) -> None:
    _trunk(d, address="carrier.example:5060")


def _trunk_typo(d: dict[str, Any]) -> None:
    _trunk(d, max_call=4)


def _trunk_env_unset(d: dict[str, Any]) -> None:
    _trunk(d, password=None, password_env="CTI_TEST_UNSET_TRUNK_PASSWORD")
    del d["trunks"][0]["password"]


def _trunk_bad_password(d: dict[str, Any]) -> None:
    _trunk(d, password='se"cret-never-shown')


def _accept_from(d: dict[str, Any]) -> None:
    d["sip"]["accept_from"] = ["127.0.0.0/8", "localhost"]


@pytest.mark.parametrize(("mutate", "expected"), [
    # a typo: named, with the key it probably is (not also "advisors is missing")
    (_typo_top, ["advisorz: unknown key (did you mean 'advisors'?)"]),
    (_typo_nested, ["sip.prot: unknown key (did you mean 'port'?)"]),
    (_wrong_type, ["workers.count:", "valid integer", "(got 'many')"]),
    (_unknown_plugin, ["plugins.crisis_lien: unknown plugin 'crisis_lien'", "available:"]),
    (_plugin_typo, ["plugins.crisis_line.overflow_after: unknown key "
                    "(did you mean 'overflow_after_s'?)"]),
    (_plugin_wrong_type, ["plugins.crisis_line.priority:", "valid integer", "(got 'high')"]),
    (_plugin_unknown_team, ["plugins.crisis_line.team: 'crisis_tem' is not a directory key"]),
    (_bad_advisor_level, ["advisors[3] (sofia).languages.es:",
                          "less than or equal to 5", "(got 7)"]),
    (_skill_unknown_topic, ["advisors[3] (sofia).topics.digit: unknown topic 'digit' "
                            "(did you mean 'digid'?); known: passport, visa, travel_advice, "
                            "digid, emergency"]),
    (_skill_unknown_language, ["advisors[3] (sofia).languages.fr: unknown language 'fr'; "
                               "known: nl, en, es, tr, ar"]),
    (_plugin_unknown_training, ["plugins.crisis_line.training: unknown training (no advisor "
                                "has it) 'crsis' (did you mean 'crisis'?); known: crisis"]),
    (_misspelt_topic, ["routing.wrap_up_s.emergncy: not an IVR topic",
                       "did you mean 'emergency'?"]),
    (_broken_flow_node, ["ivr.flows.+31247247248: node 'topic': goes to 'crisis_tem', "
                         "which is not a node (did you mean 'crisis_team'?)"]),
    (_trunk_prefix, ["trunks[1] (carrier).allowed_prefixes:",
                     "E.164 prefixes", "(got '0044')"]),
    (_trunk_address, ["trunks[1] (carrier).address: expected ip:port"]),
    (_trunk_typo, ["trunks[1] (carrier).max_call: unknown key "
                   "(did you mean 'max_calls'?)"]),
    (_trunk_env_unset, ["trunks[1] (carrier).password_env: environment variable "
                        "CTI_TEST_UNSET_TRUNK_PASSWORD is not set"]),
    (_trunk_bad_password, ["trunks[1] (carrier).password: expected a non-empty "
                           "password"]),
    (_accept_from, ["sip.accept_from:", "(got 'localhost')"]),
], ids=["typo-top", "typo-nested", "wrong-type", "unknown-plugin", "plugin-typo",
        "plugin-wrong-type", "plugin-unknown-team", "advisor-level", "skill-unknown-topic",
        "skill-unknown-language", "plugin-unknown-training",
        "misspelt-topic", "flow-node", "trunk-prefix", "trunk-address", "trunk-typo",
        "trunk-env-unset", "trunk-bad-password", "accept-from"])
def test_broken_config_one_clear_line_and_nothing_started(
    runnable: tuple[Path, Path], mutate: Callable[[dict[str, Any]], None],
    expected: list[str],
) -> None:
    cfg, run_dir = runnable
    _edit(cfg, mutate)
    line = _assert_refused(_run("serve", "--config", str(cfg)), cfg, expected, run_dir)
    assert "(and " not in line, "one mistake, one error"
    assert "never-shown" not in line, "a password is never echoed"
    # check-config says the same
    assert _run("check-config", "--config", str(cfg)).stderr.splitlines() == [line]


def test_typo_written_by_hand(runnable: tuple[Path, Path]) -> None:
    cfg, run_dir = runnable
    text = cfg.read_text()
    assert text.count("advisors:") == 1
    cfg.write_text(text.replace("advisors:", "advisorz:"))
    _assert_refused(_run("serve", "--config", str(cfg)), cfg,
                    ["advisorz: unknown key (did you mean 'advisors'?)"], run_dir)


def test_missing_prompts_name_the_file_and_the_fix(runnable: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    cfg, run_dir = runnable
    empty = tmp_path / "no-prompts"
    empty.mkdir()

    def point_at_empty(d: dict[str, Any]) -> None:
        d["prompts"]["cache_dir"] = str(empty)
        d["prompts"]["override_dir"] = str(empty)

    _edit(cfg, point_at_empty)
    _assert_refused(_run("serve", "--config", str(cfg)), cfg,
                    ["prompts: missing prompt file", ".wav", str(empty), "cti prompts build"],
                    run_dir)


def test_invalid_yaml_names_the_line(runnable: tuple[Path, Path]) -> None:
    cfg, run_dir = runnable
    cfg.write_text("sip:\n  port: [5060\nhttp: {}\n")
    _assert_refused(_run("serve", "--config", str(cfg)), cfg,
                    ["line 3 column 5", "not valid YAML", "expected ',' or ']'"], run_dir)


def test_duplicate_yaml_key_is_refused(runnable: tuple[Path, Path]) -> None:
    cfg, run_dir = runnable
    cfg.write_text(cfg.read_text() + "sip: {port: 5060}\n")  # would silently win
    _assert_refused(_run("serve", "--config", str(cfg)), cfg,
                    ["not valid YAML", "duplicate key 'sip'", "line "], run_dir)


def test_missing_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "nope.yaml"
    _assert_refused(_run("serve", "--config", str(cfg)), cfg,
                    ["cannot read: No such file or directory"])


def test_http_port_taken_names_the_file(runnable: tuple[Path, Path]) -> None:
    import socket

    cfg, run_dir = runnable
    port = yaml.safe_load(cfg.read_text())["http"]["port"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        res = _run("serve", "--config", str(cfg))
    _assert_refused(res, cfg, [f"http: cannot listen on 127.0.0.1:{port}", "in use"])
    assert not _kamailios_using(run_dir)


def test_check_config_accepts_the_demo_config() -> None:
    res = _run("check-config")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("config/cti.yaml: ok (7 advisors, 2 media workers)")
    assert res.stderr == ""

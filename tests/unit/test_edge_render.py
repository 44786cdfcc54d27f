"""Rendering of the Kamailio edge config (no Kamailio needed except for the syntax check)."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from cti.edge.render import EdgeSettings, TrunkTarget, WorkerTarget, find_module_path, render


def settings(tmp: Path, **overrides: object) -> EdgeSettings:
    values: dict[str, object] = {
        "ip": "127.0.0.1",
        "port": 5070,
        "runtime_dir": tmp,
        "realm": "cti.test",
        "hotline_numbers": ["+31247247247"],
        "workers": [WorkerTarget("w1", "127.0.0.1", 5081), WorkerTarget("w2", "127.0.0.1", 5082)],
        "advisors": {"alice": "s3cret", "bob.smith-2": 'pa"ss\\word'},
    }
    values.update(overrides)
    return EdgeSettings(**values)  # type: ignore[arg-type]


def test_render_writes_all_files_with_absolute_paths(tmp_path: Path) -> None:
    edge = render(settings(tmp_path / "rt"))
    cfg = edge.config.read_text()
    assert "{{" not in cfg and "}}" not in cfg
    assert "listen=udp:127.0.0.1:5070" in cfg and "listen=tcp:127.0.0.1:5070" in cfg
    for path in (edge.dispatcher_list, edge.users_file, edge.jsonrpc_socket, edge.ctl_socket):
        assert path.is_absolute()
        assert str(path) in cfg
    assert f'run_dir="{edge.runtime_dir}"' in cfg
    assert f'mpath="{find_module_path()}"' in cfg
    assert edge.pid_file.parent == edge.runtime_dir


def test_the_edge_secret_is_in_the_config_which_only_its_owner_reads(tmp_path: Path) -> None:
    secret = "0123456789abcdef0123456789abcdef"
    edge = render(settings(tmp_path, edge_secret=secret))
    assert f'append_hf("X-CTI-Edge: {secret}\\r\\n");' in edge.config.read_text()
    assert edge.config.stat().st_mode & 0o777 == 0o600
    # Not given: a fresh one per rendering.
    assert settings(tmp_path).edge_secret != settings(tmp_path).edge_secret


def test_hotline_number_matches_with_and_without_plus(tmp_path: Path) -> None:
    cfg = render(settings(tmp_path, hotline_numbers=["31247247247"])).config.read_text()
    assert '$rU == "+31247247247" || $rU == "31247247247"' in cfg


def test_dispatcher_list_has_duid_and_maxload(tmp_path: Path) -> None:
    workers = [WorkerTarget("w1", "127.0.0.1", 5081), WorkerTarget("w2", "127.0.0.1", 5082, 3)]
    text = render(settings(tmp_path, workers=workers)).dispatcher_list.read_text()
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == [
        "1 sip:127.0.0.1:5081 0 0 duid=w1;maxload=2",
        "1 sip:127.0.0.1:5082 0 0 duid=w2;maxload=3",
    ]


def test_users_file_holds_ha1_not_passwords(tmp_path: Path) -> None:
    text = render(settings(tmp_path)).users_file.read_text()
    expected = hashlib.md5(b'bob.smith-2:cti.test:pa"ss\\word').hexdigest()
    assert f'$sht(users=>bob.smith-2) = "{expected}";' in text
    assert "s3cret" not in text and "pa" + '"ss' not in text


@pytest.mark.parametrize("name", ['eve"; exit', "a b", "", "x)y", "ünï"])
def test_bad_advisor_name_is_rejected_by_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="invalid advisor name") as exc:
        render(settings(tmp_path, advisors={name: "pw"}))
    assert repr(name) in str(exc.value)
    assert not (tmp_path / "kamailio.cfg").exists()  # nothing half-written


@pytest.mark.parametrize(
    "overrides",
    [
        {"runtime_dir": Path("relative/dir")},
        {"hotline_numbers": ["0800-HELP"]},
        {"workers": [WorkerTarget("w1", "127.0.0.1", 5081), WorkerTarget("w1", "127.0.0.1", 5082)]},
        {"realm": 'evil"realm'},
        {"edge_secret": "short"},
        {"edge_secret": 'x" ; exit; "' + "x" * 20},
    ],
)
def test_invalid_settings_are_rejected(tmp_path: Path, overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        render(settings(tmp_path, **overrides))


@pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio not installed")
@pytest.mark.parametrize("empty", [False, True])
def test_kamailio_accepts_rendered_config(tmp_path: Path, empty: bool) -> None:
    overrides = {"hotline_numbers": [], "advisors": {}, "workers": []} if empty else {}
    edge = render(settings(tmp_path, **overrides))
    check = subprocess.run(
        ["kamailio", "-c", "-f", str(edge.config)], capture_output=True, text=True, timeout=10
    )
    assert check.returncode == 0, check.stderr[-2000:]


TRUNK = TrunkTarget("carrier", "192.0.2.10", 5060, ["+31", "+44"], transport="tcp",
                    username="cti", password="s3cret", realm="carrier.test",
                    caller_id="+31247247247", asserted_identity="+31247247247", max_calls=3)


def test_trunk_rendered_with_prefixes_limit_and_credentials(tmp_path: Path) -> None:
    second = TrunkTarget("backup", "192.0.2.20", 5080, ["+34"])
    text = render(settings(tmp_path, trunks=[TRUNK, second])).config.read_text()
    assert '$rU =~ "^\\+(31|44)[0-9]*$"' in text
    assert '$var(trunk) = "carrier";' in text and "$var(trunk_max) = 3;" in text
    assert '$var(trunk_du) = "sip:192.0.2.10:5060;transport=tcp";' in text
    assert '$var(trunk_from) = "sip:+31247247247@127.0.0.1";' in text
    assert '$avp(trunk_user) = "cti";' in text and '$avp(trunk_realm) = "carrier.test";' in text
    # The backup trunk: UDP, no credentials, no caller id.
    assert '$var(trunk_uri) = "sip:" + $rU + "@192.0.2.20:5080";' in text
    assert text.count("$avp(trunk_user) =") == 1
    # Hotline calls from either trunk's address (UDP: its port too).
    assert '($si == "192.0.2.10" && ($pr != "udp" || $sp == 5060))' in text
    assert '($si == "192.0.2.20" && ($pr != "udp" || $sp == 5080))' in text


@pytest.mark.parametrize(("accept", "expected"), [
    (None, "1 == 1"), ([], "0 == 1"),
    (["127.0.0.1", "10.1.2.3/8"], 'is_in_subnet("$si", "127.0.0.1/32,10.0.0.0/8")')])
def test_accept_from_condition(tmp_path: Path, accept: list[str] | None, expected: str) -> None:
    text = render(settings(tmp_path, accept_from=accept)).config.read_text()
    assert f"if ({expected})" in text


@pytest.mark.parametrize("bad", [
    {"host": "carrier.example"}, {"allowed_prefixes": ["31"]}, {"allowed_prefixes": []},
    {"password": 'a"b'}, {"username": None}, {"transport": "tls"}, {"caller_id": "x"},
    {"max_calls": 0}])
def test_invalid_trunk_is_rejected(tmp_path: Path, bad: dict[str, object]) -> None:
    trunk = dataclasses.replace(TRUNK, **bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        render(settings(tmp_path, trunks=[trunk]))


@pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio not installed")
def test_kamailio_accepts_config_with_trunks(tmp_path: Path) -> None:
    registering = dataclasses.replace(TRUNK, register=True)
    edge = render(settings(tmp_path, trunks=[registering,
                                             TrunkTarget("b", "192.0.2.20", 5080, ["+1"])],
                           accept_from=["127.0.0.0/8"]))
    check = subprocess.run(
        ["kamailio", "-c", "-f", str(edge.config)], capture_output=True, text=True, timeout=10
    )
    assert check.returncode == 0, check.stderr[-2000:]


def test_a_registering_trunk_gets_a_uacreg_row_only_its_owner_reads(tmp_path: Path) -> None:
    plain = render(settings(tmp_path / "a", trunks=[TRUNK]))
    assert not plain.db_dir.exists()
    assert 'modparam("uac", "reg_db_url"' not in plain.config.read_text()
    trunk = dataclasses.replace(TRUNK, register=True, password="s3:cret")
    edge = render(settings(tmp_path / "b", trunks=[trunk]))
    assert f'modparam("uac", "reg_db_url", "text://{edge.db_dir}")' in edge.config.read_text()
    rows = (edge.db_dir / "uacreg").read_text().splitlines()
    assert rows[0].startswith("id(int,auto) l_uuid(string)") and len(rows) == 2
    assert rows[1] == ("1:carrier:carrier:127.0.0.1:cti:192.0.2.10\\:5060:carrier.test:cti:"
                       "s3\\:cret::sip\\:192.0.2.10\\:5060;transport=tcp:600:0:0:"
                       "127.0.0.1\\:5070:")
    assert (edge.db_dir / "uacreg").stat().st_mode & 0o077 == 0
    assert "uacreg:5" in (edge.db_dir / "version").read_text()


def test_per_source_limits_are_rendered_and_checked(tmp_path: Path) -> None:
    cfg = render(settings(tmp_path, max_calls_per_source=3,
                          call_attempts_per_source_per_minute=7)).config.read_text()
    assert "$var(src_calls) >= 3" in cfg and "$var(src_attempts) > 7" in cfg
    with pytest.raises(ValueError, match="max_calls_per_source"):
        render(settings(tmp_path, max_calls_per_source=-1))


def _wss_edge(tmp: Path, sip_tls: bool) -> EdgeSettings:
    from cti.edge.render import EdgeTls, WebRtcEdge

    (tmp / "pem").mkdir(parents=True, exist_ok=True)
    files = [tmp / "pem" / n for n in ("sip.crt", "sip.key", "wss.crt", "wss.key")]
    return settings(
        tmp / "rt", tls=EdgeTls(5071, files[0], files[1]) if sip_tls else None,
        webrtc=WebRtcEdge(5066, 2223, ["https://127.0.0.1:8443"],
                          wss=EdgeTls(5067, files[2], files[3])))


@pytest.mark.parametrize("sip_tls", [False, True])
def test_wss_gets_a_tls_listener_and_a_profile_of_its_own(tmp_path: Path, sip_tls: bool) -> None:
    edge = render(_wss_edge(tmp_path, sip_tls))
    cfg, tls = edge.config.read_text(), edge.tls_config.read_text()
    assert "enable_tls=yes" in cfg and "listen=tls:127.0.0.1:5067" in cfg
    assert ("listen=tls:127.0.0.1:5071" in cfg) is sip_tls
    # The handshake route takes both WebSocket ports, from the https page only.
    assert "if ($Rp != 5066 && $Rp != 5067) {" in cfg
    assert '$hdr(Origin) == "https://127.0.0.1:8443"' in cfg
    profile = tls.split("[server:127.0.0.1:5067]")[1].split("[")[0]
    assert f"certificate = {tmp_path / 'pem' / 'wss.crt'}" in profile
    assert f"private_key = {tmp_path / 'pem' / 'wss.key'}" in profile
    default = tls.split("[server:default]")[1].split("[")[0]
    assert f"certificate = {tmp_path / 'pem' / ('sip.crt' if sip_tls else 'wss.crt')}" in default


def test_without_wss_the_handshake_route_takes_the_ws_port_only(tmp_path: Path) -> None:
    from cti.edge.render import WebRtcEdge

    edge = render(settings(tmp_path, webrtc=WebRtcEdge(5066, 2223, ["http://127.0.0.1:8080"])))
    cfg = edge.config.read_text()
    assert "if ($Rp != 5066 && $Rp != 0) {" in cfg and "listen=tls:" not in cfg
    assert not edge.tls_config.exists()


@pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio not installed")
@pytest.mark.parametrize("sip_tls", [False, True])
def test_kamailio_accepts_config_with_wss(tmp_path: Path, sip_tls: bool) -> None:
    edge = render(_wss_edge(tmp_path, sip_tls))
    check = subprocess.run(
        ["kamailio", "-c", "-f", str(edge.config)], capture_output=True, text=True, timeout=10
    )
    assert check.returncode == 0, check.stderr[-2000:]

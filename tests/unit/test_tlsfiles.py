"""The wss listener's certificate: the configured one, http.tls's, or a self-signed
one made with the real openssl; and check-config's errors for webrtc.tls."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from cti.config import ConfigError, Settings, parse_settings
from cti.tlsfiles import check_tls_files, self_signed, wss_files

DEMO = Path(__file__).resolve().parents[2] / "config" / "cti.yaml"

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


def _settings(tmp: Path, **webrtc: Any) -> Settings:
    data = yaml.safe_load(DEMO.read_text())
    data["runtime_dir"] = str(tmp / "run")
    data["webrtc"].update(webrtc)
    return parse_settings(data, tmp / "cti.yaml")


def _san(cert: Path) -> str:
    return subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-ext",
                           "subjectAltName"], capture_output=True, text=True,
                          check=True).stdout


def test_a_self_signed_certificate_is_made_once_and_kept(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path / "wss", "127.0.0.1")
    assert "IP Address:127.0.0.1" in _san(cert)
    assert key.stat().st_mode & 0o077 == 0 and (tmp_path / "wss").stat().st_mode & 0o077 == 0
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    pem = cert.read_bytes()
    assert self_signed(tmp_path / "wss", "127.0.0.1") == (cert, key)
    assert cert.read_bytes() == pem  # still good: kept
    # Another address (sip.ip changed): a new certificate that names it.
    self_signed(tmp_path / "wss", "127.0.0.2")
    assert cert.read_bytes() != pem and "IP Address:127.0.0.2" in _san(cert)
    assert sorted(p.name for p in (tmp_path / "wss").iterdir()) == ["cert.pem", "key.pem"]


def test_the_wss_certificate_is_webrtc_tls_then_http_tls_then_self_signed(
        tmp_path: Path) -> None:
    assert wss_files(_settings(tmp_path)) is None  # wss_port 0: no wss
    assert wss_files(_settings(tmp_path, enabled=False, wss_port=5067)) is None
    made = wss_files(_settings(tmp_path, wss_port=5067))
    assert made == (tmp_path / "run" / "wss" / "cert.pem", tmp_path / "run" / "wss" / "key.pem")
    given = {"cert_file": "w.crt", "key_file": "w.key"}
    assert wss_files(_settings(tmp_path, wss_port=5067, tls=given)) == (
        tmp_path / "w.crt", tmp_path / "w.key")
    data = yaml.safe_load(DEMO.read_text())
    data["webrtc"]["wss_port"] = 5067
    data["http"]["tls"] = {"cert_file": "h.crt", "key_file": "h.key"}
    assert wss_files(parse_settings(data, tmp_path / "cti.yaml")) == (
        tmp_path / "h.crt", tmp_path / "h.key")


def test_check_config_names_a_missing_webrtc_tls_file(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path / "pem", "127.0.0.1")
    settings = _settings(tmp_path, wss_port=5067,
                         tls={"cert_file": str(cert), "key_file": "nowhere.key"})
    with pytest.raises(ConfigError) as e:
        check_tls_files(settings)
    assert str(e.value) == (f"{tmp_path / 'cti.yaml'}: webrtc.tls.key_file: "
                            f"{tmp_path / 'nowhere.key'}: no such file")


def test_without_openssl_the_self_signed_certificate_is_a_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # the real lookup finds none
    settings = _settings(tmp_path, wss_port=5067)
    for check in (check_tls_files, wss_files):
        with pytest.raises(ConfigError, match=r"cti\.yaml: webrtc\.wss_port: no certificate "
                                              r"given .* no openssl"):
            check(settings)  # type: ignore[operator]

"""The certificates and keys of http.tls, sip.tls and webrtc.tls, checked before
anything starts; and the wss listener's certificate, self-signed when none is given.

uvicorn and Kamailio would otherwise fail later with a message that names neither
the key in the config nor the file (Kamailio: "exited with 255").
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import ssl
import stat
import subprocess
import tempfile
from pathlib import Path

from cti.config import ConfigError, Settings, TlsFiles

log = logging.getLogger("cti.tls")

SELF_SIGNED_DAYS = 365


def wss_on(settings: Settings) -> bool:
    return settings.webrtc.enabled and settings.webrtc.wss_port > 0


def tls_blocks(settings: Settings) -> list[tuple[str, TlsFiles]]:
    """(config key, files) of every TLS listener the config turns on."""
    blocks: list[tuple[str, TlsFiles]] = []
    if settings.http.tls is not None:
        blocks.append(("http.tls", settings.http.tls))
    if settings.sip.tls is not None:
        blocks.append(("sip.tls", settings.sip.tls))
    if wss_on(settings) and settings.webrtc.tls is not None:
        blocks.append(("webrtc.tls", settings.webrtc.tls))
    return blocks


def wss_files(settings: Settings) -> tuple[Path, Path] | None:
    """(certificate, key) of the wss listener, None without one: webrtc.tls, else
    http.tls (the page and the phone's WebSocket then show the same certificate),
    else a self-signed one in <runtime_dir>/wss/, made now if missing or stale."""
    if not wss_on(settings):
        return None
    given = settings.webrtc.tls or settings.http.tls
    if given is not None:
        return settings.path(given.cert_file), settings.path(given.key_file)
    try:
        return self_signed(settings.path(settings.runtime_dir) / "wss", settings.sip.ip)
    except ConfigError as e:
        raise ConfigError(f"{settings.source}: {e}") from None


def _openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        raise ConfigError("webrtc.wss_port: no certificate given (webrtc.tls, http.tls) and "
                          "no openssl to make a self-signed one (apt-get install openssl)")
    return found


def _still_good(cert: Path, key: Path, host: str) -> bool:
    """The certificate loads with its key, names host and lasts another day."""
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError, ValueError):
        return False
    res = subprocess.run([_openssl(), "x509", "-in", str(cert), "-noout", "-checkend",
                          "86400", "-ext", "subjectAltName"],
                         capture_output=True, text=True, timeout=30, check=False)
    return res.returncode == 0 and _san(host) in res.stdout.replace("IP Address", "IP")


def _san(host: str) -> str:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return f"DNS:{host}"
    return f"IP:{host}"


def self_signed(folder: Path, host: str) -> tuple[Path, Path]:
    """(cert.pem, key.pem) in folder for host, self-signed (ECDSA P-256, a year):
    the one there if it is still good, else a new one (the key 0600)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    if cert.exists() and key.exists() and _still_good(cert, key, host):
        return cert, key
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        new_cert, new_key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        res = subprocess.run(
            [_openssl(), "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", str(SELF_SIGNED_DAYS),
             "-subj", f"/CN={host}", "-addext", f"subjectAltName={_san(host)}",
             "-keyout", str(new_key), "-out", str(new_cert)],
            capture_output=True, text=True, timeout=60, check=False)
        if res.returncode != 0:
            last = (res.stderr.strip().splitlines() or ["no output"])[-1]
            raise ConfigError(f"webrtc.wss_port: openssl could not make a self-signed "
                              f"certificate in {folder}: {last}")
        new_key.chmod(0o600)
        new_key.replace(key)
        new_cert.replace(cert)
    log.warning("wss: no certificate configured (webrtc.tls, http.tls): made a self-signed "
                "one for %s in %s; browsers refuse it until told to trust it", host, cert)
    return cert, key


def _unreadable(path: Path) -> str | None:
    if not path.exists():
        return "no such file"
    if not path.is_file():
        return "not a file"
    if not os.access(path, os.R_OK):
        return "not readable by this user"
    return None


def check_tls_files(settings: Settings) -> list[str]:
    """Raise ConfigError naming the key for a missing, unreadable or mismatched
    certificate or key; return warnings (a private key others may read)."""
    source = settings.source
    warnings: list[str] = []
    for key, files in tls_blocks(settings):
        cert, priv = settings.path(files.cert_file), settings.path(files.key_file)
        for name, path in (("cert_file", cert), ("key_file", priv)):
            problem = _unreadable(path)
            if problem:
                raise ConfigError(f"{source}: {key}.{name}: {path}: {problem}")
        try:
            # The same load the servers do: PEM syntax, and the key matches the cert.
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, priv)
        except (ssl.SSLError, ValueError) as e:
            raise ConfigError(f"{source}: {key}: {cert} with {priv}: not a PEM certificate "
                              f"and its private key ({e})") from None
        if priv.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append(f"{key}.key_file: {priv} can be read by other users "
                            f"(mode {stat.filemode(priv.stat().st_mode)}; chmod 600 it)")
    if wss_on(settings) and settings.webrtc.tls is None and settings.http.tls is None:
        try:
            _openssl()  # the self-signed certificate is made at start
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None
    return warnings

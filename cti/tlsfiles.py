"""The certificates and keys of http.tls and sip.tls, checked before anything starts.

uvicorn and Kamailio would otherwise fail later with a message that names neither
the key in the config nor the file (Kamailio: "exited with 255").
"""

from __future__ import annotations

import os
import ssl
import stat
from pathlib import Path

from cti.config import ConfigError, Settings, TlsFiles


def tls_blocks(settings: Settings) -> list[tuple[str, TlsFiles]]:
    """(config key, files) of every TLS listener the config turns on."""
    blocks: list[tuple[str, TlsFiles]] = []
    if settings.http.tls is not None:
        blocks.append(("http.tls", settings.http.tls))
    if settings.sip.tls is not None:
        blocks.append(("sip.tls", settings.sip.tls))
    return blocks


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
    return warnings

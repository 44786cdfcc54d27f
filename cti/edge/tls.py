"""The edge's TLS listeners: SIP over TLS for phones (sip.tls) and SIP over secure
WebSocket for browser phones (webrtc.wss_port), rendered into kamailio.cfg and the
tls module's tls.cfg (cti.edge.render fills the placeholders).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# A path written unquoted into tls.cfg and quoted into kamailio.cfg.
_PATH_RE = re.compile(r"^[A-Za-z0-9/._+-]+$")


@dataclass(frozen=True)
class EdgeTls:
    """A TLS listener on the edge's IP with this certificate (sip.tls, or wss)."""

    port: int
    cert_file: Path
    key_file: Path


def _check(tls: EdgeTls) -> None:
    if not 0 < tls.port < 65536:
        raise ValueError(f"invalid TLS port {tls.port}")
    for path in (tls.cert_file, tls.key_file):
        if not path.is_absolute() or not _PATH_RE.fullmatch(str(path)):
            raise ValueError(f"invalid TLS file path {path} (absolute, no spaces or quotes)")


def _server_profile(name: str, tls: EdgeTls) -> list[str]:
    return [f"[server:{name}]", "method = TLSv1.2+", "verify_certificate = no",
            "require_certificate = no", f"certificate = {tls.cert_file}",
            f"private_key = {tls.key_file}", ""]


def tls_config_text(sip: EdgeTls | None, wss: EdgeTls | None = None,
                    ip: str = "") -> str | None:
    """The tls module's config, None when no TLS listener is on. Phones and browsers
    are not asked for a certificate (they authenticate with their digest). The wss
    port has a profile of its own (its certificate may differ from sip.tls's: the
    browser checks it against the page's host); the default profile is sip.tls's,
    or the wss one's when there is no sip.tls."""
    if sip is None and wss is None:
        return None
    for tls in (t for t in (sip, wss) if t is not None):
        _check(tls)
    default = sip if sip is not None else wss
    assert default is not None
    lines = ["# rendered by cti.edge.render from sip.tls and webrtc.wss_port",
             *_server_profile("default", default)]
    if wss is not None:
        lines += _server_profile(f"{ip}:{wss.port}", wss)
    lines += ["[client:default]", "method = TLSv1.2+", "verify_certificate = no",
              "require_certificate = no", ""]
    return "\n".join(lines)


def tls_block(tls_config: Path, ip: str, sip: EdgeTls | None,
              wss: EdgeTls | None = None) -> str:
    """Config lines for the TLS listeners (tls.so, its tls.cfg), or a comment."""
    if sip is None and wss is None:
        return "# neither sip.tls nor webrtc.wss_port is set: no TLS listener"
    lines = ["enable_tls=yes"]
    for tls in (t for t in (sip, wss) if t is not None):
        _check(tls)
        lines.append(f"listen=tls:{ip}:{tls.port}")
    return "\n".join([
        *lines,
        'loadmodule "tls.so"',
        f'modparam("tls", "config", "{tls_config}")',
        # (route TLS_REGISTER sets $avp(RECEIVED), the registrar's received_avp in
        # the template: calls to a TLS phone go back over its connection; a wss
        # browser's is set by route WS_NAT)
    ])


# A phone on TLS has no certificate, so the edge can never open a TLS connection
# to it: every request to it must go over the connection it opened. The
# registration saves that connection's address as "received" (lookup() makes it
# the destination); a Contact it sends in a dialog (200 OK, re-INVITE) gets an
# ;alias=ip~port~proto of the connection, which the worker echoes back in its
# R-URI and handle_ruri_alias() turns into the destination again.
_TLS_ROUTES = """\
route[TLS_REGISTER] {
	if ($proto == "tls") {
		$avp(RECEIVED) = "sip:" + $si + ":" + $sp + ";transport=tls";
	}
}

route[TLS_CONTACT] {
	if ($proto == "tls" && !is_method("REGISTER") && is_present_hf("Contact")) {
		set_contact_alias();
	}
}

# Only for requests from the workers: an outsider's alias must not pick a target.
route[TLS_TARGET] {
	if ($ru =~ ";alias=") {
		handle_ruri_alias();
	}
}"""


def tls_routes(tls: EdgeTls | None) -> str:
    if tls is None:
        return "\n".join(f"route[{name}] {{\n\treturn;\n}}"
                         for name in ("TLS_REGISTER", "TLS_CONTACT", "TLS_TARGET"))
    return _TLS_ROUTES

"""Render the Kamailio edge configuration into a per-instance runtime directory.

Everything Kamailio reads or creates lives in ``runtime_dir`` with absolute paths:
Kamailio runs with working directory ``/`` and two instances must never share a
run dir (the second one deletes the first one's sockets).
"""

from __future__ import annotations

import glob
import hashlib
import ipaddress
import re
import secrets
import sqlite3
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from cti.edge.dispatch import WorkerTarget as WorkerTarget  # (re-exported)
from cti.edge.dispatch import (
    dispatcher_list_text,
    max_while_loops,
    probe_interval,
    worker_sets,
)
from cti.edge.tls import EdgeTls, tls_block, tls_config_text, tls_routes

# Advisor names end up inside the Kamailio config ($sht(users=>NAME)) and in SIP
# URIs: allow only characters that need no escaping anywhere.
_NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")
_DUID_RE = _NAME_RE
_NUMBER_RE = re.compile(r"^\+?[0-9]+$")
_REALM_RE = re.compile(r"^[A-Za-z0-9._-]+$")
_HOST_RE = re.compile(r"^[A-Za-z0-9.:-]+$")
# The edge's secret goes into the config verbatim (an X-CTI-Edge header value).
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_PLACEHOLDER_RE = re.compile(r"\{\{([A-Z0-9_]+)\}\}")
# sun_path is 108 bytes on Linux, including the terminating NUL.
_MAX_SOCKET_PATH = 107


def new_edge_secret() -> str:
    """A fresh secret for the X-CTI-Edge header (one per gateway start)."""
    return secrets.token_hex(16)


_TRUNK_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_PREFIX_RE = re.compile(r"^\+[0-9]{1,15}$")
_USER_RE = re.compile(r"^\+?[A-Za-z0-9._-]{1,64}$")
# Written inside a double-quoted Kamailio string.
_PASSWORD_RE = re.compile(r'^[^"\\\r\n]+$')


@dataclass(frozen=True)
class TrunkTarget:
    """A carrier trunk as the edge sees it (cti.config.TrunkSettings, password resolved)."""

    name: str
    host: str  # an IPv4 address
    port: int
    allowed_prefixes: list[str]
    transport: str = "udp"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    realm: str | None = None  # None: answer whatever realm the carrier asks for
    caller_id: str | None = None
    asserted_identity: str | None = None
    max_calls: int = 10
    register: bool = False  # REGISTER with the carrier (uac_reg)
    register_expires: int = 600


@dataclass(frozen=True)
class WebRtcEdge:
    """SIP over WebSocket for browser phones, media through rtpengine (issue 14)."""

    ws_port: int
    ng_port: int  # rtpengine's control socket on 127.0.0.1
    origins: list[str]  # pages allowed to open the WebSocket ("http://127.0.0.1:8080")
    # SIP over secure WebSocket (webrtc.wss_port) for pages served over https; None: ws only.
    wss: EdgeTls | None = None


_ORIGIN_RE = re.compile(r"^https?://[A-Za-z0-9.:-]+$")


def ws_origin_condition(origins: list[str]) -> str:
    """Kamailio expression: the handshake's Origin is one of the gateway's pages."""
    for origin in origins:
        if not _ORIGIN_RE.fullmatch(origin):
            raise ValueError(f"invalid WebSocket origin {origin!r}")
    return " || ".join(f'$hdr(Origin) == "{o}"' for o in origins) or "0 == 1"


def webrtc_values(w: WebRtcEdge | None) -> dict[str, str]:
    """The template's webrtc placeholders (the blocks are #!ifdef WITH_WEBRTC)."""
    if w is None:
        return {"WEBRTC_DEFINE": "# webrtc off: no WebSocket listener, no rtpengine",
                "WS_PORT": "0", "WSS_PORT": "0", "NG_PORT": "0",
                "WS_ORIGIN_CONDITION": "0 == 1"}
    if not (0 < w.ws_port < 65536 and 0 < w.ng_port < 65536):
        raise ValueError(f"invalid webrtc ports {w!r}")
    # (the wss listener itself is in the TLS block: cti.edge.tls)
    return {"WEBRTC_DEFINE": "#!define WITH_WEBRTC", "WS_PORT": str(w.ws_port),
            "WSS_PORT": str(w.wss.port if w.wss is not None else 0),
            "NG_PORT": str(w.ng_port), "WS_ORIGIN_CONDITION": ws_origin_condition(w.origins)}


@dataclass
class EdgeSettings:
    ip: str
    port: int
    runtime_dir: Path
    realm: str
    hotline_numbers: list[str]
    workers: list[WorkerTarget]
    advisors: dict[str, str] = field(default_factory=dict)  # name -> plaintext password
    advisor_ha1: dict[str, str] = field(default_factory=dict)  # name -> HA1 (hex md5)
    children: int = 2
    # Seconds between OPTIONS probes of each worker; None: dispatch.probe_interval
    # (5 s, longer for pools of more than 100 workers).
    ping_interval: int | None = None
    hotline_branch_timeout_ms: int = 3000  # fr_timer on dispatched branches
    hotline_inv_timeout_ms: int = 60000  # fr_inv_timer on dispatched branches
    # X-CTI-Edge value the edge adds to every INVITE it relays to a worker; the
    # workers refuse INVITEs without it (cti.media.engine). Random unless given
    # (the gateway gives the same one to its workers).
    edge_secret: str = field(default_factory=new_edge_secret)
    trunks: list[TrunkTarget] = field(default_factory=list)
    # Who besides the trunks may dial a hotline: None = anyone, else IPv4 networks.
    accept_from: list[str] | None = None
    # Digest brute force: this many wrong passwords for one user from one source
    # IP lock that user out from that IP (only) for auth_lockout_s seconds.
    auth_lockout_failures: int = 10
    auth_lockout_s: int = 300
    # Concurrent hotline calls per source IP from outside (trunks exempt); 0: no limit.
    max_calls_per_source: int = 10
    # Hotline INVITEs per source IP per minute from outside (trunks exempt); 0: no limit.
    call_attempts_per_source_per_minute: int = 60
    overload_retry_after_s: int = 30  # the Retry-After of a 503 Lines busy
    max_new_calls_per_second: int = 0  # new hotline calls admitted a second; 0: no cap
    flood_requests_per_s: int = 200  # pike, per source IP (trunks exempt); 0: off
    tls: EdgeTls | None = None  # None: UDP and TCP only
    # Browser phones (webrtc.enabled); None: the edge speaks UDP and TCP only.
    webrtc: WebRtcEdge | None = None


@dataclass(frozen=True)
class RenderedEdge:
    """Paths of everything render() wrote or Kamailio will create."""

    runtime_dir: Path
    config: Path
    dispatcher_list: Path
    users_file: Path
    ctl_socket: Path
    jsonrpc_socket: Path
    pid_file: Path
    log_file: Path
    db_dir: Path  # db_text tables (uac_reg's uacreg) when a trunk registers
    location_db: Path  # usrloc's sqlite database: registrations outlive a restart
    tls_config: Path  # the tls module's profiles (written when sip.tls or wss is on)


def ha1(user: str, realm: str, password: str) -> str:
    """Digest HA1 = md5(user:realm:password), what Kamailio checks with flag 1."""
    return hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()


def check_advisor_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise ValueError(f"invalid advisor name {name!r}: must match {_NAME_RE.pattern}")
    return name


def check_duid(duid: str) -> str:
    if not _DUID_RE.fullmatch(duid):
        raise ValueError(f"invalid worker duid {duid!r}: must match {_DUID_RE.pattern}")
    return duid


def find_module_path() -> Path:
    """Kamailio's module directory (multiarch path, e.g. /usr/lib/x86_64-linux-gnu/...)."""
    candidates = sorted(glob.glob("/usr/lib/*/kamailio/modules")) + sorted(
        glob.glob("/usr/lib*/kamailio/modules")
    )
    for candidate in candidates:
        if Path(candidate, "dispatcher.so").exists():
            return Path(candidate)
    raise FileNotFoundError("Kamailio modules not found under /usr/lib/*/kamailio/modules")


def hotline_condition(numbers: list[str]) -> str:
    """Kamailio expression matching $rU against each number, with and without '+'."""
    variants: list[str] = []
    for number in numbers:
        if not _NUMBER_RE.fullmatch(number):
            raise ValueError(f"invalid hotline number {number!r}: digits with optional '+'")
        bare = number.lstrip("+")
        for variant in (f"+{bare}", bare):
            if variant not in variants:
                variants.append(variant)
    if not variants:
        return "$rU == $null && $rU != $null"  # never true: no hotline configured
    return " || ".join(f'$rU == "{v}"' for v in variants)


def _check_trunk(t: TrunkTarget) -> None:
    ipaddress.IPv4Address(t.host)  # ValueError for anything else
    ok = (_TRUNK_NAME_RE.fullmatch(t.name) and 0 < t.port < 65536
          and t.transport in ("udp", "tcp") and t.allowed_prefixes and t.max_calls >= 1
          and all(_PREFIX_RE.fullmatch(p) for p in t.allowed_prefixes)
          and all(v is None or _NUMBER_RE.fullmatch(v) for v in (t.caller_id,
                                                                  t.asserted_identity))
          and (t.realm is None or _REALM_RE.fullmatch(t.realm))
          and (t.username is None) == (t.password is None)
          and (t.username is None or _USER_RE.fullmatch(t.username))
          and (t.password is None or _PASSWORD_RE.fullmatch(t.password))
          and (not t.register or t.username is not None) and t.register_expires >= 60)
    if not ok:
        raise ValueError(f"invalid trunk {t!r}")


def trunk_select(trunks: list[TrunkTarget], ip: str) -> str:
    """Kamailio statements for route TO_TRUNK: the first trunk whose prefixes match
    $rU sets $var(trunk...) and the credentials AVPs for uac_auth()."""
    names = [t.name for t in trunks]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate trunk names in {names}")
    out: list[str] = []
    for t in trunks:
        _check_trunk(t)
        prefixes = "|".join(re.escape(p.lstrip("+")) for p in t.allowed_prefixes)
        cond = f'$var(trunk) == "" && $rU =~ "^\\+({prefixes})[0-9]*$"'
        out.append(f"\tif ({cond}) {{")
        out.append(f'\t\t$var(trunk) = "{t.name}";')
        out.append(f"\t\t$var(trunk_max) = {t.max_calls};")
        out.append(f'\t\t$var(trunk_uri) = "sip:" + $rU + "@{t.host}:{t.port}";')
        if t.transport == "tcp":
            out.append(f'\t\t$var(trunk_du) = "sip:{t.host}:{t.port};transport=tcp";')
        if t.caller_id:
            out.append(f'\t\t$var(trunk_from) = "sip:{t.caller_id}@{ip}";')
        if t.asserted_identity:
            out.append(f'\t\t$var(trunk_pai) = "sip:{t.asserted_identity}@{ip}";')
        if t.username is not None:
            out.append(f'\t\t$avp(trunk_user) = "{t.username}";')
            out.append(f'\t\t$avp(trunk_pass) = "{t.password}";')
            if t.realm:
                out.append(f'\t\t$avp(trunk_realm) = "{t.realm}";')
        out.append("\t}")
    return "\n".join(out)


def from_trunk_condition(trunks: list[TrunkTarget]) -> str:
    """Requests from a trunk: its IP, and its port over UDP (a carrier sends from
    its SIP socket; over TCP the source port is an ephemeral one)."""
    parts = []
    for t in trunks:
        _check_trunk(t)
        parts.append(f'($si == "{t.host}" && ($pr != "udp" || $sp == {t.port}))')
    return " || ".join(parts) or "0 == 1"


def to_trunk_address_condition(trunks: list[TrunkTarget]) -> str:
    """An R-URI at a trunk's address (its IP and SIP port)."""
    return " || ".join(f'($rd == "{t.host}" && $rp == {t.port})' for t in trunks) or "0 == 1"


_UACREG_COLUMNS = (
    "id(int,auto) l_uuid(string) l_username(string) l_domain(string) r_username(string) "
    "r_domain(string) realm(string,null) auth_username(string) auth_password(string) "
    "auth_ha1(string,null) auth_proxy(string) expires(int) flags(int) reg_delay(int) "
    "contact_addr(string) socket(string,null)")


def _dbtext(value: str) -> str:
    """A db_text field: ':' separates columns, '\\' escapes."""
    return value.replace("\\", "\\\\").replace(":", "\\:")


def uacreg_text(trunks: list[TrunkTarget], ip: str, port: int) -> str | None:
    """uac_reg's table (db_text): one row per trunk that registers; None if none does.
    The Contact registered is sip:<trunk name>@<edge ip:port>."""
    rows = [_UACREG_COLUMNS]
    for i, t in enumerate((t for t in trunks if t.register), start=1):
        _check_trunk(t)
        assert t.username is not None and t.password is not None
        proxy = f"sip:{t.host}:{t.port}" + (";transport=tcp" if t.transport == "tcp" else "")
        fields = [str(i), t.name, t.name, ip, t.username, f"{t.host}:{t.port}", t.realm or "",
                  t.username, t.password, "", proxy, str(t.register_expires), "0", "0",
                  f"{ip}:{port}", ""]
        rows.append(":".join(_dbtext(f) for f in fields))
    return "\n".join(rows) + "\n" if len(rows) > 1 else None


def register_modules(edge: RenderedEdge, ip: str, port: int, registering: bool) -> str:
    """Config lines for uac_reg (only when a trunk registers: reg_db_url needs a db)."""
    if not registering:
        return "# no trunk registers: uac_reg is off (reg_db_url unset)"
    return "\n".join([
        'loadmodule "db_text.so"',
        f'modparam("uac", "reg_db_url", "text://{edge.db_dir}")',
        f'modparam("uac", "reg_contact_addr", "{ip}:{port}")',
        'modparam("uac", "reg_timer_interval", 10)',
        'modparam("uac", "reg_retry_interval", 30)',
        'modparam("uac", "reg_keep_callid", 1)',
    ])


def registered_contact_condition(trunks: list[TrunkTarget]) -> str:
    """A call from a registering trunk to the Contact it has (sip:<name>@edge)."""
    return " || ".join(f'$rU == "{t.name}"' for t in trunks if t.register) or "0 == 1"


def accept_from_condition(networks: list[str] | None) -> str:
    if networks is None:
        return "1 == 1"
    nets = [str(ipaddress.IPv4Network(n, strict=False)) for n in networks]
    if not nets:
        return "0 == 1"
    return f'is_in_subnet("$si", "{",".join(nets)}")'


def users_text(advisors: dict[str, str], realm: str,
               advisor_ha1: dict[str, str] | None = None) -> str:
    """htable include file: one `$sht(users=>NAME) = "HA1";` statement per advisor
    (from a plaintext password, or an HA1 given as is, e.g. from the config)."""
    lines = ["# rendered by cti.edge.render: advisor name -> HA1"]
    hashes = {name: ha1(name, realm, pw) for name, pw in advisors.items()}
    for name, given in (advisor_ha1 or {}).items():
        if not re.fullmatch(r"[0-9a-f]{32}", given):
            raise ValueError(f"invalid HA1 for advisor {name!r}: expected 32 hex digits")
        hashes[name] = given
    for name, h in sorted(hashes.items()):
        check_advisor_name(name)
        lines.append(f'$sht(users=>{name}) = "{h}";')
    return "\n".join(lines) + "\n"


# usrloc's table (schema version 9, Kamailio 5.6: utils/kamctl/db_sqlite/usrloc-create.sql).
_LOCATION_SCHEMA = """
CREATE TABLE IF NOT EXISTS version (
    table_name VARCHAR(32) NOT NULL,
    table_version INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT version_table_name_idx UNIQUE (table_name)
);
CREATE TABLE IF NOT EXISTS location (
    id INTEGER PRIMARY KEY NOT NULL,
    ruid VARCHAR(64) DEFAULT '' NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT NULL,
    contact VARCHAR(512) DEFAULT '' NOT NULL,
    received VARCHAR(128) DEFAULT NULL,
    path VARCHAR(512) DEFAULT NULL,
    expires TIMESTAMP WITHOUT TIME ZONE DEFAULT '2030-05-28 21:32:15' NOT NULL,
    q REAL DEFAULT 1.0 NOT NULL,
    callid VARCHAR(255) DEFAULT 'Default-Call-ID' NOT NULL,
    cseq INTEGER DEFAULT 1 NOT NULL,
    last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL,
    flags INTEGER DEFAULT 0 NOT NULL,
    cflags INTEGER DEFAULT 0 NOT NULL,
    user_agent VARCHAR(255) DEFAULT '' NOT NULL,
    socket VARCHAR(64) DEFAULT NULL,
    methods INTEGER DEFAULT NULL,
    instance VARCHAR(255) DEFAULT NULL,
    reg_id INTEGER DEFAULT 0 NOT NULL,
    server_id INTEGER DEFAULT 0 NOT NULL,
    connection_id INTEGER DEFAULT 0 NOT NULL,
    keepalive INTEGER DEFAULT 0 NOT NULL,
    partition INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT location_ruid_idx UNIQUE (ruid)
);
CREATE INDEX IF NOT EXISTS location_account_contact_idx ON location (username, domain, contact);
CREATE INDEX IF NOT EXISTS location_expires_idx ON location (expires);
INSERT OR IGNORE INTO version (table_name, table_version) VALUES ('version', 1);
INSERT OR IGNORE INTO version (table_name, table_version) VALUES ('location', 9);
"""


def ensure_location_db(path: Path) -> None:
    """The advisors' registrations (usrloc, write-through): kept across restarts of
    the edge and of cti serve, so phones registered before one still ring. 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    db = sqlite3.connect(path)
    try:
        db.executescript(_LOCATION_SCHEMA)
        db.commit()
    finally:
        db.close()


def _fill(template: str, values: dict[str, str]) -> str:
    def sub(match: re.Match[str]) -> str:
        return values[match.group(1)]  # KeyError = template/renderer mismatch

    return _PLACEHOLDER_RE.sub(sub, template)


def _check_settings(s: EdgeSettings) -> None:
    if not s.runtime_dir.is_absolute():
        raise ValueError(f"runtime_dir must be absolute (Kamailio runs in /): {s.runtime_dir}")
    if not _HOST_RE.fullmatch(s.ip) or not 0 < s.port < 65536:
        raise ValueError(f"invalid listen address {s.ip}:{s.port}")
    if not _REALM_RE.fullmatch(s.realm):
        raise ValueError(f"invalid realm {s.realm!r}")
    if s.max_calls_per_source < 0 or s.call_attempts_per_source_per_minute < 0:
        raise ValueError("max_calls_per_source and call_attempts_per_source_per_minute "
                         "must be >= 0")
    if s.children < 1:
        raise ValueError("children must be >= 1")
    if s.auth_lockout_failures < 1 or s.auth_lockout_s < 1:
        raise ValueError("auth_lockout_failures and auth_lockout_s must be >= 1")
    if not _SECRET_RE.fullmatch(s.edge_secret):
        raise ValueError("invalid edge_secret: 16-128 letters, digits, '-' or '_'")


def paths_for(runtime_dir: Path) -> RenderedEdge:
    d = runtime_dir
    edge = RenderedEdge(
        runtime_dir=d,
        config=d / "kamailio.cfg",
        dispatcher_list=d / "dispatcher.list",
        users_file=d / "users.htable",
        ctl_socket=d / "ctl.sock",
        jsonrpc_socket=d / "jsonrpc.sock",
        pid_file=d / "kamailio.pid",
        log_file=d / "kamailio.log",
        db_dir=d / "db",
        location_db=d / "location.sqlite",
        tls_config=d / "tls.cfg",
    )
    for sock in (edge.ctl_socket, edge.jsonrpc_socket):
        if len(str(sock).encode()) > _MAX_SOCKET_PATH:
            raise ValueError(f"runtime_dir too long for a unix socket path: {sock}")
    return edge


def render(settings: EdgeSettings) -> RenderedEdge:
    """Write kamailio.cfg, dispatcher.list and users.htable into settings.runtime_dir."""
    _check_settings(settings)
    edge = paths_for(settings.runtime_dir)
    # Validate everything before writing anything.
    dispatcher = dispatcher_list_text(settings.workers)
    users = users_text(settings.advisors, settings.realm, settings.advisor_ha1)
    uacreg = uacreg_text(settings.trunks, settings.ip, settings.port)
    wss = settings.webrtc.wss if settings.webrtc is not None else None
    tls_cfg = tls_config_text(settings.tls, wss, settings.ip)
    template = resources.files("cti.edge").joinpath("kamailio.cfg.tmpl").read_text()
    config = _fill(
        template,
        {
            "CHILDREN": str(settings.children),
            "RUN_DIR": str(edge.runtime_dir),
            "MODULE_PATH": str(find_module_path()),
            "IP": settings.ip,
            "PORT": str(settings.port),
            "JSONRPC_SOCKET": str(edge.jsonrpc_socket),
            "CTL_SOCKET": str(edge.ctl_socket),
            "DISPATCHER_LIST": str(edge.dispatcher_list),
            "USERS_FILE": str(edge.users_file),
            "REALM": settings.realm,
            "PING_INTERVAL": str(settings.ping_interval or probe_interval(len(settings.workers))),
            "WORKER_SETS": str(worker_sets(settings.workers)),
            "MAX_WHILE_LOOPS": str(max_while_loops(settings.workers)),
            "HOTLINE_CONDITION": hotline_condition(settings.hotline_numbers),
            "HOTLINE_BRANCH_TIMEOUT_MS": str(settings.hotline_branch_timeout_ms),
            "HOTLINE_INV_TIMEOUT_MS": str(settings.hotline_inv_timeout_ms),
            "EDGE_SECRET": settings.edge_secret,
            "TRUNK_SELECT": trunk_select(settings.trunks, settings.ip),
            "FROM_TRUNK_CONDITION": from_trunk_condition(settings.trunks),
            "TO_TRUNK_ADDRESS_CONDITION": to_trunk_address_condition(settings.trunks),
            "ACCEPT_FROM_CONDITION": accept_from_condition(settings.accept_from),
            "MAX_CALLS_PER_SOURCE": str(settings.max_calls_per_source),
            "CALL_ATTEMPTS_PER_SOURCE": str(settings.call_attempts_per_source_per_minute),
            "OVERLOAD_RETRY_AFTER_S": str(settings.overload_retry_after_s),
            "MAX_NEW_CALLS_PER_SECOND": str(settings.max_new_calls_per_second),
            "PIKE_DENSITY": str(max(1, settings.flood_requests_per_s * 2)),
            "PIKE_ON": "1" if settings.flood_requests_per_s else "0",
            "REGISTERED_CONTACT_CONDITION": registered_contact_condition(settings.trunks),
            "LOCATION_DB": str(edge.location_db),
            "AUTH_LOCKOUT_FAILURES": str(settings.auth_lockout_failures),
            "AUTH_LOCKOUT_S": str(settings.auth_lockout_s),
            "REGISTER_MODULES": register_modules(edge, settings.ip, settings.port,
                                                 uacreg is not None),
            "TLS_BLOCK": tls_block(edge.tls_config, settings.ip, settings.tls, wss),
            "TLS_ROUTES": tls_routes(settings.tls),
            **webrtc_values(settings.webrtc),
        },
    )
    edge.runtime_dir.mkdir(parents=True, exist_ok=True)
    edge.dispatcher_list.write_text(dispatcher)
    edge.users_file.write_text(users)
    if uacreg is not None:
        # db_text: one file per table plus "version"; it holds the trunk passwords.
        edge.db_dir.mkdir(mode=0o700, exist_ok=True)
        edge.db_dir.chmod(0o700)
        (edge.db_dir / "version").write_text(
            "table_name(string) table_version(int)\nuacreg:5\n")
        table = edge.db_dir / "uacreg"
        table.touch(mode=0o600)
        table.chmod(0o600)
        table.write_text(uacreg)
    else:
        # A trunk that no longer registers leaves no password behind.
        (edge.db_dir / "uacreg").unlink(missing_ok=True)
    ensure_location_db(edge.location_db)
    if tls_cfg is not None:
        edge.tls_config.write_text(tls_cfg)
    else:
        edge.tls_config.unlink(missing_ok=True)
    # The config holds the edge's secret: readable by the gateway's user only.
    edge.config.touch(mode=0o600)
    edge.config.chmod(0o600)
    edge.config.write_text(config)
    return edge

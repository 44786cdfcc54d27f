"""A SIP carrier for tests: a second Kamailio playing the trunk provider.

    async with Carrier(trunk_user="cti", trunk_password="s3cret") as carrier:
        carrier.address                     # ("127.0.0.1", port), UDP and TCP
        carrier.registrar_uri               # "sip:127.0.0.1:port"
        carrier.uri("+442071234567")        # "sip:+442071234567@127.0.0.1:port"
        carrier.phone_password("+442071234567")
        await carrier.set_hotline("127.0.0.1:5080")   # or Carrier(hotline=...)
        inv = await carrier.wait_for_invite(to="+442071234567", final=True)
        carrier.invites                     # every INVITE seen, as dicts
        carrier.invites_to("+442071234567") # those dialling that number
        carrier.registers, carrier.in_dialog  # REGISTERs; in-dialog requests (ACK, BYE)
        await carrier.registered("+442071234567")   # has a binding (ul.lookup)

Accounts (digest auth, realm ``carrier.test``, nothing stored in a database):

- the trunk account (``trunk_user`` / ``trunk_password``): the gateway may
  REGISTER with it and must authenticate every INVITE (407 first);
- PSTN phones: any E.164 user (``+`` and digits) with the password
  ``phone_password(number)`` (derived from a per-instance secret, so any number
  can register without being declared first). They authenticate too: their
  REGISTER gets a 401 and their INVITEs a 407, which pjsua answers itself.

Routing of a new INVITE, by the *authenticated* user:

- every INVITE without valid credentials: 407 (wrong password or unknown user:
  the same 407 again);
- from the trunk account: relayed to the phone registered as the dialled
  number (R-URI user), 404 if none;
- from a PSTN phone: to a registered number if there is one, else to the
  hotline target ``sip:<dialled>@<hotline host:port>`` (the gateway's edge),
  else 404.
- Every relayed INVITE is record-routed: BYEs and re-INVITEs pass the carrier.

The From of an INVITE is not checked against the account (a trunk's From is the
presented caller id); a REGISTER's To user must be the authenticated user.
Credentials are consumed: the callee never sees the Proxy-Authorization header.

``invites`` holds one dict per INVITE transaction, in arrival order (a 407 and
the authenticated retry are two entries with the same call_id; pjsua raises the
cseq by one, Kamailio's uac_auth() keeps it)::

    {"call_id", "cseq", "from", "from_uri", "to", "to_uri", "ruri", "dialled",
     "source" ("ip:port"), "transport", "auth" ("none" | "ok" | "failed"),
     "authenticated" (bool), "auth_user", "kind" ("trunk" | "phone" | ""),
     "target" ("phone" | "hotline" | None), "target_uri", "status" (final
     response code, None while pending)}

Kamailio writes one ``CARRIER_EVENT {json}`` line to stderr per event; the peer
reads its stderr, keeps the whole log in ``log_file`` and builds these dicts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cti.edge.render import find_module_path, ha1
from cti.edge.rpc import EdgeRpc, EdgeRpcError
from cti.procutil import die_with_parent
from tests.peers.ports import free_port

TEMPLATE = Path(__file__).with_name("carrier.cfg.tmpl")
REALM = "carrier.test"
MARKER = "CARRIER_EVENT "
_USER_RE = re.compile(r"^[A-Za-z0-9._-]+$")
_NUMBER_RE = re.compile(r"^\+[0-9]+$")
_HOSTPORT_RE = re.compile(r"^[A-Za-z0-9.-]+:[0-9]+$")
_PASSWORD_RE = re.compile(r'^[^"\\\r\n]+$')
_PLACEHOLDER_RE = re.compile(r"\{\{([A-Z0-9_]+)\}\}")


class CarrierError(RuntimeError):
    pass


class Carrier:
    def __init__(self, trunk_user: str = "cti", trunk_password: str = "s3cret",
                 ip: str = "127.0.0.1", hotline: str | tuple[str, int] | None = None,
                 run_dir: str | Path | None = None, binary: str = "kamailio") -> None:
        if not _USER_RE.fullmatch(trunk_user) or _NUMBER_RE.fullmatch(trunk_user):
            raise ValueError(f"invalid trunk user {trunk_user!r}")
        if not _PASSWORD_RE.fullmatch(trunk_password):
            raise ValueError("trunk password must not contain quotes, backslashes or newlines")
        self.trunk_user = trunk_user
        self.trunk_password = trunk_password
        self.realm = REALM
        self.ip = ip
        self.port = free_port(ip)
        self.hotline = _hostport(hotline) if hotline is not None else None
        self.secret = secrets.token_hex(8)
        self._own_run_dir = run_dir is None
        self.run_dir = Path(run_dir or tempfile.mkdtemp(prefix="carrier-")).resolve()
        self.config = self.run_dir / "kamailio.cfg"
        self.cfg_file = self.run_dir / "cfg.htable"
        self.jsonrpc_socket = self.run_dir / "jsonrpc.sock"
        self.pid_file = self.run_dir / "kamailio.pid"
        self.log_file = self.run_dir / "kamailio.log"
        self.binary = shutil.which(binary) or "/usr/sbin/kamailio"
        self.rpc = EdgeRpc(self.jsonrpc_socket, realm=self.realm, timeout=2.0)
        self.invites: list[dict[str, Any]] = []
        self.registers: list[dict[str, Any]] = []  # {"user", "auth", "source", "status"}
        self.in_dialog: list[dict[str, Any]] = []  # {"method", "call_id", "source", "ruri"}
        self._by_txn: dict[tuple[str, str], dict[str, Any]] = {}
        self._returned: set[int] = set()
        self._changed = asyncio.Condition()
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ addresses
    @property
    def address(self) -> tuple[str, int]:
        return (self.ip, self.port)

    @property
    def registrar_uri(self) -> str:
        return f"sip:{self.ip}:{self.port}"

    def uri(self, number: str) -> str:
        return f"sip:{number}@{self.ip}:{self.port}"

    def phone_password(self, number: str) -> str:
        """The password of a PSTN number (what the config derives from the secret)."""
        if not _NUMBER_RE.fullmatch(number):
            raise ValueError(f"PSTN numbers are E.164 (+ and digits): {number!r}")
        return hashlib.md5(f"{self.secret}:{number}".encode()).hexdigest()[:16]

    @property
    def pid(self) -> int | None:
        """Kamailio's main process, also its process group id (own session)."""
        return self._proc.pid if self._proc else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    # ------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Carrier:
        try:
            await self.start()
        except BaseException:
            await self.stop(failed=True)
            raise
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await self.stop(failed=exc_type is not None)

    def render(self) -> None:
        values = {
            "RUN_DIR": str(self.run_dir),
            "MODULE_PATH": str(find_module_path()),
            "IP": self.ip,
            "PORT": str(self.port),
            "JSONRPC_SOCKET": str(self.jsonrpc_socket),
            "CFG_FILE": str(self.cfg_file),
            "REALM": self.realm,
            "TRUNK_USER": self.trunk_user,
            "TRUNK_HA1": ha1(self.trunk_user, self.realm, self.trunk_password),
            "SECRET": self.secret,
        }
        text = _PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], TEMPLATE.read_text())
        self.run_dir.mkdir(parents=True, exist_ok=True)
        lines = ["# rendered by tests/peers/carrier.py"]
        if self.hotline:
            lines.append(f'$sht(cfg=>hotline) = "{self.hotline}";')
        self.cfg_file.write_text("\n".join(lines) + "\n")
        self.config.write_text(text)

    async def start(self, timeout: float = 10.0) -> None:
        self.render()
        for stale in (self.jsonrpc_socket, self.pid_file):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        self._proc = await asyncio.create_subprocess_exec(
            self.binary, "-DD", "-E", "-f", str(self.config), "-P", str(self.pid_file),
            "-Y", str(self.run_dir),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, cwd="/",
            start_new_session=True,  # own process group: killpg reaches all children
            preexec_fn=die_with_parent(),
        )
        self._reader = asyncio.create_task(self._read_log())
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.returncode is not None or (self._reader.done()):
                await asyncio.sleep(0.05)
                raise CarrierError(f"carrier kamailio exited ({self._proc.returncode}) during "
                                   f"start:\n{self.log_tail()}")
            if self.jsonrpc_socket.exists():
                with contextlib.suppress(EdgeRpcError):
                    await self.rpc.call("core.version", timeout=0.3)
                    return
            if time.monotonic() > deadline:
                raise CarrierError(f"carrier kamailio not ready after {timeout} s:\n"
                                   f"{self.log_tail()}")
            await asyncio.sleep(0.02)

    async def stop(self, failed: bool = False, grace: float = 2.0) -> None:
        """SIGTERM, then SIGKILL the process group. Idempotent; keeps the run dir
        (and prints the log tail) when the test failed."""
        proc = self._proc
        if proc is not None:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), grace)
                except (asyncio.TimeoutError, asyncio.CancelledError):
                    self._killpg(proc.pid)
                    await proc.wait()
            # Children survive a killed main process (ports stay bound): sweep the group.
            deadline = time.monotonic() + 0.5
            while _group_alive(proc.pid) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if _group_alive(proc.pid):
                self._killpg(proc.pid)
                # SIGKILLed children are gone only once init has reaped them: on a
                # loaded machine that takes a moment; stop() returns after it.
                deadline = time.monotonic() + 5.0
                while _group_alive(proc.pid) and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
        if self._reader is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._reader, 2)
        if failed or (proc is not None and proc.returncode not in (0, -signal.SIGTERM)):
            print(f"\n----- carrier kamailio log {self.log_file} -----\n{self.log_tail(60)}",
                  file=sys.stderr)
        elif self._own_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    @staticmethod
    def _killpg(pgid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    # ------------------------------------------------------------ run time
    async def set_hotline(self, hotline: str | tuple[str, int] | None) -> None:
        """Where calls from PSTN phones to unregistered numbers go (None: 404)."""
        self.hotline = _hostport(hotline) if hotline is not None else None
        if self.hotline is None:
            with contextlib.suppress(EdgeRpcError):
                await self.rpc.call("htable.delete", "cfg", "hotline")
        else:
            await self.rpc.call("htable.sets", "cfg", "hotline", self.hotline)

    async def registered(self, user: str) -> bool:
        """True if the number (or the trunk user) has a binding."""
        try:
            result = await self.rpc.call("ul.lookup", "location", user)
        except EdgeRpcError as exc:
            if exc.code == 404 or "not found" in str(exc).lower():
                return False
            raise
        return bool(result)

    # ------------------------------------------------------------ observability
    async def _read_log(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        with open(self.log_file, "ab") as log:
            try:
                async for raw in self._proc.stderr:
                    log.write(raw)
                    log.flush()
                    line = raw.decode(errors="replace")
                    pos = line.find(MARKER)
                    if pos < 0:
                        continue
                    try:
                        ev = json.loads(line[pos + len(MARKER):])
                    except ValueError:
                        continue
                    async with self._changed:
                        self._apply(ev)
                        self._changed.notify_all()
            finally:
                async with self._changed:
                    self._changed.notify_all()

    def _apply(self, ev: dict[str, Any]) -> None:
        kind = ev.pop("ev", None)
        for name, value in ev.items():  # Kamailio prints an unset variable as <null>
            if value == "<null>":
                ev[name] = None
        if kind == "register":
            self.registers.append(ev)
            return
        if kind == "in_dialog":
            self.in_dialog.append(ev)
            return
        key = (str(ev.get("call_id")), str(ev.get("cseq")))
        if kind == "invite":
            ev.update(authenticated=ev.get("auth") == "ok", target=None, target_uri=None,
                      status=None)
            self.invites.append(ev)
            self._by_txn[key] = ev
            return
        inv = self._by_txn.get(key)
        if inv is None:
            return
        if kind == "route":
            inv.update(target=ev.get("target"), target_uri=ev.get("target_uri"))
        elif kind == "final" and inv["status"] is None:
            inv["status"] = ev.get("status")

    def _match(self, match: dict[str, Any], final: bool) -> dict[str, Any] | None:
        for i, inv in enumerate(self.invites):
            if i in self._returned or (final and inv["status"] is None):
                continue
            if all(inv.get(k) == v for k, v in match.items()):
                self._returned.add(i)
                return inv
        return None

    async def wait_for_invite(self, timeout: float = 10, final: bool = False,
                              **match: Any) -> dict[str, Any]:
        """First INVITE with these field values (e.g. ``to="+44..."``,
        ``authenticated=True``) not returned before; with ``final`` only once it has
        its final response. Python keywords: pass ``**{"from": ...}``."""

        async def scan() -> dict[str, Any]:
            async with self._changed:
                while True:
                    inv = self._match(match, final)
                    if inv is not None:
                        return inv
                    if self._reader is None or self._reader.done():
                        raise CarrierError(f"carrier ended while waiting for INVITE {match}")
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(scan(), timeout)
        except asyncio.TimeoutError:
            seen = "\n  ".join(json.dumps(i) for i in self.invites[-10:])
            raise CarrierError(f"no INVITE {match} (final={final}) within {timeout}s; "
                               f"seen:\n  {seen}") from None

    def invites_to(self, number: str) -> list[dict[str, Any]]:
        return [i for i in self.invites if i.get("dialled") == number or i.get("to") == number]


def _hostport(target: str | tuple[str, int]) -> str:
    if isinstance(target, tuple):
        target = f"{target[0]}:{target[1]}"
    if not _HOSTPORT_RE.fullmatch(target):
        raise ValueError(f"hotline target must be host:port, not {target!r}")
    return target


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

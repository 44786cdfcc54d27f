"""JSON-RPC to Kamailio's jsonrpcs module over a unix datagram socket.

Kamailio answers to the sender's address, so the client binds its own socket to
a temporary path (a unix datagram socket without a bound name gets no reply).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import socket
import tempfile
from pathlib import Path
from typing import Any

from cti.edge.render import check_advisor_name, check_duid, ha1

_MAX_DATAGRAM = 1 << 20

# Dialog profile (cfg: modparam dialog profiles_with_value) holding each answered
# hotline dialog with the duid of the worker that answered it.
WORKER_PROFILE = "worker"
# Reason header of the BYEs the edge sends when a worker died (RFC 3326).
WORKER_FAILED_REASON = 'SIP;cause=503;text="media worker failed"'
# Dialog states (dialog module): 3 = 2xx seen, no ACK yet; 4 = confirmed.
# dlg.end_dlg on an earlier state answers OK but sends nothing (5.6.3 only logs
# "terminating non-confirmed dialogs not supported"), so those are skipped.
_CONFIRMED_STATES = (3, 4)


class EdgeRpcError(RuntimeError):
    """Kamailio answered with a JSON-RPC error, or did not answer in time."""

    def __init__(self, method: str, message: str, code: int | None = None) -> None:
        super().__init__(f"{method}: {message}" + (f" (code {code})" if code is not None else ""))
        self.method = method
        self.code = code


class EdgeRpc:
    """Async JSON-RPC client; one call at a time per instance (replies are matched by id)."""

    def __init__(self, socket_path: str | Path, realm: str = "", timeout: float = 2.0) -> None:
        self.socket_path = str(socket_path)
        self.realm = realm  # needed by add_advisor to compute HA1
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._lock: asyncio.Lock | None = None

    async def call(self, method: str, *params: Any, timeout: float | None = None) -> Any:
        """Call `method` with positional params; return its result or raise EdgeRpcError."""
        request_id = next(self._ids)
        request = {"jsonrpc": "2.0", "method": method, "id": request_id}
        if params:
            request["params"] = list(params)
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            reply = await self._exchange(json.dumps(request).encode(), request_id, method, timeout)
        if "error" in reply:
            err = reply["error"]
            raise EdgeRpcError(method, str(err.get("message", err)), err.get("code"))
        return reply.get("result")

    async def _exchange(
        self, payload: bytes, request_id: int, method: str, timeout: float | None
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        with _ReplySocket() as sock:
            try:
                sock.connect(self.socket_path)
                await loop.sock_sendall(sock, payload)
                return await asyncio.wait_for(
                    self._read_reply(loop, sock, request_id), timeout or self.timeout
                )
            except (OSError, asyncio.TimeoutError) as exc:
                detail = "timeout" if isinstance(exc, asyncio.TimeoutError) else str(exc)
                raise EdgeRpcError(method, f"no answer from {self.socket_path}: {detail}") from exc

    @staticmethod
    async def _read_reply(
        loop: asyncio.AbstractEventLoop, sock: socket.socket, request_id: int
    ) -> dict[str, Any]:
        while True:
            data = await loop.sock_recv(sock, _MAX_DATAGRAM)
            reply = json.loads(data)
            if reply.get("id") == request_id:
                return reply

    # ---- convenience ----

    async def version(self) -> str:
        return str(await self.call("core.version"))

    async def dispatcher_list(self) -> list[dict[str, Any]]:
        """Destinations as [{"uri", "duid", "flags", "maxload", "load"}]."""
        result = await self.call("dispatcher.list")
        return [_destination(t["DEST"]) for t in _targets(result)]

    async def set_worker_state(self, duid: str, active: bool) -> None:
        """Take a worker out of (or back into) rotation at once.

        "Inactive" would not stick: with ds_probing_mode 1 the next answered OPTIONS
        makes the worker active again, so out of rotation means "d" (disabled, not
        probed) until set active again.
        """
        state = "a" if active else "d"
        await self.call("dispatcher.set_duid_state", state, await self._worker_set(duid), duid)

    async def _worker_set(self, duid: str) -> int:
        """The dispatcher set of a worker (each worker has its own: cti.edge.dispatch)."""
        result = await self.call("dispatcher.list")
        for record in (result or {}).get("RECORDS", []):
            dset = record.get("SET", {})
            for target in dset.get("TARGETS", []):
                if (target.get("DEST", {}).get("ATTRS") or {}).get("DUID") == duid:
                    return int(dset["ID"])
        raise EdgeRpcError("dispatcher.set_duid_state", f"no worker {duid!r} in the dispatcher")

    async def set_overload(self, on: bool | None) -> int:
        """Raise (or refresh: it expires in a few seconds) or drop the flag that makes
        the edge refuse new hotline calls (cti/controller/overload.py), or (None)
        leave it; the number of calls this edge refused for overload (the flag or
        the call-rate cap) so far."""
        if on:
            await self.call("htable.seti", "overload", "shed", 1)
        elif on is False:
            with contextlib.suppress(EdgeRpcError):  # gone already (expired)
                await self.call("htable.delete", "overload", "shed")
        try:
            result = await self.call("htable.get", "overloadn", "calls")
        except EdgeRpcError:  # no such item: none refused yet
            return 0
        return int((result or {}).get("item", {}).get("value", 0))

    async def reload_dispatcher(self) -> None:
        """Re-read the list file (resets run-time states to the file's flags)."""
        await self.call("dispatcher.reload")

    async def add_advisor(self, name: str, password: str) -> None:
        """Add or change an advisor's password without restarting Kamailio."""
        if not self.realm:
            raise ValueError("EdgeRpc needs the realm to add advisors")
        check_advisor_name(name)
        await self.call("htable.sets", "users", name, ha1(name, self.realm, password))

    async def set_advisor_ha1(self, name: str, ha1_hex: str) -> None:
        """Add an advisor or change their password, given as the digest HA1 (what the
        config and the admin API keep: no password in clear)."""
        check_advisor_name(name)
        if not re.fullmatch(r"[0-9a-f]{32}", ha1_hex):
            raise ValueError(f"invalid HA1 for advisor {name!r}: expected 32 hex digits")
        await self.call("htable.sets", "users", name, ha1_hex)

    async def remove_advisor(self, name: str) -> None:
        """Forget an advisor and drop its registrations (a binding outlives the htable entry)."""
        check_advisor_name(name)
        await self.call("htable.delete", "users", name)
        with contextlib.suppress(EdgeRpcError):  # not registered: nothing to remove
            await self.call("ul.rm", "location", name)

    async def worker_dialogs(self, duid: str) -> list[dict[str, Any]]:
        """Hotline dialogs a worker answered, as dicts from dlg.profile_list.

        Keys used here: "call-id", "h_entry", "h_id", "state" (4 = confirmed).
        """
        check_duid(duid)
        return _dialogs(await self.call("dlg.profile_list", WORKER_PROFILE, duid))

    async def end_worker_dialogs(
        self, duid: str, *, reason: str | None = WORKER_FAILED_REASON
    ) -> int:
        """End every answered hotline dialog of worker `duid` at the edge.

        Kamailio sends a BYE to both sides (with a Reason header unless `reason` is
        None) and frees the worker's dispatcher slot for each dialog. Returns how
        many dialogs were ended. Calls still ringing on the worker are not included
        (the dialog module cannot end early dialogs); tm fails those over.
        """
        ended = 0
        for dialog in await self.worker_dialogs(duid):
            if await self._end(dialog, reason):
                ended += 1
        return ended

    async def end_dialog(
        self, sip_call_id: str, *, reason: str | None = WORKER_FAILED_REASON
    ) -> bool:
        """End one answered hotline dialog by the caller's Call-ID.

        False when the edge has no such confirmed dialog (unknown, still ringing,
        already ended, or not a hotline call).
        """
        if not sip_call_id or any(c in sip_call_id for c in "\r\n"):
            raise ValueError(f"invalid Call-ID {sip_call_id!r}")
        dialogs = _dialogs(await self.call("dlg.dlg_list", sip_call_id))
        ended = False
        for dialog in dialogs:
            if dialog.get("call-id") == sip_call_id and await self._end(dialog, reason):
                ended = True
        return ended

    async def _end(self, dialog: dict[str, Any], reason: str | None) -> bool:
        if dialog.get("state") not in _CONFIRMED_STATES:
            return False
        params: list[Any] = [int(dialog["h_entry"]), int(dialog["h_id"])]
        if reason:
            if any(c in reason for c in "\r\n"):
                raise ValueError(f"invalid Reason header value {reason!r}")
            params.append(f"Reason: {reason}\r\n")
        try:
            await self.call("dlg.end_dlg", *params)
        except EdgeRpcError as exc:
            if exc.code == 404:  # ended meanwhile (e.g. the caller hung up)
                return False
            raise
        return True

    async def registered(self, name: str) -> bool:
        check_advisor_name(name)
        try:
            result = await self.call("ul.lookup", "location", name)
        except EdgeRpcError as exc:
            if exc.code == 404 or "not found" in str(exc).lower():
                return False
            raise
        return bool(result)

    async def registered_users(self) -> set[str]:
        """Every user with at least one live contact in the location table.

        The full ul.dump, not "brief": an expired contact stays in the table until
        usrloc's timer removes it, and only the full dump says it has expired.
        """
        return _aors(await self.call("ul.dump"))


def _aors(result: Any) -> set[str]:
    """Users with a live contact in an ul.dump: Domains[].Domain.AoRs[].Info."""
    users: set[str] = set()
    for domain in (result or {}).get("Domains") or []:
        for entry in (domain.get("Domain") or {}).get("AoRs") or []:
            info = entry.get("Info") or {}
            if info.get("AoR") and any(_live(c.get("Contact") or {})
                                       for c in info.get("Contacts") or []):
                users.add(str(info["AoR"]).split("@", 1)[0])
    return users


def _live(contact: dict[str, Any]) -> bool:
    """Expires: seconds left, "permanent", or "expired" (not yet removed)."""
    expires = contact.get("Expires")
    return expires == "permanent" or (isinstance(expires, int) and expires > 0)


def _dialogs(result: Any) -> list[dict[str, Any]]:
    """dlg.* results: a list of dialogs, one dialog, or {} for none."""
    if isinstance(result, list):
        return [d for d in result if isinstance(d, dict) and d]
    if isinstance(result, dict) and result:
        return [result]
    return []


def _targets(result: Any) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = []
    for record in (result or {}).get("RECORDS", []):
        targets.extend(record.get("SET", {}).get("TARGETS", []))
    return targets


def _destination(dest: dict[str, Any]) -> dict[str, Any]:
    attrs = dest.get("ATTRS", {}) or {}
    return {
        "uri": dest.get("URI"),
        "duid": attrs.get("DUID"),
        "flags": dest.get("FLAGS"),
        "maxload": int(attrs.get("MAXLOAD", 0) or 0),
        "load": int((dest.get("RUNTIME") or {}).get("DLGLOAD", 0) or 0),
    }


class _ReplySocket:
    """A non-blocking unix datagram socket bound to a fresh temp path, removed on exit."""

    def __enter__(self) -> socket.socket:
        self._dir = tempfile.mkdtemp(prefix="ctirpc-")
        self._path = os.path.join(self._dir, "r")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._sock.bind(self._path)
        return self._sock

    def __exit__(self, *exc: object) -> None:
        self._sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self._path)
        with contextlib.suppress(OSError):
            os.rmdir(self._dir)

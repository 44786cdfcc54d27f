"""A tiny UDP SIP user agent for tests: build requests, parse replies, digest auth.

Blocking sockets with short timeouts on purpose: tests drive a separate Kamailio
process, so nothing on the test's event loop has to keep running meanwhile.
"""

from __future__ import annotations

import hashlib
import re
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

_COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
}


@dataclass
class SipMessage:
    start_line: str
    headers: list[tuple[str, str]]
    body: str = ""

    @classmethod
    def parse(cls, data: bytes) -> SipMessage:
        text = data.decode(errors="replace")
        head, _, body = text.partition("\r\n\r\n")
        lines = head.split("\r\n")
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and headers:  # folded continuation line
                name, value = headers[-1]
                headers[-1] = (name, value + " " + line.strip())
            elif ":" in line:
                name, value = line.split(":", 1)
                headers.append((name.strip(), value.strip()))
        return cls(lines[0], headers, body)

    @property
    def is_response(self) -> bool:
        return self.start_line.startswith("SIP/2.0 ")

    @property
    def status(self) -> int:
        return int(self.start_line.split()[1]) if self.is_response else 0

    @property
    def reason(self) -> str:
        return self.start_line.split(" ", 2)[2] if self.is_response else ""

    @property
    def method(self) -> str:
        if self.is_response:
            return self.cseq_method
        return self.start_line.split()[0]

    @property
    def request_uri(self) -> str:
        return "" if self.is_response else self.start_line.split()[1]

    def all(self, name: str) -> list[str]:
        """All values of a header (compact forms understood), comma lists not split."""
        wanted = _COMPACT.get(name.lower(), name.lower())
        return [v for n, v in self.headers if _COMPACT.get(n.lower(), n.lower()) == wanted]

    def get(self, name: str, default: str = "") -> str:
        values = self.all(name)
        return values[0] if values else default

    @property
    def call_id(self) -> str:
        return self.get("Call-ID")

    @property
    def cseq_method(self) -> str:
        return self.get("CSeq").split()[-1] if self.get("CSeq") else ""

    @property
    def to_tag(self) -> str:
        return header_param(self.get("To"), "tag")

    def __str__(self) -> str:
        head = "\r\n".join([self.start_line] + [f"{n}: {v}" for n, v in self.headers])
        return head + "\r\n\r\n" + self.body


def header_param(value: str, name: str) -> str:
    match = re.search(rf";\s*{re.escape(name)}=([^;>,\s]+)", value)
    return match.group(1) if match else ""


def uri_of(value: str) -> str:
    """The URI inside a name-addr (`"x" <sip:a@b>;tag=1` -> `sip:a@b`)."""
    match = re.search(r"<([^>]+)>", value)
    return match.group(1) if match else value.split(";")[0].strip()


def split_uris(values: list[str]) -> list[str]:
    """Record-Route style values (possibly comma lists) -> `<uri>` entries."""
    return re.findall(r"<[^>]+>", ",".join(values))


def parse_challenge(value: str) -> dict[str, str]:
    """`Digest realm="r", nonce="n", qop="auth"` -> {"realm": "r", ...}."""
    _, _, params = value.partition(" ")
    return {
        k.lower(): v1 or v2 for k, v1, v2 in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]+))', params)
    }


def digest_authorization(
    challenge: dict[str, str], method: str, uri: str, user: str, password: str, nc: int = 1
) -> str:
    """Digest credentials for `challenge` (MD5, with qop=auth when offered)."""

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    realm, nonce = challenge["realm"], challenge["nonce"]
    ha1 = md5(f"{user}:{realm}:{password}")
    ha2 = md5(f"{method}:{uri}")
    parts = [f'username="{user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    qops = [q.strip() for q in challenge.get("qop", "").split(",") if q.strip()]
    if "auth" in qops:
        cnonce, nc_text = uuid.uuid4().hex[:16], f"{nc:08x}"
        response = md5(f"{ha1}:{nonce}:{nc_text}:{cnonce}:auth:{ha2}")
        parts += ["qop=auth", f"nc={nc_text}", f'cnonce="{cnonce}"']
    else:
        response = md5(f"{ha1}:{nonce}:{ha2}")
    parts += [f'response="{response}"', "algorithm=MD5"]
    if "opaque" in challenge:
        parts.append(f'opaque="{challenge["opaque"]}"')
    return "Digest " + ", ".join(parts)


def new_branch() -> str:
    return "z9hG4bK" + uuid.uuid4().hex[:16]


def new_tag() -> str:
    return uuid.uuid4().hex[:10]


SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)


@dataclass
class Dialog:
    """UAC side of an INVITE: what ACK/BYE need."""

    call_id: str
    from_hdr: str
    to_hdr: str
    request_uri: str
    cseq: int
    branch: str
    route_set: list[str] = field(default_factory=list)
    remote_target: str = ""
    response: SipMessage | None = None


class SipUA:
    """One UDP socket speaking SIP to a proxy (the edge)."""

    def __init__(
        self,
        proxy: tuple[str, int],
        local: tuple[str, int] = ("127.0.0.1", 0),
        user: str = "test",
        answer_options: bool = True,
    ) -> None:
        self.proxy = proxy
        self.user = user
        self.answer_options = answer_options  # keep dispatcher pings happy when posing as a worker
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(local)
        self.host, self.port = self.sock.getsockname()
        self._backlog: list[SipMessage] = []

    # ---- plumbing ----

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> SipUA:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def contact(self) -> str:
        return f"<sip:{self.user}@{self.host}:{self.port}>"

    def via(self, branch: str) -> str:
        return f"SIP/2.0/UDP {self.host}:{self.port};branch={branch};rport"

    def send(self, data: str | bytes, to: tuple[str, int] | None = None) -> None:
        raw = data.encode() if isinstance(data, str) else data
        self.sock.sendto(raw, to or self.proxy)

    def recv(
        self, timeout: float = 2.0, match: Callable[[SipMessage], bool] | None = None
    ) -> SipMessage:
        """Next message satisfying `match`; others are kept for later calls."""
        for i, msg in enumerate(self._backlog):
            if match is None or match(msg):
                return self._backlog.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching SIP message on {self.host}:{self.port}")
            self.sock.settimeout(left)
            try:
                data, source = self.sock.recvfrom(65535)
            except TimeoutError as exc:  # socket.timeout is TimeoutError since 3.10
                raise TimeoutError(f"no matching SIP message on {self.host}:{self.port}") from exc
            msg = SipMessage.parse(data)
            if self.answer_options and msg.method == "OPTIONS" and not msg.is_response:
                self.send(self.response_to(msg, 200, "OK"), source)
                continue
            if match is None or match(msg):
                return msg
            self._backlog.append(msg)

    def final_response(self, call_id: str, method: str, timeout: float = 5.0) -> SipMessage:
        """Skip provisional replies; return the final reply for (call_id, method)."""

        def is_final(m: SipMessage) -> bool:
            return (
                m.is_response
                and m.call_id == call_id
                and m.cseq_method == method
                and m.status >= 200
            )

        return self.recv(timeout, is_final)

    def transact(self, raw: str, timeout: float = 5.0) -> SipMessage:
        """Send a raw request and wait for its final reply (matched by Call-ID and CSeq)."""
        msg = SipMessage.parse(raw.encode())
        self.send(raw)
        return self.final_response(msg.call_id, msg.cseq_method, timeout)

    # ---- building messages ----

    def request(
        self,
        method: str,
        ruri: str,
        *,
        call_id: str,
        cseq: int,
        from_hdr: str,
        to_hdr: str,
        branch: str | None = None,
        extra: list[str] | None = None,
        body: str = "",
    ) -> str:
        lines = [
            f"{method} {ruri} SIP/2.0",
            f"Via: {self.via(branch or new_branch())}",
            "Max-Forwards: 70",
            f"From: {from_hdr}",
            f"To: {to_hdr}",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: {self.contact}",
            *(extra or []),
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return "\r\n".join(lines) + "\r\n\r\n" + body

    def response_to(
        self, req: SipMessage, code: int, reason: str, to_tag: str | None = None
    ) -> str:
        to = req.get("To")
        if to_tag and "tag=" not in to:
            to += f";tag={to_tag}"
        lines = [f"SIP/2.0 {code} {reason}"]
        lines += [f"Via: {v}" for v in req.all("Via")]
        lines += [f"Record-Route: {v}" for v in req.all("Record-Route")]
        lines += [
            f"From: {req.get('From')}",
            f"To: {to}",
            f"Call-ID: {req.call_id}",
            f"CSeq: {req.get('CSeq')}",
        ]
        if code < 300 and req.method == "INVITE":
            lines.append(f"Contact: {self.contact}")
        lines.append("Content-Length: 0")
        return "\r\n".join(lines) + "\r\n\r\n"

    # ---- REGISTER ----

    def register(
        self, user: str, password: str, domain: str | None = None, expires: int = 600
    ) -> SipMessage:
        """REGISTER `user`, answering one 401/407 challenge with digest credentials."""
        domain = domain or f"{self.proxy[0]}:{self.proxy[1]}"
        self.user = user
        ruri = f"sip:{domain}"
        aor = f"<sip:{user}@{domain}>"
        call_id, tag = uuid.uuid4().hex, new_tag()

        def build(cseq: int, auth: list[str]) -> str:
            return self.request(
                "REGISTER", ruri, call_id=call_id, cseq=cseq, from_hdr=f"{aor};tag={tag}",
                to_hdr=aor, extra=[f"Expires: {expires}", *auth],
            )  # fmt: skip

        reply = self.transact(build(1, []))
        if reply.status not in (401, 407):
            return reply
        header = "WWW-Authenticate" if reply.status == 401 else "Proxy-Authenticate"
        auth_name = "Authorization" if reply.status == 401 else "Proxy-Authorization"
        challenge = parse_challenge(reply.get(header))
        creds = digest_authorization(challenge, "REGISTER", ruri, user, password)
        return self.transact(build(2, [f"{auth_name}: {creds}"]))

    # ---- INVITE / ACK / BYE (UAC) ----

    def send_invite(self, ruri: str, from_user: str | None = None, body: str = SDP) -> Dialog:
        """Send an INVITE through the proxy; replies are read with wait_invite()."""
        call_id, branch = uuid.uuid4().hex, new_branch()
        from_hdr = f"<sip:{from_user or self.user}@{self.host}:{self.port}>;tag={new_tag()}"
        to_hdr = f"<{ruri}>"
        raw = self.request(
            "INVITE", ruri, call_id=call_id, cseq=1, from_hdr=from_hdr, to_hdr=to_hdr,
            branch=branch, body=body,
        )  # fmt: skip
        self.send(raw)
        return Dialog(call_id, from_hdr, to_hdr, ruri, 1, branch)

    def wait_invite(self, dialog: Dialog, timeout: float = 5.0) -> SipMessage:
        """Final reply to the INVITE; ACKs it (2xx end to end, others hop by hop)."""
        reply = self.final_response(dialog.call_id, "INVITE", timeout)
        dialog.response = reply
        dialog.to_hdr = reply.get("To")
        if 200 <= reply.status < 300:
            dialog.route_set = list(reversed(split_uris(reply.all("Record-Route"))))
            dialog.remote_target = uri_of(reply.get("Contact"))
            self.send(self._in_dialog("ACK", dialog, dialog.cseq))
        else:
            self.send(self._ack_non2xx(dialog))
        return reply

    def send_cancel(self, dialog: Dialog) -> None:
        """CANCEL a pending INVITE (same R-URI, branch and CSeq number as the INVITE)."""
        to_hdr = dialog.to_hdr.split(";tag=")[0]
        self.send(
            self.request(
                "CANCEL", dialog.request_uri, call_id=dialog.call_id, cseq=dialog.cseq,
                from_hdr=dialog.from_hdr, to_hdr=to_hdr, branch=dialog.branch,
            )
        )  # fmt: skip

    def send_bye(self, dialog: Dialog) -> None:
        """Send a BYE along the dialog's route set without waiting for the reply."""
        dialog.cseq += 1
        self.send(self._in_dialog("BYE", dialog, dialog.cseq))

    def bye(self, dialog: Dialog, timeout: float = 5.0) -> SipMessage:
        self.send_bye(dialog)
        return self.final_response(dialog.call_id, "BYE", timeout)

    def _in_dialog(self, method: str, dialog: Dialog, cseq: int) -> str:
        routes = [f"Route: {r}" for r in dialog.route_set]
        return self.request(
            method, dialog.remote_target, call_id=dialog.call_id, cseq=cseq,
            from_hdr=dialog.from_hdr, to_hdr=dialog.to_hdr, extra=routes,
        )  # fmt: skip

    def _ack_non2xx(self, dialog: Dialog) -> str:
        # Same branch and R-URI as the INVITE: it belongs to the INVITE transaction.
        return self.request(
            "ACK", dialog.request_uri, call_id=dialog.call_id, cseq=dialog.cseq,
            from_hdr=dialog.from_hdr, to_hdr=dialog.to_hdr, branch=dialog.branch,
        )  # fmt: skip

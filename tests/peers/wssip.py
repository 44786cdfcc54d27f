"""SIP over WebSocket for tests (RFC 7118): what a browser phone sends, without a
browser. One connection, one request at a time, digest answered once."""

from __future__ import annotations

import asyncio
import uuid
from ssl import SSLContext
from typing import Any

import websockets

from tests.peers.rawsip import (
    SipMessage,
    digest_authorization,
    new_branch,
    new_tag,
    parse_challenge,
)


class WsSip:
    """A WebSocket SIP client; ``origin`` is the page it pretends to be."""

    def __init__(self, url: str, origin: str, ssl: SSLContext | None = None) -> None:
        """``ssl``: for a wss:// URL, the context that trusts the edge's certificate."""
        self.url = url
        self.origin = origin
        self.ssl = ssl
        self.ws: Any = None
        self.host = f"{uuid.uuid4().hex[:10]}.invalid"  # as browsers do
        self.via = "WSS" if url.startswith("wss:") else "WS"  # (JsSIP's Via)

    async def __aenter__(self) -> WsSip:
        extra = {"ssl": self.ssl} if self.ssl is not None else {}
        self.ws = await websockets.connect(self.url, subprotocols=["sip"],  # type: ignore[list-item]
                                           origin=self.origin, **extra)  # type: ignore[arg-type]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()

    async def transact(self, raw: str, timeout: float = 5.0) -> SipMessage:
        sent = SipMessage.parse(raw.encode())
        await self.ws.send(raw)

        async def final() -> SipMessage:
            while True:
                data = await self.ws.recv()
                msg = SipMessage.parse(data.encode() if isinstance(data, str) else data)
                if msg.is_response and msg.call_id == sent.call_id and msg.status >= 200:
                    return msg

        return await asyncio.wait_for(final(), timeout)

    async def register(self, aor_user: str, domain: str, auth_user: str, password: str,
                       expires: int = 600) -> SipMessage:
        """REGISTER sip:<aor_user>@<domain>; the final reply after one challenge."""
        ruri, aor = f"sip:{domain}", f"<sip:{aor_user}@{domain}>"
        call_id, tag = uuid.uuid4().hex, new_tag()
        contact = f"<sip:{uuid.uuid4().hex[:8]}@{self.host};transport=ws>"

        def build(cseq: int, auth: list[str]) -> str:
            lines = [f"REGISTER {ruri} SIP/2.0",
                     f"Via: SIP/2.0/{self.via} {self.host};branch={new_branch()}",
                     "Max-Forwards: 70", f"From: {aor};tag={tag}", f"To: {aor}",
                     f"Call-ID: {call_id}", f"CSeq: {cseq} REGISTER",
                     f"Contact: {contact};expires={expires}", f"Expires: {expires}",
                     *auth, "Content-Length: 0"]
            return "\r\n".join(lines) + "\r\n\r\n"

        reply = await self.transact(build(1, []))
        if reply.status != 401:
            return reply
        challenge = parse_challenge(reply.get("WWW-Authenticate"))
        creds = digest_authorization(challenge, "REGISTER", ruri, auth_user, password)
        return await self.transact(build(2, [f"Authorization: {creds}"]))

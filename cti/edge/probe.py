"""Is the edge serving SIP? A process can be alive and answer nothing (stopped,
stuck, its SIP children gone): only an answer to a SIP request on its port says so.

The probe is one OPTIONS over UDP to the edge's own address; the edge answers
OPTIONS for itself with 200 (cti/edge/kamailio.cfg.tmpl)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

#: Seconds between probes, and how many unanswered in a row mean "not serving".
PROBE_INTERVAL_S = 2.0
PROBE_TIMEOUT_S = 1.0
MISSES_BEFORE_RESTART = 3


def options_request(host: str, port: int, local_port: int, call_id: str,
                    secret: str = "") -> bytes:
    branch = "z9hG4bK" + uuid.uuid4().hex
    # With the edge's secret the edge answers before its flood guard: a caller
    # (or a carrier) sending from the controller's own address must not get the
    # probe blocked and the edge killed as hung (seen: pike blocked 127.0.0.1 at
    # 90 calls/s from SIPp, and the probe with it).
    proof = f"X-CTI-Probe: {secret}\r\n" if secret else ""
    return (
        f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{local_port};branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@{host}>;tag={uuid.uuid4().hex[:10]}\r\n"
        f"To: <sip:{host}:{port}>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "User-Agent: cti-edge-probe\r\n"
        f"{proof}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class _Answer(asyncio.DatagramProtocol):
    def __init__(self, call_id: str) -> None:
        self.call_id = call_id.encode()
        self.answered: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data.startswith(b"SIP/2.0 ") and self.call_id in data and not self.answered.done():
            self.answered.set_result(data.split(b"\r\n", 1)[0])


async def sip_answers(host: str, port: int, timeout: float = PROBE_TIMEOUT_S,
                      secret: str = "") -> bool:
    """True when a SIP server on host:port (UDP) answers an OPTIONS within `timeout`."""
    loop = asyncio.get_running_loop()
    call_id = f"probe-{uuid.uuid4().hex}"
    transport, proto = await loop.create_datagram_endpoint(
        lambda: _Answer(call_id), local_addr=(host, 0))
    try:
        local_port = transport.get_extra_info("sockname")[1]
        transport.sendto(options_request(host, port, local_port, call_id, secret), (host, port))
        try:
            await asyncio.wait_for(asyncio.shield(proto.answered), timeout)
        except TimeoutError:
            return False
        return True
    finally:
        transport.close()


class EdgeLiveness:
    """Counts unanswered probes in a row; what /health and the supervisor read."""

    def __init__(self) -> None:
        self.misses = 0
        self.last_answer: float | None = None

    @property
    def answering(self) -> bool:
        return self.misses == 0

    @property
    def hung(self) -> bool:
        return self.misses >= MISSES_BEFORE_RESTART

    def answered(self, ok: bool) -> None:
        if ok:
            self.misses = 0
            self.last_answer = time.time()
        else:
            self.misses += 1

    def reset(self) -> None:
        """A new edge process starts with a clean record."""
        self.misses = 0


async def probe_once(ip: str, port: int, secret: str = "") -> bool:
    """One probe of an edge listening on ip:port (a wildcard address is probed on
    loopback); a local socket error counts as no answer."""
    host = "127.0.0.1" if ip in ("", "0.0.0.0") else ip
    with contextlib.suppress(OSError):
        return await sip_answers(host, port, secret=secret)
    return False

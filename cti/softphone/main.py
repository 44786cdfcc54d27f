"""`cti softphone`: command line of the terminal softphone.

    cti softphone --server http://127.0.0.1:8080 --sip 127.0.0.1:5060 --user sofia \
        [--password-file FILE] [--ip 127.0.0.1] [--sip-port 0] [--record-dir DIR]

The password (one for SIP digest and the API) comes from the file's first
line or is asked for. Logs go to files (the terminal belongs to the UI).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import tempfile
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options (also used by `cti softphone`'s subparser in cti/cli.py)."""
    p.add_argument("--server", required=True, help="API base URL, e.g. http://127.0.0.1:8080")
    p.add_argument("--sip", required=True, help="the SIP edge, host:port (e.g. 127.0.0.1:5060)")
    p.add_argument("--user", required=True, help="advisor name (SIP user and API login)")
    p.add_argument("--password-file", type=Path,
                   help="file whose first line is the password (else it is asked for)")
    p.add_argument("--ip", default="127.0.0.1", help="local address for SIP and RTP")
    p.add_argument("--sip-port", type=int, default=0, help="local SIP port (default: free)")
    p.add_argument("--rtp-port", type=int, default=0, help="first local RTP port (default: free)")
    p.add_argument("--transport", choices=("udp", "tcp"), default="udp")
    p.add_argument("--record-dir", type=Path, help="record what you hear, a WAV per call")
    p.add_argument("--log-dir", type=Path, help="log files (default: a temporary directory)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cti softphone",
                                description="terminal softphone for advisors")
    add_arguments(p)
    return p


def read_password(path: Path | None, user: str) -> str:
    if path is not None:
        lines = path.read_text().splitlines()
        if not lines or not lines[0].strip():
            raise SystemExit(f"cti softphone: {path}: empty password file")
        return lines[0].strip()
    return getpass.getpass(f"password for {user}: ")


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    # textual is imported only when the softphone runs, not by every `cti` command
    from cti.softphone.app import SoftphoneApp
    from cti.softphone.client import SoftphoneClient, SoftphoneConfig

    password = read_password(args.password_file, args.user)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix=f"cti-softphone-{args.user}-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=log_dir / "softphone.log", level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    cfg = SoftphoneConfig(server=args.server, sip=args.sip, user=args.user, password=password,
                          log_dir=log_dir, ip=args.ip, sip_port=args.sip_port,
                          rtp_port=args.rtp_port, transport=args.transport,
                          record_dir=args.record_dir)

    async def serve() -> None:
        client = SoftphoneClient(cfg)
        try:
            await SoftphoneApp(client).run_async()
        finally:
            await client.aclose()  # the phone child goes even if the UI crashed

    asyncio.run(serve())
    print(f"cti softphone: logs in {log_dir}")
    return 0

"""Media worker: the engine driven by the controller over a unix socket.

    python -X faulthandler -m cti.media.worker --id w1 --controller /abs/ctl.sock \
        --ip 127.0.0.1 --sip-port 5071 --rtp-port 20000 [--rtp-range 40] \
        [--outbound-proxy sip:127.0.0.1:5060]

Behind the edge, the environment variable CTI_EDGE_SECRET holds the value of the
X-CTI-Edge header the edge adds to the INVITEs it relays: INVITEs without it get
403 (an environment variable rather than an option: argv is visible to anyone).

The controller listens; the worker connects, sends ``ready`` and then runs
commands until the socket closes, a ``shutdown`` command or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys

from cti.media import protocol as P
from cti.media.engine import Engine, EngineConfig
from cti.media.runner import (
    LineSink,
    add_engine_options,
    install_signal_handlers,
    setup_logging,
    start_reader,
)

log = logging.getLogger("cti.media")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cti.media.worker", description=__doc__.split("\n")[0])
    parser.add_argument("--id", required=True, help="worker id (logs, ready event)")
    parser.add_argument("--controller", required=True, help="controller unix socket path")
    parser.add_argument("--outbound-proxy", default="",
                        help="route every dialled call through this SIP proxy (the edge)")
    parser.add_argument("--rtp-timeout", type=float, default=0.0,
                        help="hang up a call that received no RTP for this many seconds "
                             "(default 0: off; calls on hold are exempt)")
    parser.add_argument("--session-expires", type=int, default=0,
                        help="RFC 4028 session timer interval in seconds on every call "
                             "(default 0: off)")
    add_engine_options(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.id, args.log_level)
    # PJSIP's console log writes to stdout: make every log land on stderr.
    sys.stdout.flush()
    os.dup2(2, 1)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(args.controller)
    except OSError as exc:
        log.error("cannot connect to controller %s: %s", args.controller, exc)
        return 2
    cfg = EngineConfig(ident=args.id, ip=args.ip, sip_port=args.sip_port, rtp_port=args.rtp_port,
                       rtp_range=args.rtp_range, user=args.id, pj_log_level=args.pj_log_level,
                       snd_auto_close_s=1, paced=True, edge_secret=os.environ.get(P.EDGE_SECRET_ENV, ""),
                       outbound_proxy=args.outbound_proxy, rtp_timeout_s=args.rtp_timeout,
                       session_expires_s=args.session_expires)
    if not cfg.edge_secret:
        log.warning("%s not set: INVITEs from anyone are taken", P.EDGE_SECRET_ENV)
    engine: Engine | None = None

    def on_broken() -> None:  # the socket is gone: stop once the engine exists
        if engine is not None:
            engine.request_shutdown()

    sink = LineSink(sock.sendall, on_broken=on_broken)
    engine = Engine(cfg, sink)
    install_signal_handlers(engine)
    try:
        engine.start()
    except Exception as exc:
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        log.exception("engine start failed: %s", reason)
        sink(P.event(P.EV_ERROR, message=f"engine start failed: {exc}"))
        return 1
    engine.ready_event()
    start_reader(sock.makefile("rb"), engine, sink)
    rc = engine.run()
    sock.close()
    return rc


if __name__ == "__main__":
    sys.exit(main())

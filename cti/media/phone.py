"""Headless scriptable SIP phone: the media engine on stdin/stdout.

    python -X faulthandler -m cti.media.phone --ip 127.0.0.1 --sip-port P \
        --rtp-port R [--rtp-range 40] [--name sofia]

Commands are JSON lines on stdin, events JSON lines on stdout (protocol
only: every log, PJSIP's included, goes to stderr). EOF on stdin = shutdown.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from cti.media import protocol as P
from cti.media.engine import Engine, EngineConfig
from cti.media.runner import (
    LineSink,
    add_engine_options,
    install_signal_handlers,
    setup_logging,
    start_reader,
    write_all_fd,
)

log = logging.getLogger("cti.media")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cti.media.phone", description=__doc__.split("\n")[0])
    parser.add_argument("--name", default="phone", help="phone name (SIP user part, logs)")
    parser.add_argument("--tls-ca", default="",
                        help="CA certificate (PEM) to check a TLS registrar against; "
                             "turns on the TLS transport (register with transport tls)")
    parser.add_argument("--sound", action="store_true",
                        help="use the machine's sound card when there is one (cti softphone)")
    parser.add_argument("--paced", action="store_true",
                        help="clock the bridge from the main thread as a media worker does "
                             "(cti/media/pacing.py); no sound device")
    add_engine_options(parser)
    return parser.parse_args(argv)


def protocol_stdout() -> int:
    """Keep fd 1 for protocol lines only: anything else printing to stdout
    (PJSIP's console log writes with printf) is sent to stderr instead."""
    sys.stdout.flush()
    out = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.name, args.log_level)
    out_fd = protocol_stdout()
    cfg = EngineConfig(ident=args.name, ip=args.ip, sip_port=args.sip_port, rtp_port=args.rtp_port,
                       rtp_range=args.rtp_range, user=args.name, pj_log_level=args.pj_log_level,
                       tls_ca_file=args.tls_ca, sound_device=args.sound, paced=args.paced)
    engine: Engine | None = None

    def on_broken() -> None:  # the socket is gone: stop once the engine exists
        if engine is not None:
            engine.request_shutdown()

    sink = LineSink(write_all_fd(out_fd), on_broken=on_broken)
    engine = Engine(cfg, sink)
    install_signal_handlers(engine)
    try:
        engine.start()
    except Exception as exc:
        log.exception("engine start failed")
        sink(P.event(P.EV_ERROR, message=f"engine start failed: {exc}"))
        return 1
    engine.ready_event()
    start_reader(sys.stdin.buffer, engine, sink)
    return engine.run()


if __name__ == "__main__":
    sys.exit(main())

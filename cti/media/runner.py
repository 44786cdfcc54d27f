"""What the worker and phone entry points share: options, logging, the line
channel, the command reader thread and signal handling."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from cti.media import protocol as P

log = logging.getLogger("cti.media")


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ip", required=True, help="IP address to bind SIP and RTP to")
    parser.add_argument("--sip-port", type=int, required=True, help="SIP port (UDP and TCP)")
    parser.add_argument("--rtp-port", type=int, required=True, help="first RTP port")
    parser.add_argument("--rtp-range", type=int, default=40, help="number of RTP ports (default 40)")
    parser.add_argument("--pj-log-level", type=int, default=1,
                        help="PJSIP log level to stderr (0-6, default 1: errors)")
    parser.add_argument("--log-level", default="INFO", help="engine log level (default INFO)")


def setup_logging(ident: str, level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, level.upper(), logging.INFO),
        format=f"%(asctime)s %(levelname)s worker={ident} pid={os.getpid()} %(name)s: %(message)s",
    )


class LineSink:
    """Writes protocol lines to a file descriptor, one lock for all threads."""

    def __init__(self, write: Callable[[bytes], None], on_broken: Callable[[], None]) -> None:
        self._write = write
        self._on_broken = on_broken
        self._lock = threading.Lock()
        self._broken = False

    def __call__(self, msg: dict[str, Any]) -> None:
        data = P.encode(msg)
        with self._lock:
            if self._broken:
                return
            try:
                self._write(data)
            except OSError as exc:
                self._broken = True
                log.warning("event channel broken: %s", exc)
                self._on_broken()


def write_all_fd(fd: int) -> Callable[[bytes], None]:
    def write(data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    return write


def start_reader(lines: Iterable[bytes], engine: Any, emit: Callable[[dict[str, Any]], None]) -> None:
    """Plain thread: read command lines, queue them, ring the doorbell. Never touches pjsua2."""

    def run() -> None:
        try:
            for line in lines:
                if not line.strip():
                    continue
                try:
                    msg = P.decode(line)
                except P.ProtocolError as exc:
                    log.warning("bad command line: %s", exc)
                    emit(P.event(P.EV_ERROR, message=f"bad command line: {exc}"))
                    continue
                engine.submit(msg)
        except (OSError, ValueError) as exc:
            log.warning("command channel failed: %s", exc)
        log.info("command channel closed: shutting down")
        engine.request_shutdown()

    threading.Thread(target=run, name="cmd-reader", daemon=True).start()


def install_signal_handlers(engine: Any) -> None:
    """SIGTERM/SIGINT -> clean shutdown.

    The main thread sits in libHandleEvents (C code), where a Python signal
    handler would not run until the next wake-up (up to 5 s). The C-level
    handler writes to the wakeup fd at once; a small thread turns that into a
    shutdown request + doorbell.
    """
    rfd, wfd = os.pipe()
    os.set_blocking(wfd, False)
    signal.set_wakeup_fd(wfd)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)  # the work is done by the watcher thread

    def watch() -> None:
        while True:
            data = os.read(rfd, 64)
            if not data:
                return
            log.info("signal %s received: shutting down", list(data))
            engine.request_shutdown()

    threading.Thread(target=watch, name="signal-watch", daemon=True).start()

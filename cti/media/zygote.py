"""The zygote: a warm parent that forks media workers (issue 15, memory per worker).

    python -X faulthandler -m cti.media.zygote     (started by cti.controller.zygote)

It imports pjsua2 and the worker's modules once, freezes its heap, and then forks
one worker per request: every worker shares the wheel's pages and the Python heap
copy-on-write instead of loading its own (PSS per worker about halves). The pjsua2
Endpoint is created only in the child, after the fork (PJSIP's threads, sockets and
pools must never exist in the zygote: a fork copies none of the threads).

The protocol is JSON lines, requests on stdin, replies and reports on stdout:

    -> {"cmd": "fork", "id": 7, "worker": "w1", "argv": [...], "log": "/run/worker-w1.log",
        "env": {"CTI_EDGE_SECRET": "..."}}
    <- {"event": "forked", "id": 7, "worker": "w1", "pid": 1234}   (or "error": "...")
    <- {"event": "exited", "pid": 1234, "code": -9}                 (a child ended)
    <- {"event": "ready", "pid": 1200}                              (once, at start)

The zygote stays single-threaded (no thread survives a fork): one select loop over
stdin and the SIGCHLD wakeup pipe. When stdin closes (the controller stopped or
died) it ends its workers and exits; each worker also dies with the zygote
(PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import gc
import json
import os
import select
import signal
import sys
import traceback
from typing import Any

_PR_SET_PDEATHSIG = 1


def _send(msg: dict[str, Any]) -> None:
    data = json.dumps(msg).encode() + b"\n"
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]


def _child(req: dict[str, Any], zygote_pid: int, wake_fds: tuple[int, int]) -> int:
    """In the forked child: become a worker process and run the worker."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for fd in wake_fds:
        os.close(fd)
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != zygote_pid:
        return 1  # the zygote died between fork and prctl
    os.setpgrp()  # its own group: the controller's kill -9 of the group spares the zygote
    log_fd = os.open(req["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_fd, 0)  # the zygote's request pipe: never read by a worker
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    os.close(null_fd)
    faulthandler.enable(sys.stderr)
    os.environ.update(req.get("env") or {})
    from cti.media import worker

    return worker.main(list(req["argv"]))


def _fork(req: dict[str, Any], wake_fds: tuple[int, int]) -> int | None:
    """Fork one worker; reply with its pid (or the error); the pid, None on failure."""
    reply: dict[str, Any] = {"event": "forked", "id": req.get("id"), "worker": req.get("worker")}
    try:
        if not isinstance(req.get("argv"), list) or not isinstance(req.get("log"), str):
            raise ValueError("fork needs argv (a list) and log (a path)")
        zygote_pid = os.getpid()
        pid = os.fork()
    except (OSError, ValueError) as exc:
        _send({**reply, "error": f"{type(exc).__name__}: {exc}"})
        return None
    if pid == 0:
        code = 1
        try:
            code = _child(req, zygote_pid, wake_fds)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    # Sent before this loop can reap the child: "forked" always precedes its "exited".
    _send({**reply, "pid": pid})
    return pid


def _reap(children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        _send({"event": "exited", "pid": pid, "code": os.waitstatus_to_exitcode(status)})


def _handle(line: bytes, wake_fds: tuple[int, int]) -> int | None:
    try:
        req = json.loads(line)
        if not isinstance(req, dict) or req.get("cmd") != "fork":
            raise ValueError(f"unknown request {line[:200]!r}")
    except ValueError as exc:
        print(f"zygote: bad request: {exc}", file=sys.stderr, flush=True)
        _send({"event": "error", "message": str(exc)})
        return None
    return _fork(req, wake_fds)


def _preload() -> None:
    """Import what every worker runs (pjsua2 and the engine), then freeze the heap:
    the cyclic GC never touches these objects again, so their pages stay shared."""
    from cti.media import worker  # noqa: F401  (pulls in pjsua2 and the engine)

    gc.collect()
    gc.freeze()


def serve() -> int:
    _preload()
    rfd, wfd = os.pipe()
    for fd in (rfd, wfd):
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(wfd)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # the wakeup fd does the work
    children: set[int] = set()
    buf = b""
    _send({"event": "ready", "pid": os.getpid()})
    while True:
        readable, _, _ = select.select([0, rfd], [], [])
        if rfd in readable:
            while True:  # drain the wakeup pipe (non-blocking)
                try:
                    if not os.read(rfd, 4096):
                        break
                except BlockingIOError:
                    break
        _reap(children)
        if 0 not in readable:
            continue
        chunk = os.read(0, 65536)
        if not chunk:
            break
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            pid = _handle(line, (rfd, wfd)) if line.strip() else None
            if pid is not None:
                children.add(pid)
    for pid in children:  # the controller is gone or stopping: no worker outlives us
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    return 0


if __name__ == "__main__":
    sys.exit(serve())

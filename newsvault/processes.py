"""How the crawl's sidecar process starts, runs and stops (pipelines/sidecar.py)."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
from collections.abc import Callable
from multiprocessing import reduction
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from newsvault.redact import redact_handlers

# Added to the sidecar's nice value: when every core is busy, the crawl's own
# process, which feeds it, gets the CPU first (a sidecar that falls behind
# only fills its pipe, which then slows the crawl down by itself).
WORKER_NICENESS = 10
# How much the sidecar's pipe can hold before the crawl's send waits: a few
# hundred pages, so a sidecar that is briefly descheduled does not stall it.
PIPE_BUFFER_BYTES = 4 * 1024 * 1024
# How long a closed sidecar gets to exit before it is killed.
EXIT_TIMEOUT_SECONDS = 30.0


def start_worker(target: Callable[..., None], args: tuple[Any, ...], name: str) -> tuple[Connection, BaseProcess]:
    """Start ``target(conn, *args)`` in a child process; our end of its pipe and the process.

    spawn, not fork: the crawl's process has threads, and fork would copy
    their locks. Our end of the pipe gets a large send buffer.
    """
    context = multiprocessing.get_context("spawn")
    conn, child_conn = context.Pipe()
    _widen_send_buffer(conn)
    process = context.Process(target=target, args=(child_conn, *args), name=name, daemon=True)
    process.start()
    child_conn.close()
    return conn, process


def stop_worker(conn: Connection, process: BaseProcess) -> None:
    """Close our end of the pipe (the worker reads EOF) and wait for it; kill it if it hangs."""
    conn.close()
    process.join(timeout=EXIT_TIMEOUT_SECONDS)
    if process.is_alive():
        process.kill()
        process.join()


def become_worker(name: str) -> None:
    """Called first thing in a worker process: its log format, a lower priority, Ctrl-C left to the crawl.

    Ctrl-C in a terminal reaches the whole process group. The crawl shuts
    down gracefully and then closes its workers; a worker that died of the
    same signal would take the last items and records with it. SIGTERM
    keeps its default: it is how multiprocessing stops a worker the crawl
    could not close (and a worker stopped that way leaves a ``.partial``
    staging dir, which the next push salvages).
    """
    logging.basicConfig(level=logging.WARNING, format=f"%(asctime)s [{name}] %(levelname)s: %(message)s")
    redact_handlers()
    # Not allowed here: the worker runs at the crawl's priority.
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class InheritedFd:
    """A file descriptor handed to a spawned child, the way multiprocessing hands over pipe ends.

    The sidecar gets the staging dir's lock this way, so the lock is held
    until the child has closed the snapshot's files.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> tuple[Any, ...]:
        return (_inherited_fd, (reduction.DupFd(self.fd),))


def _inherited_fd(dup: Any) -> int:
    return int(dup.detach())


def _widen_send_buffer(conn: Connection) -> None:
    """Raise the socket send buffer of our end of a duplex Pipe (best effort: the kernel caps it)."""
    with contextlib.suppress(OSError):
        sock = socket.socket(fileno=os.dup(conn.fileno()))
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, PIPE_BUFFER_BYTES)
        finally:
            sock.close()

"""What the crawl's worker processes (item stages, snapshot writer) share: how they start and run."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext

# Added to the workers' nice value: when every core is busy, the crawl's own
# process, which feeds them, gets the CPU first (a worker that falls behind
# only fills its pipe, which then slows the crawl down by itself).
WORKER_NICENESS = 10


def spawn_context() -> SpawnContext:
    """spawn, not fork: the crawl's process has threads, and fork would copy their locks."""
    return multiprocessing.get_context("spawn")


def become_worker() -> None:
    """Called first thing in a worker process: lower priority, and leave Ctrl-C to the crawl.

    Ctrl-C in a terminal reaches the whole process group. The crawl shuts
    down gracefully and then closes its workers; a worker that died of the
    same signal would take the last items and records with it. SIGTERM
    keeps its default: it is how multiprocessing stops a worker the crawl
    could not close (and a worker stopped that way leaves a ``.partial``
    staging dir, which the next push salvages).
    """
    # Not allowed here: the worker runs at the crawl's priority.
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# How much a worker's pipe can hold before the crawl's send waits: a few
# hundred pages, so a worker that is briefly descheduled does not stall it.
PIPE_BUFFER_BYTES = 4 * 1024 * 1024


def widen_send_buffer(conn: Connection) -> None:
    """Raise the socket send buffer of our end of a duplex Pipe (best effort: the kernel caps it)."""
    with contextlib.suppress(OSError):
        sock = socket.socket(fileno=os.dup(conn.fileno()))
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, PIPE_BUFFER_BYTES)
        finally:
            sock.close()

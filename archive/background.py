"""A single worker thread that runs file jobs (compress, write, close) in the order they were submitted.

Compressing the WARC is the largest cost newsvault adds to a crawl, and zlib
and file writes release the GIL: done on this thread they use a second core
while the crawl's own thread goes on parsing. Order is kept (one thread, one
FIFO queue), the queue is bounded (a slow disk slows the crawl down instead of
filling memory), and a failed job is never lost: every later ``submit`` and
the final ``close`` raise it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from newsvault.errors import NewsvaultError

log = logging.getLogger(__name__)

Job = Callable[[], None]
# Enough to smooth bursts (a page is ~50 KB before compression), small enough
# that a killed crawl loses at most a moment of pages it had not yet written.
DEFAULT_MAX_PENDING = 32
_STOP = object()


class BackgroundWriteError(NewsvaultError, OSError):
    """A job of the background writer failed; the files it wrote to are incomplete."""


class OrderedWorker:
    """Runs submitted jobs one by one on a daemon thread."""

    def __init__(self, name: str, *, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        self._jobs: queue.Queue[object] = queue.Queue(maxsize=max_pending)
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is _STOP:
                    return
                if self._error is None:
                    job()  # type: ignore[operator]
            except BaseException as exc:  # noqa: BLE001 - kept and raised on the submitting thread
                log.error("background write failed: %s", exc)
                self._error = exc
            finally:
                self._jobs.task_done()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise BackgroundWriteError(f"an earlier write failed: {self._error}") from self._error

    def submit(self, job: Job) -> None:
        """Queue ``job`` (blocks while the queue is full); raises if an earlier job failed."""
        if self._closed:
            raise RuntimeError("worker is closed")
        self._raise_if_failed()
        self._jobs.put(job)

    def drain(self) -> None:
        """Wait until every submitted job has run; raise the first failure."""
        self._jobs.join()
        self._raise_if_failed()

    def close(self) -> None:
        """Run what is queued, stop the thread, raise the first failure (once)."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(_STOP)
        self._thread.join()
        self._raise_if_failed()

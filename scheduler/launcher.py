"""Start one crawl as a child process, with a timeout and its own log file.

A crawl runs in a child process (``python -m scheduler.child crawl ...``) because
Twisted's reactor cannot restart and one bad crawl must not take the daemon
down. The launcher keeps a registry of the children it started so the daemon
can wait for them, then stop them, on shutdown. The child arranges by itself to
get SIGTERM if the daemon dies (see :mod:`scheduler.child`).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scheduler.child import PARENT_DEATH_SIGNAL_ENV, PARENT_PID_ENV

log = logging.getLogger(__name__)

# How long a child gets between SIGTERM and SIGKILL.
KILL_GRACE_SECONDS = 10.0
# Logs (and summaries) kept per (site, kind).
KEEP_LOGS = 50


@dataclass
class CrawlOptions:
    """What every child crawl gets from the daemon's own command line."""

    config_file: str | None = None
    state_dir: str | None = None
    archive_url: str | None = None

    def argv(self) -> list[str]:
        args: list[str] = []
        if self.config_file:
            args += ["--config", self.config_file]
        if self.state_dir:
            args += ["--state-dir", self.state_dir]
        if self.archive_url:
            args += ["--archive", self.archive_url]
        return args


@dataclass
class LaunchResult:
    """How a child crawl ended."""

    returncode: int | None
    timed_out: bool
    terminated: bool  # stopped by the daemon (shutdown) rather than by itself
    summary: dict[str, Any] | None
    log_path: Path
    duration_seconds: float


def crawl_command(
    site: str,
    kind: str,
    *,
    summary_path: str | Path,
    options: CrawlOptions,
    start_urls: Sequence[str] = (),
    snapshot_id: str | None = None,
) -> list[str]:
    cmd = [sys.executable, "-m", "scheduler.child", "crawl", site, "--kind", kind,
           "--json-summary", str(summary_path), *options.argv()]
    if snapshot_id:
        cmd += ["--snapshot-id", snapshot_id]
    for url in start_urls:
        cmd += ["--start-url", url]
    return cmd


class Launcher:
    """Starts child crawls and remembers them until they end."""

    def __init__(self, kill_grace_seconds: float = KILL_GRACE_SECONDS, *, kill_with_parent: bool = False) -> None:
        self.kill_grace_seconds = kill_grace_seconds
        # A cluster's crawls die at once with their daemon (see scheduler/child.py); others stop gracefully.
        self.kill_with_parent = kill_with_parent
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._stopped: set[int] = set()
        self._lock = threading.Lock()
        self._accepting = True

    @property
    def accepting(self) -> bool:
        return self._accepting

    def stop_accepting(self) -> None:
        """No new child from now on. Returns only once no start is half done (see run)."""
        with self._lock:
            self._accepting = False

    def running(self) -> int:
        with self._lock:
            return len(self._children)

    def run(
        self,
        cmd: list[str],
        *,
        log_path: Path,
        summary_path: Path,
        timeout: float,
        pass_fds: Sequence[int] = (),
    ) -> LaunchResult:
        """Run ``cmd`` to completion (or timeout) with output to ``log_path``."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        env = dict(os.environ)
        env[PARENT_PID_ENV] = str(os.getpid())
        env[PARENT_DEATH_SIGNAL_ENV] = "KILL" if self.kill_with_parent else "TERM"
        # One lock over the check, the start and the registration, also taken by
        # stop_accepting/stop_all: a child is either registered before shutdown
        # looks (so it is waited for and stopped) or never started at all.
        with self._lock:
            if not self._accepting:
                # Shutdown began between the job's own check and here: do not start a crawl.
                return LaunchResult(returncode=None, timed_out=False, terminated=True, summary=None,
                                    log_path=log_path, duration_seconds=0.0)
            with open(log_path, "ab") as log_file:
                log_file.write(("$ " + " ".join(cmd) + "\n").encode())
                log_file.flush()
                proc = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                    pass_fds=tuple(pass_fds), env=env, start_new_session=True,
                )
            self._children[proc.pid] = proc
        timed_out = False
        try:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                log.warning("crawl pid %s timed out after %ss; stopping it", proc.pid, timeout)
                self._stop(proc)
        finally:
            with self._lock:
                self._children.pop(proc.pid, None)
                terminated = proc.pid in self._stopped
                self._stopped.discard(proc.pid)
        return LaunchResult(
            returncode=proc.returncode,
            timed_out=timed_out,
            terminated=terminated and not timed_out,
            summary=_read_summary(summary_path),
            log_path=log_path,
            duration_seconds=time.monotonic() - started,
        )

    def _stop(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM (Scrapy closes and spools its snapshot), then SIGKILL after a grace."""
        if proc.poll() is not None:
            return
        with self._lock:
            self._stopped.add(proc.pid)
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=self.kill_grace_seconds)
        except subprocess.TimeoutExpired:
            log.warning("crawl pid %s ignored SIGTERM; killing it", proc.pid)
            proc.kill()
            proc.wait()
        except ProcessLookupError:
            pass

    def wait_all(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every child to end; True if none is left."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                return True
            time.sleep(0.2)
        return not self.running()

    def stop_all(self) -> None:
        """Stop accepting; SIGTERM every child, SIGKILL those still alive after the grace."""
        with self._lock:
            self._accepting = False
            children = list(self._children.values())
        threads = [threading.Thread(target=self._stop, args=(p,), daemon=True) for p in children]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def _read_summary(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def prune_logs(directory: Path, keep: int = KEEP_LOGS) -> int:
    """Delete all but the newest ``keep`` runs' logs and summaries in one job's log dir."""
    if not directory.is_dir():
        return 0
    runs = sorted({p.name.split(".", 1)[0] for p in directory.iterdir() if p.is_file()})
    removed = 0
    for run_id in runs[:-keep] if keep else runs:
        for path in directory.glob(f"{run_id}.*"):
            try:
                path.unlink()
                removed += 1
            except OSError as exc:
                log.warning("cannot prune %s: %s", path, exc)
    return removed

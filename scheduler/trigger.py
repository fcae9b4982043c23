"""Manual runs through a running daemon: the request file, and waiting for the run's outcome.

``newsvault trigger`` writes ``<state>/triggers/<run-id>.json`` (to a temp
name, then renamed, so the daemon never reads it half-written); the daemon
polls that directory, runs the crawl and records it under that run id.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from scheduler.history import RunRecord, iso, new_run_id, open_history, utcnow
from scheduler.lock import daemon_running

TRIGGERS_DIR = "triggers"
POLL_SECONDS = 0.5


def request_trigger(state_dir: str | Path, site: str, kind: str, *, start_urls: list[str] | None = None) -> str:
    """Ask the running daemon for a manual run; return its run id (the request file is atomic)."""
    directory = Path(state_dir) / TRIGGERS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    run_id = new_run_id()
    body = {"run_id": run_id, "site": site, "kind": kind, "requested_at": iso(utcnow()), "start_urls": start_urls or []}
    tmp = directory / f".{run_id}.tmp"
    tmp.write_text(json.dumps(body), encoding="utf-8")
    tmp.replace(request_path(state_dir, run_id))
    return run_id


def request_path(state_dir: str | Path, run_id: str) -> Path:
    """Where the request file of manual run ``run_id`` waits until the daemon reads it."""
    return Path(state_dir) / TRIGGERS_DIR / f"{run_id}.json"


@dataclass
class WaitResult:
    """How waiting for a manual run ended: it finished, the daemon went away (before or during it), or time ran out."""

    outcome: Literal["finished", "daemon_gone_before", "daemon_gone_during", "timeout"]
    record: RunRecord | None = None


def wait_for_run(state_dir: str | Path, run_id: str, timeout: float, *, history_url: str | None = None) -> WaitResult:
    """Wait until the daemon has recorded ``run_id`` as finished (in a cluster's shared history: ``history_url``).

    If the daemon is gone (killed, or it stopped as the request arrived) the
    history is read once more, since a stopping daemon records the run before
    it lets go of its lock; an unanswered request is withdrawn.
    """
    deadline = time.monotonic() + timeout
    history = open_history(state_dir, url=history_url)
    try:
        while time.monotonic() < deadline:
            record = history.get(run_id)
            if record is not None and record.status != "running":
                return WaitResult("finished", record)
            if not daemon_running(state_dir):
                record = history.get(run_id)
                if record is not None and record.status != "running":
                    return WaitResult("finished", record)
                request_path(state_dir, run_id).unlink(missing_ok=True)
                return WaitResult("daemon_gone_before" if record is None else "daemon_gone_during", record)
            time.sleep(POLL_SECONDS)
    finally:
        history.close()
    return WaitResult("timeout")

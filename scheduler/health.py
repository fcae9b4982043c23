"""The archive's side of health: what waits in the spool and how the last pushes went.

An archive that refuses every upload leaves every crawl "ok" (its snapshot is
safe in the spool), so the daemon's ``/healthz``, ``/metrics`` and
``newsvault runs`` read this to say that the archive is not receiving.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from archive.push_log import PushLog
from archive.spool import spool_backlog


class ArchiveHealth:
    """Reads the spool backlog and the push log of one state dir and archive."""

    def __init__(self, *, state_dir: Path, spool_dir: Path, archive_url: str) -> None:
        self.state_dir = state_dir
        self.spool_dir = spool_dir
        self.archive_url = archive_url

    def report(self) -> dict[str, Any]:
        backlog = spool_backlog(self.spool_dir)
        push = PushLog.in_state_dir(self.state_dir).status(self.archive_url)
        return {
            # Not healthy while snapshots wait because the archive refuses them.
            "ok": not (push.failing and (backlog.entries or backlog.partial)),
            "spool": {"entries": backlog.entries, "unfinished": backlog.partial, "bytes": backlog.bytes,
                      "oldest_age_seconds": backlog.oldest_age_seconds},
            "push": {k: v for k, v in asdict(push).items() if k != "archive"},
        }

    def summary_line(self) -> str | None:
        """One line for ``newsvault runs`` when something waits or pushes fail, else None."""
        report = self.report()
        spool, push = report["spool"], report["push"]
        if not (spool["entries"] or spool["unfinished"] or push["consecutive_failures"]):
            return None
        parts = [f"{spool['entries']} snapshot(s) waiting in the spool ({spool['bytes']} bytes"]
        if spool["oldest_age_seconds"] is not None:
            parts[0] += f", oldest {spool['oldest_age_seconds'] / 60:.0f} min"
        parts[0] += ")"
        if spool["unfinished"]:
            parts.append(f"{spool['unfinished']} unfinished (the next push salvages them)")
        if push["consecutive_failures"]:
            parts.append(f"the last {push['consecutive_failures']} push(es) failed: {push['last_error']}")
        return "; ".join(parts)

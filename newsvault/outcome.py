"""What a crawl's stats say about how its run went: one rule for the run status and the snapshot's status.

The crawl summary (ok / partial / failed) and the snapshot manifest
(complete / partial / failed) are decided from the same stats by the same
functions, so a run recorded as failed never leaves a snapshot that says
"complete".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Scrapy finish reasons that mean the crawl ran to its natural end.
COMPLETE_REASONS = frozenset({"finished"})
# Finish reasons that mean a part of newsvault broke (the sidecar, the snapshot's
# files, the archive): the run failed even if pages were fetched.
BROKEN_REASONS = frozenset({"sidecar_failed", "snapshot_writer_failed", "archive_failed"})


def failure_reason(stats: Mapping[str, Any]) -> str | None:
    """A one-line reason when the crawl could not do its job (nothing usable fetched, a part broke), else None."""
    finish_reason = stats.get("finish_reason")
    if finish_reason in BROKEN_REASONS:
        return f"the crawl stopped: {finish_reason}"
    started_ok = stats.get("newsvault/start_urls/ok", 0)
    started_failed = stats.get("newsvault/start_urls/failed", 0)
    if started_failed and not started_ok:
        first = stats.get("newsvault/start_urls/first_error", "")
        return f"every start URL failed ({started_failed}); first: {first}".strip()
    if int(stats.get("response_received_count", 0) or 0) == 0:
        errors = sorted(k.rsplit("/", 1)[-1] for k in stats if k.startswith("downloader/exception_type_count/"))
        detail = f" ({', '.join(errors)})" if errors else ""
        return f"no page could be fetched{detail}"
    return None


def snapshot_status(finish_reason: str | None, stats: Mapping[str, Any]) -> str:
    """The manifest status of a run's snapshot: failed, complete or partial."""
    if failure_reason(stats):
        return "failed"
    return "complete" if finish_reason in COMPLETE_REASONS else "partial"

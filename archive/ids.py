"""Snapshot ids: ``YYYYMMDDTHHMMSSZ-<6 hex>`` (UTC), so they sort by time."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime

SNAPSHOT_ID_RE = re.compile(r"^(\d{8}T\d{6}Z)-([0-9a-f]{6})$")
_TIME_FORMAT = "%Y%m%dT%H%M%SZ"


def new_snapshot_id(now: datetime | None = None) -> str:
    """A fresh id for a snapshot started at ``now`` (default: the current UTC time)."""
    now = now or datetime.now(UTC)
    return f"{now.astimezone(UTC).strftime(_TIME_FORMAT)}-{secrets.token_hex(3)}"


def derived_snapshot_id(at: datetime, seed: str) -> str:
    """The id of a snapshot planned for ``at``, the same for the same ``seed`` (a cluster's retried run)."""
    suffix = hashlib.sha256(seed.encode()).hexdigest()[:6]
    return f"{at.astimezone(UTC).strftime(_TIME_FORMAT)}-{suffix}"


def is_snapshot_id(value: str) -> bool:
    """True for a well-formed id whose time is a real moment (``20261399T...`` is not)."""
    match = SNAPSHOT_ID_RE.match(value)
    if not match:
        return False
    try:
        datetime.strptime(match.group(1), _TIME_FORMAT)
    except ValueError:
        return False
    return True


def snapshot_time(snapshot_id: str) -> datetime:
    """When the snapshot started, read from its id."""
    match = SNAPSHOT_ID_RE.match(snapshot_id)
    if not match:
        raise ValueError(f"not a snapshot id: {snapshot_id!r}")
    return datetime.strptime(match.group(1), _TIME_FORMAT).replace(tzinfo=UTC)


def utc_iso(moment: datetime) -> str:
    """ISO 8601 UTC with a ``Z`` suffix, second precision."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

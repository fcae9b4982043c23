"""Which state directory writes each (site, kind) into an archive: one marker object per pair.

A snapshot chain (each snapshot naming its previous one, revisits pointing
into earlier snapshots) is only true when one writer builds it. Two daemons on
copies of one state dir, or two hosts, would both archive ``sample/articles``
into one archive with interleaved chains and nobody would notice. So the first
writer of a (site, kind) puts ``writers/<site>/<kind>.json`` (create-if-absent)
naming its host and state directory; every later crawl and push checks it and
a different writer is refused with a message saying who holds it and how to
take over (``newsvault claim``) when the old writer is gone for good.
"""

from __future__ import annotations

import json
import logging
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archive.ids import utc_iso
from archive.paths import check_kind, check_site
from archive.stores import SnapshotStore
from newsvault.errors import SnapshotExistsError, WriterConflictError

log = logging.getLogger(__name__)

WRITERS_PREFIX = "writers"
MARKER_FORMAT = "newsvault-writer"
MAX_MARKER_BYTES = 64 * 1024


# The host field of a cluster's identity (a host name never has a space).
CLUSTER_HOST = "cluster of hosts"


@dataclass(frozen=True)
class WriterIdentity:
    """A writer is a state directory on a host (a copy of the dir elsewhere is another writer)."""

    host: str
    state_dir: str

    @classmethod
    def of(cls, state_dir: str | Path) -> WriterIdentity:
        return cls(host=socket.gethostname(), state_dir=str(Path(state_dir).resolve()))

    @classmethod
    def of_cluster(cls, cluster_id: str) -> WriterIdentity:
        """The hosts of one cluster write as one: their shared state is one chain of snapshots."""
        return cls(host=CLUSTER_HOST, state_dir=cluster_id)

    def describe(self) -> str:
        if self.host == CLUSTER_HOST:
            return f"the cluster {self.state_dir}"
        return f"state dir {self.state_dir} on host {self.host}"

    def marker(self) -> bytes:
        body = {"format": MARKER_FORMAT, "host": self.host, "state_dir": self.state_dir,
                "since": utc_iso(datetime.now(UTC))}
        return (json.dumps(body, indent=2) + "\n").encode("utf-8")


def marker_key(site: str, kind: str) -> str:
    return f"{WRITERS_PREFIX}/{check_site(site)}/{check_kind(kind)}.json"


def read_marker(store: SnapshotStore, site: str, kind: str) -> tuple[WriterIdentity, str] | None:
    """The registered writer of (site, kind) and since when, or None when there is none."""
    key = marker_key(site, kind)
    if not store.exists(key):
        return None
    raw = store.get_bytes(key, max_bytes=MAX_MARKER_BYTES)
    try:
        data: Any = json.loads(raw)
        if not isinstance(data, dict) or data.get("format") != MARKER_FORMAT:
            raise ValueError("not a writer marker")
        return WriterIdentity(host=str(data["host"]), state_dir=str(data["state_dir"])), str(data.get("since", "?"))
    except (ValueError, KeyError, RecursionError) as exc:
        raise WriterConflictError(
            f"{store.url}: {key} is unreadable ({exc}); if this state dir is the only writer of "
            f"{site}/{kind}, run `newsvault claim {site} --kind {kind}`"
        ) from exc


class WriterCheck:
    """Checks (and on first use registers) this state dir as the writer of each (site, kind), once per pair."""

    def __init__(self, store: SnapshotStore, identity: WriterIdentity) -> None:
        self.store = store
        self.identity = identity
        self._checked: set[tuple[str, str]] = set()

    def check(self, site: str, kind: str) -> None:
        """Return if this writer may write (site, kind); WriterConflictError otherwise."""
        if (site, kind) in self._checked:
            return
        found = read_marker(self.store, site, kind)
        if found is None:
            try:
                self.store.put_bytes_if_absent(marker_key(site, kind), self.identity.marker())
                log.info("registered %s as the writer of %s/%s in %s", self.identity.describe(), site, kind, self.store.url)
            except SnapshotExistsError:
                found = read_marker(self.store, site, kind)  # another writer registered at the same moment
        if found is not None and found[0] != self.identity:
            holder, since = found
            raise WriterConflictError(
                f"{site}/{kind} in {self.store.url} is written by {holder.describe()} (since {since}); "
                f"this is {self.identity.describe()}. Two writers would interleave one snapshot chain, so "
                f"nothing is archived from here. If the other writer is gone for good, run "
                f"`newsvault claim {site} --kind {kind}` on this one."
            )
        self._checked.add((site, kind))


def claim(store: SnapshotStore, site: str, kind: str, identity: WriterIdentity) -> WriterIdentity | None:
    """Make ``identity`` the writer of (site, kind); returns the writer it replaced, if any."""
    try:
        found = read_marker(store, site, kind)
    except WriterConflictError:
        found = None  # an unreadable marker is exactly what claim is for
    store.replace_bytes(marker_key(site, kind), identity.marker())
    return found[0] if found else None

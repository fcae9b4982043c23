"""The digest index contract, over both backends: a state dir's SQLite file and a cluster's PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from archive.index import DigestIndex

ARCHIVE = "s3://bucket/news"
OTHER_ARCHIVE = "s3://bucket/elsewhere"
S1, S2 = "20261201T060000Z-sample-articles-00000001", "20261202T060000Z-sample-articles-00000002"


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "state" / "archive-index.sqlite")


def _entry(digest: str, n: int) -> tuple[str, str, str, str, str]:
    return (digest, f"f{n}.warc.gz", f"<urn:uuid:{n}>", f"https://example.org/{n}", "2026-12-01T06:00:00Z")


def test_a_digest_keeps_its_first_capture(location: str) -> None:
    index = DigestIndex(location, ARCHIVE)
    index.add("sample", S1, [_entry("sha1:A", 1), _entry("sha1:B", 2)])
    index.add("sample", S2, [_entry("sha1:A", 3), _entry("sha1:C", 4)])
    first = index.lookup("sample", "sha1:A")
    assert first is not None and first.snapshot_id == S1 and first.filename == "f1.warc.gz"
    assert index.lookup("sample", "sha1:C").snapshot_id == S2  # type: ignore[union-attr]
    assert index.lookup("other-site", "sha1:A") is None
    index.close()
    # Another archive never sees these captures: a revisit must resolve in its own store.
    elsewhere = DigestIndex(location, OTHER_ARCHIVE)
    assert elsewhere.lookup("sample", "sha1:A") is None
    elsewhere.close()


def test_snapshots_latest_and_forgetting(location: str) -> None:
    index = DigestIndex(location, ARCHIVE)
    assert index.latest_snapshot("sample", "articles") is None
    for sid in (S1, S2):
        index.record_snapshot("sample", "articles", sid)
    index.record_snapshot("sample", "articles", S2)  # twice: one row
    index.add("sample", S1, [_entry("sha1:A", 1)])
    assert index.latest_snapshot("sample", "articles") == S2
    assert index.indexed_snapshots("sample") == {S1, S2}
    assert index.keep_only("sample", {S2}) == [S1]  # S1 was pruned elsewhere
    assert index.lookup("sample", "sha1:A") is None
    assert index.indexed_snapshots("sample") == {S2}
    index.close()
    reopened = DigestIndex(location, ARCHIVE)
    assert reopened.latest_snapshot("sample", "articles") == S2
    reopened.close()

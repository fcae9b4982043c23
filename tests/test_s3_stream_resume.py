"""The S3 store's single-stream download: a read that breaks off resumes from the bytes already written.

A unit test of the resume logic with a stand-in client (a real server cannot
be made to cut a response mid-body on demand); the stream path itself runs
against SeaweedFS in tests/test_store_contract.py.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ResponseStreamingError

from archive.stores import FileDigest
from archive.stores.s3 import S3Store
from newsvault.errors import StoreError


class BreakingBody:
    """A response body that delivers ``data`` and then, if told to, breaks off after ``cut`` bytes."""

    def __init__(self, data: bytes, cut: int | None) -> None:
        self.stream = io.BytesIO(data if cut is None else data[:cut])
        self.cut = cut

    def iter_chunks(self, size: int) -> Any:
        while chunk := self.stream.read(min(size, 100_000)):
            yield chunk
        if self.cut is not None:
            raise ResponseStreamingError(error="connection reset")

    def close(self) -> None:
        pass


class StandInClient:
    """get_object only: honours Range and IfMatch, breaks the first ``breaks`` responses part-way."""

    def __init__(self, data: bytes, breaks: int) -> None:
        self.data = data
        self.breaks = breaks
        self.requests: list[dict[str, Any]] = []

    def get_object(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        start = int(request["Range"].removeprefix("bytes=").rstrip("-")) if "Range" in request else 0
        if "IfMatch" in request:
            assert request["IfMatch"] == '"etag-1"'
        rest = self.data[start:]
        cut = len(rest) // 3 if self.breaks > 0 else None
        self.breaks -= 1
        return {"Body": BreakingBody(rest, cut), "ETag": '"etag-1"'}


def store_with(client: StandInClient, monkeypatch: pytest.MonkeyPatch) -> S3Store:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    store = S3Store(bucket="b", max_attempts=3)
    store._client = client  # type: ignore[assignment]
    return store


def test_broken_stream_resumes_and_the_file_is_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(3_000_000)
    client = StandInClient(data, breaks=2)
    got = store_with(client, monkeypatch).get_file_hashed("k", tmp_path / "f", expected_size=len(data))
    assert got == FileDigest(len(data), hashlib.sha256(data).hexdigest())
    assert (tmp_path / "f").read_bytes() == data
    assert len(client.requests) == 3
    assert "Range" not in client.requests[0]
    first_cut = len(data) // 3
    assert client.requests[1]["Range"] == f"bytes={first_cut}-" and client.requests[1]["IfMatch"] == '"etag-1"'


def test_a_stream_that_keeps_breaking_fails_after_the_attempts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = StandInClient(os.urandom(500_000), breaks=10)
    with pytest.raises(StoreError, match="download k"):
        store_with(client, monkeypatch).get_file_hashed("k", tmp_path / "f", expected_size=500_000)
    assert len(client.requests) == 3

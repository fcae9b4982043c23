"""A snapshot store in an S3-compatible bucket. Every boto3 call of newsvault lives in this module.

Endpoint and credentials come only from boto3's own chain (AWS_ENDPOINT_URL,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, profiles); none of them is ever logged
or put in an error message.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, closing
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast

import boto3
from boto3.exceptions import Boto3Error
from boto3.exceptions import RetriesExceededError as Boto3RetriesExceededError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from s3transfer.exceptions import RetriesExceededError as TransferRetriesExceededError
from s3transfer.exceptions import S3DownloadFailedError, S3UploadFailedError

from archive.stores import (
    MAX_SMALL_OBJECT_BYTES,
    SNAPSHOTS_PREFIX,
    FileDigest,
    HashingWriter,
    Progress,
    SnapshotRef,
    check_digest,
    parse_manifest_key,
    read_bounded,
)
from newsvault.config import DEFAULT_MULTIPART_THRESHOLD_BYTES, DEFAULT_S3_CHECKSUMS
from newsvault.errors import (
    ObjectExistsError,
    SnapshotExistsError,
    StoreError,
    StoreUnreachableError,
)

log = logging.getLogger(__name__)

# boto3's default part size and concurrency; parts upload in parallel: a part as
# large as the threshold would serialise every file below twice the threshold.
MULTIPART_CHUNK_BYTES = 8 * 1024 * 1024
MULTIPART_CONCURRENCY = 10
# Objects up to this size are downloaded as one stream and hashed as they are
# read: one stream fills a LAN link and costs less CPU than boto3's parallel
# ranged GETs (whose parts must be reordered before they can be hashed).
# Larger objects keep the parallel parts. Restore passes the size it expects.
STREAM_DOWNLOAD_MAX_BYTES = 64 * 1024 * 1024
_READ_CHUNK_BYTES = 1024 * 1024

T = TypeVar("T")
_AUTH_CODES = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "AuthorizationHeaderMalformed",
    "403",
}
_EXISTS_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "412"}
_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
# The transfer manager (upload_file/download_file) wraps botocore's errors in its own
# exceptions; they must take the same path as a plain client call.
_WRAPPER_ERRORS = (Boto3Error, TransferRetriesExceededError, S3UploadFailedError, S3DownloadFailedError)
_BOTO_ERRORS = (BotoCoreError, ClientError, *_WRAPPER_ERRORS)


def _is_precondition_failure(exc: StoreError) -> bool:
    """True when the store refused a create-if-absent because the key exists."""
    cause = exc.__cause__
    if not isinstance(cause, ClientError):
        return False
    code = str(cause.response.get("Error", {}).get("Code", ""))
    status = str(cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return code in _EXISTS_CODES or status in ("412", "409")


def _unwrap(exc: BaseException) -> BaseException:
    """The botocore error inside a boto3/s3transfer wrapper (``last_exception`` or the chained cause)."""
    seen: set[int] = set()
    while isinstance(exc, _WRAPPER_ERRORS) and id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "last_exception", None) or exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc


class S3Store:
    """Snapshots under ``s3://bucket/prefix``."""

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        checksums: str = DEFAULT_S3_CHECKSUMS,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD_BYTES,
        max_attempts: int = 5,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
    ) -> None:
        if not bucket:
            raise ValueError("s3:// archive URL needs a bucket: s3://bucket/prefix")
        self.max_attempts = max_attempts
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        config = BotoConfig(
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            request_checksum_calculation=checksums,
            response_checksum_validation="when_required",
        )
        self._client = boto3.session.Session().client("s3", config=config)
        self._checksums = checksums
        self._multipart_threshold = multipart_threshold
        # Downloads of large objects keep boto3's parallel ranged GETs.
        self._transfer = TransferConfig(multipart_threshold=multipart_threshold, multipart_chunksize=MULTIPART_CHUNK_BYTES)

    # --- helpers ------------------------------------------------------------
    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, what: str, func: Callable[[], T]) -> T:
        """Run one boto3 operation, turning its failures into our errors (never with secrets)."""
        try:
            return func()
        except _BOTO_ERRORS as exc:
            root = _unwrap(exc)
            # Chained from the botocore error itself, so callers can read its response code.
            raise self._translate(what, root, wrapper=exc) from root

    def _translate(self, what: str, exc: BaseException, *, wrapper: BaseException) -> StoreError:
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return StoreUnreachableError(f"{self.url}: no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            if code in _AUTH_CODES or status == "403":
                return StoreUnreachableError(f"{self.url}: {what}: access denied: check AWS credentials ({code or status})")
            if code == "NoSuchBucket":
                return StoreError(f"{self.url}: bucket {self.bucket!r} does not exist")
            return StoreError(f"{self.url}: {what} failed: {code or status}")
        if isinstance(exc, BotoConnectionError):
            return StoreUnreachableError(f"{self.url}: {what}: cannot connect to the S3 endpoint")
        if isinstance(exc, BotoCoreError):
            return StoreUnreachableError(f"{self.url}: {what}: {type(exc).__name__}")
        # A transfer that gave up without a botocore error inside (e.g. retries of a
        # truncated download exhausted): only the class names, whose text is safe.
        if isinstance(wrapper, TransferRetriesExceededError | Boto3RetriesExceededError):
            return StoreUnreachableError(f"{self.url}: {what}: gave up after retries ({type(exc).__name__})")
        return StoreError(f"{self.url}: {what} failed: {type(exc).__name__}")

    # --- protocol -----------------------------------------------------------
    def put_file(self, key: str, path: Path, progress: Progress | None = None, *, sha256: str) -> None:
        """Create-if-absent (``If-None-Match: *``), one PUT below the threshold, parallel parts above.

        boto3's transfer manager can neither send ``If-None-Match`` nor hash what
        it sends, so uploads are done here. The file is read once, in order, and
        hashed as read: the object becomes visible (the PUT, or the
        CompleteMultipartUpload) only if those very bytes have ``sha256``, and
        its metadata then says so truthfully.
        """
        size = path.stat().st_size
        try:
            if size < self._multipart_threshold:
                self._put_single(key, path, sha256, progress)
            else:
                self._put_multipart(key, path, sha256, progress)
        except StoreError as exc:
            if not _is_precondition_failure(exc):
                raise
            self._check_same_object(key, size, sha256)

    def _put_single(self, key: str, path: Path, sha256: str, progress: Progress | None) -> None:
        body = path.read_bytes()
        check_digest(key, hashlib.sha256(body).hexdigest(), sha256)
        self._call(
            f"upload {key}",
            lambda: self._client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=body, IfNoneMatch="*", Metadata={"sha256": sha256}
            ),
        )
        if progress:
            progress(len(body))

    def _put_multipart(self, key: str, path: Path, sha256: str, progress: Progress | None) -> None:
        extra: dict[str, str] = {"ChecksumAlgorithm": "CRC32"} if self._checksums == "when_supported" else {}
        created = self._call(
            f"upload {key}",
            lambda: self._client.create_multipart_upload(
                Bucket=self.bucket, Key=self._key(key), Metadata={"sha256": sha256}, **extra
            ),
        )
        upload_id = created["UploadId"]

        def upload_part(number: int, body: bytes) -> dict[str, Any]:
            response = self._call(
                f"upload {key}",
                partial(
                    self._client.upload_part,
                    Bucket=self.bucket, Key=self._key(key), UploadId=upload_id, PartNumber=number, Body=body, **extra,
                ),
            )
            if progress:
                progress(len(body))
            part = {"ETag": response["ETag"], "PartNumber": number}
            if "ChecksumCRC32" in response:
                part["ChecksumCRC32"] = response["ChecksumCRC32"]
            return part

        try:
            digest = hashlib.sha256()
            futures: list[Future[dict[str, Any]]] = []
            with (
                ThreadPoolExecutor(max_workers=MULTIPART_CONCURRENCY, thread_name_prefix="s3-part") as pool,
                open(path, "rb") as fh,
            ):
                # Read and hash in order on this thread; parts go up in parallel, at most
                # MULTIPART_CONCURRENCY (plus one being read) in memory at once.
                in_flight = threading.BoundedSemaphore(MULTIPART_CONCURRENCY)
                while body := fh.read(MULTIPART_CHUNK_BYTES):
                    digest.update(body)
                    in_flight.acquire()
                    future = pool.submit(upload_part, len(futures) + 1, body)
                    future.add_done_callback(lambda _f: in_flight.release())
                    futures.append(future)
                parts = [f.result() for f in futures]
            check_digest(key, digest.hexdigest(), sha256)
            self._call(
                f"upload {key}",
                lambda: self._client.complete_multipart_upload(
                    Bucket=self.bucket, Key=self._key(key), UploadId=upload_id,
                    MultipartUpload={"Parts": parts}, IfNoneMatch="*",
                ),
            )
        except BaseException:
            # Parts of an upload never completed are invisible but kept (and billed): abort it.
            try:
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=self._key(key), UploadId=upload_id)
            except _BOTO_ERRORS:
                log.debug("could not abort multipart upload of %s", key)
            raise

    def _check_same_object(self, key: str, size: int, sha256: str) -> None:
        """After a refused create: the same bytes (our own earlier upload) are fine, anything else is a conflict."""
        head = self._call(f"check {key}", lambda: self._client.head_object(Bucket=self.bucket, Key=self._key(key)))
        stored = (int(head.get("ContentLength", -1)), str(head.get("Metadata", {}).get("sha256", "")))
        if stored != (size, sha256):
            raise ObjectExistsError(f"{key} already exists in {self.url} with other content; it is never overwritten")

    def put_bytes_if_absent(self, key: str, data: bytes) -> None:
        try:
            self._call(
                f"commit {key}",
                lambda: self._client.put_object(
                    Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*", ContentType="application/json"
                ),
            )
        except StoreError as exc:
            if _is_precondition_failure(exc):
                raise SnapshotExistsError(f"{key} already exists; a committed snapshot is never overwritten") from exc.__cause__
            raise

    def replace_bytes(self, key: str, data: bytes) -> None:
        if key.split("/", 1)[0] == SNAPSHOTS_PREFIX:
            raise ValueError("snapshot objects are never replaced")
        self._call(
            f"write {key}",
            lambda: self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType="application/json"),
        )

    def get_bytes(self, key: str, *, max_bytes: int = MAX_SMALL_OBJECT_BYTES) -> bytes:
        def fetch() -> bytes:
            body = self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            with closing(body):
                return read_bounded(cast(BinaryIO, body), max_bytes, key)

        return self._call(f"read {key}", fetch)

    def get_file_hashed(
        self, key: str, dest: Path, progress: Progress | None = None, *, expected_size: int | None = None
    ) -> FileDigest:
        if expected_size is not None and expected_size <= STREAM_DOWNLOAD_MAX_BYTES:
            return self._stream_hashed(key, dest, progress, expected_size)
        # download_fileobj with a non-seekable sink keeps the parallel ranged GETs
        # (s3transfer reorders the parts and writes them in order on its one IO thread).
        with open(dest, "wb") as out:
            writer = HashingWriter(out, progress, max_bytes=expected_size)
            self._call(
                f"download {key}",
                lambda: self._client.download_fileobj(self.bucket, self._key(key), writer, Config=self._transfer),
            )
        return writer.result()

    def _stream_hashed(self, key: str, dest: Path, progress: Progress | None, expected_size: int) -> FileDigest:
        """One GET read to the end, hashed as read; an interrupted read resumes where it stopped.

        The resumed GET asks for the rest of the same object version
        (``Range`` from the bytes written, ``IfMatch`` its ETag), so the file
        and its digest are one object's bytes or the download fails.
        """
        with open(dest, "wb") as out:
            writer = HashingWriter(out, progress, max_bytes=expected_size)
            etag: str | None = None
            for attempt in range(1, self.max_attempts + 1):
                request: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
                if etag is not None:
                    request.update(Range=f"bytes={writer.size}-", IfMatch=etag)
                response: dict[str, Any] = self._call(f"download {key}", partial(self._client.get_object, **request))
                etag = etag or response.get("ETag")
                try:
                    with closing(response["Body"]) as body:
                        for chunk in body.iter_chunks(_READ_CHUNK_BYTES):
                            writer.write(chunk)
                    return writer.result()
                except BotoCoreError as exc:  # the stream broke off (timeout, reset, short body)
                    if attempt == self.max_attempts or etag is None:
                        raise self._translate(f"download {key}", exc, wrapper=exc) from exc
                    log.warning("download of %s interrupted after %d bytes (%s); resuming", key, writer.size, type(exc).__name__)
        raise AssertionError("unreachable")  # pragma: no cover

    def open(self, key: str) -> AbstractContextManager[BinaryIO]:
        body = self._call(f"read {key}", lambda: self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"])
        return cast(AbstractContextManager[BinaryIO], closing(body))

    def exists(self, key: str) -> bool:
        try:
            self._call(f"check {key}", lambda: self._client.head_object(Bucket=self.bucket, Key=self._key(key)))
        except StoreError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError):
                code = str(cause.response.get("Error", {}).get("Code", ""))
                if code in _MISSING_CODES:
                    return False
            raise
        return True

    def list_keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        full = self._key(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        pages = self._call("list", lambda: list(self._iter_pages(full)))
        for page in pages:
            for obj in page.get("Contents", []):
                yield obj["Key"][strip:], int(obj["Size"])

    def _iter_pages(self, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self._client.get_paginator("list_objects_v2")
        yield from paginator.paginate(Bucket=self.bucket, Prefix=prefix)

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": self._key(k)} for k in keys[start : start + 1000]]

            def delete_batch(batch: list[dict[str, str]] = batch) -> Any:
                return self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

            response = self._call("delete", delete_batch)
            # DeleteObjects answers 200 even when keys fail; each failure is listed in Errors.
            errors = [e for e in response.get("Errors", []) if e.get("Code") not in _MISSING_CODES]
            if errors:
                first = errors[0]
                raise StoreError(
                    f"{self.url}: delete failed for {len(errors)} of {len(batch)} keys "
                    f"(first: {str(first.get('Key', ''))[len(self.prefix) + 1 if self.prefix else 0:]}: {first.get('Code', '?')})"
                )

    def list_snapshots(self, site: str | None = None, kind: str | None = None) -> list[SnapshotRef]:
        prefix = SNAPSHOTS_PREFIX + "/"
        if site:
            prefix += f"{site}/"
            if kind:
                prefix += f"{kind}/"
        refs = []
        for key, _size in self.list_keys(prefix):
            ref = parse_manifest_key(key)
            if ref and (site is None or ref.site == site) and (kind is None or ref.kind == kind):
                refs.append(ref)
        return sorted(refs)

"""Archive throughput: our push and restore vs plain boto3 on the same SeaweedFS; second-snapshot size.

1. A full articles crawl of the sample site makes a real snapshot (local archive).
2. Upload: ``archive.spool.push_all`` (re-hash, data files, manifest last with
   If-None-Match) of that snapshot to SeaweedFS, vs ``boto3 upload_file`` of
   the same files (default TransferConfig) to another prefix of the same
   bucket. Each side runs ``--repeat`` times, interleaved; the best run counts.
3. Restore: ``archive.restore.restore_snapshot`` (download + sha256 of every
   file) vs ``boto3 download_file`` of the same keys.
4. A second crawl of the unchanged site with the same state: its snapshot's
   bytes as a fraction of the first (revisit records instead of payloads).

SeaweedFS is started the way the test fixture does (tests/plugins/seaweedfs.py).

    python bench/archive_throughput.py [--quick] [--articles N] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from common import SampleSiteProcess, Table, crawl_child, verdict, write_json, write_sample_profile

UPLOAD_TARGET = 0.90
RESTORE_TARGET = 0.90
SECOND_SNAPSHOT_TARGET = 0.20


def snapshot_dirs(archive: Path) -> list[Path]:
    """Committed snapshot dirs of a local archive, oldest first."""
    return sorted(p.parent for p in archive.glob("snapshots/*/*/*/manifest.json"))


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def make_snapshots(work: Path, articles: int) -> tuple[Path, Path]:
    """Two crawls of the unchanged site with one state dir; returns both snapshot dirs."""
    archive = work / "archive"
    with SampleSiteProcess(articles) as site:
        write_sample_profile(work / "sites", site.base_url, articles=articles)
        for n in (1, 2):
            result, summary = crawl_child(
                work, start_urls=[f"{site.base_url}/sitemap.xml"], archive=str(archive)
            )
            result.check(f"crawl {n}")
            if summary.get("snapshot_state") != "committed":
                raise RuntimeError(
                    f"crawl {n} did not commit its snapshot: {summary.get('snapshot_state')}"
                )
    snaps = snapshot_dirs(archive)
    if len(snaps) != 2:
        raise RuntimeError(f"expected two snapshots, found {len(snaps)}")
    return snaps[0], snaps[1]


def timed(func: Any) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 articles, 2 runs per side")
    parser.add_argument("--articles", type=int, help="site size (default 2,000)")
    parser.add_argument("--repeat", type=int, help="runs per side (default 3, --quick 2)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    # The test server holds at most 4 volumes of 64 MB: 2,000 articles (about 21 MB
    # a snapshot) x 3 sides x 3 runs stays below that.
    articles = args.articles or (500 if args.quick else 2_000)
    repeat = args.repeat or (2 if args.quick else 3)

    from tests.plugins.seaweedfs import SeaweedS3Server

    with tempfile.TemporaryDirectory(prefix="nv-arch-") as tmp:
        work = Path(tmp)
        first, second = make_snapshots(work, articles)
        first_bytes, second_bytes = dir_bytes(first), dir_bytes(second)
        files = sorted(p for p in first.iterdir() if p.is_file())
        total = sum(p.stat().st_size for p in files)

        server = SeaweedS3Server(work / "seaweedfs", bucket="newsvault-bench")
        server.start()
        try:
            # The store reads boto3's own chain; this script is not a component, so it sets the variables.
            os.environ.update(server.env())
            rows = run_transfers(server, work, first, files, repeat)
        finally:
            server.stop()

    upload_ratio = rows["upload"]["ours_mb_s"] / rows["upload"]["boto3_mb_s"]
    restore_ratio = rows["restore"]["ours_mb_s"] / rows["restore"]["boto3_mb_s"]
    second_fraction = second_bytes / first_bytes

    table = Table(
        [
            "operation",
            "bytes",
            "newsvault s",
            "newsvault MB/s",
            "boto3 s",
            "boto3 MB/s",
            "ratio",
            "target",
        ]
    )
    table.add(
        "upload (push_all vs upload_file)",
        total,
        rows["upload"]["ours_s"],
        rows["upload"]["ours_mb_s"],
        rows["upload"]["boto3_s"],
        rows["upload"]["boto3_mb_s"],
        upload_ratio,
        f">= {UPLOAD_TARGET}: {verdict(upload_ratio >= UPLOAD_TARGET)}",
    )
    table.add(
        "restore (restore_snapshot vs download_file)",
        total,
        rows["restore"]["ours_s"],
        rows["restore"]["ours_mb_s"],
        rows["restore"]["boto3_s"],
        rows["restore"]["boto3_mb_s"],
        restore_ratio,
        f">= {RESTORE_TARGET}: {verdict(restore_ratio >= RESTORE_TARGET)}",
    )
    for key, label in (
        ("upload_8m", "upload, push with 8 MiB multipart setting"),
        ("restore_8m", "restore, with 8 MiB multipart setting"),
    ):
        r = rows[key]
        ratio = r["ours_mb_s"] / r["boto3_mb_s"]
        table.add(
            label,
            total,
            r["ours_s"],
            r["ours_mb_s"],
            r["boto3_s"],
            r["boto3_mb_s"],
            ratio,
            "(diagnostic)",
        )
    print(
        f"archive throughput: snapshot of a {articles:,}-article crawl ({len(files)} files, {total / 1024**2:.1f} MiB), "
        f"SeaweedFS on loopback, best of {repeat}"
    )
    print(table.render())
    print(
        f"second snapshot of the unchanged site: {second_bytes:,} bytes = {second_fraction:.3f} of the first ({first_bytes:,})  "
        f"target <= {SECOND_SNAPSHOT_TARGET}: {verdict(second_fraction <= SECOND_SNAPSHOT_TARGET)} (aim 0.10)"
    )
    write_json(
        args.json,
        {
            "articles": articles,
            "repeat": repeat,
            "snapshot_bytes": total,
            "files": [p.name for p in files],
            "transfers": rows,
            "upload_ratio": upload_ratio,
            "restore_ratio": restore_ratio,
            "first_snapshot_bytes": first_bytes,
            "second_snapshot_bytes": second_bytes,
            "second_fraction": second_fraction,
        },
    )
    return 0


def run_transfers(
    server: Any, work: Path, snapshot: Path, files: list[Path], repeat: int
) -> dict[str, dict[str, float]]:
    import boto3

    from archive.restore import restore_snapshot
    from archive.spool import push_all
    from archive.stores import SnapshotRef, open_store

    site, kind, snapshot_id = snapshot.parts[-3:]
    total = sum(p.stat().st_size for p in files)
    client = boto3.client("s3")  # the same endpoint and credentials, from the same variables
    times: dict[str, list[float]] = {
        name: []
        for name in ("push", "push_8m", "upload_file", "restore", "restore_8m", "download_file")
    }
    # A third side: our push/restore with the multipart setting at boto3's default
    # chunk size (8 MiB), to show how much of any gap is transfer configuration.
    small_parts = {"NEWSVAULT_S3_MULTIPART_THRESHOLD_BYTES": 8 * 1024 * 1024}
    ref = SnapshotRef(snapshot_id=snapshot_id, site=site, kind=kind)
    for i in range(repeat):
        prefix = f"run{i}"
        stores = {
            "": open_store(server.archive_url(f"ours/{prefix}")),
            "_8m": open_store(server.archive_url(f"ours8m/{prefix}"), small_parts),
        }

        def ours_push(variant: str, i: int = i, stores: dict[str, Any] = stores) -> None:
            spool = work / f"spool{variant}-{i}"
            results = push_all(stores[variant], spool, progress=False)
            if not results or not all(r.ok for r in results):
                raise RuntimeError(f"push failed: {results}")

        def ours_restore(variant: str, i: int = i, stores: dict[str, Any] = stores) -> None:
            restore_snapshot(stores[variant], ref, work / f"restore{variant}-{i}", progress=False)

        def plain_upload(prefix: str = prefix) -> None:
            for path in files:
                client.upload_file(str(path), server.bucket, f"plain/{prefix}/{path.name}")

        def plain_download(prefix: str = prefix, i: int = i) -> None:
            out = work / f"download-{i}"
            out.mkdir()
            for path in files:
                client.download_file(
                    server.bucket, f"plain/{prefix}/{path.name}", str(out / path.name)
                )

        for variant in stores:
            shutil.copytree(snapshot, work / f"spool{variant}-{i}" / site / kind / snapshot_id)
        uploads: list[tuple[str, Callable[[], None]]] = [
            ("push", lambda: ours_push("")),
            ("push_8m", lambda: ours_push("_8m")),
            ("upload_file", plain_upload),
        ]
        downloads: list[tuple[str, Callable[[], None]]] = [
            ("restore", lambda: ours_restore("")),
            ("restore_8m", lambda: ours_restore("_8m")),
            ("download_file", plain_download),
        ]
        # Rotate which side goes first, so none always meets a warmer server.
        uploads = uploads[i % 3 :] + uploads[: i % 3]
        downloads = downloads[i % 3 :] + downloads[: i % 3]
        for name, func in uploads:
            times[name].append(timed(func))
        for name, func in downloads:
            times[name].append(timed(func))
        for leftover in work.glob(f"*-{i}"):
            if leftover.name.startswith(("restore", "download")):
                shutil.rmtree(leftover, ignore_errors=True)
    mb = total / 1024**2

    def pair(ours: str, plain: str) -> dict[str, float]:
        o, p = min(times[ours]), min(times[plain])
        return {
            "ours_s": o,
            "ours_mb_s": mb / o,
            "boto3_s": p,
            "boto3_mb_s": mb / p,
            "ours_runs": times[ours],
            "boto3_runs": times[plain],
        }  # type: ignore[dict-item]

    return {
        "upload": pair("push", "upload_file"),
        "upload_8m": pair("push_8m", "upload_file"),
        "restore": pair("restore", "download_file"),
        "restore_8m": pair("restore_8m", "download_file"),
    }


if __name__ == "__main__":
    raise SystemExit(main())

"""Archive throughput: our push and restore vs plain boto3 on the same SeaweedFS; second-snapshot size.

1. Two articles crawls of the unchanged sample site make two real snapshots
   (local archive): a large first one, and a small second one (revisit records
   instead of payloads). The small one shows what the fixed per-snapshot round
   trips cost when there is little to transfer.
2. Upload: ``archive.spool.push_all`` (data files while re-hashing them, then
   the manifest with If-None-Match) of a snapshot to SeaweedFS, vs
   ``boto3 upload_file`` of the same files (default TransferConfig) to another
   prefix of the same bucket. Each side runs ``--repeat`` times, interleaved
   and rotated; the best run counts.
3. Restore: ``archive.restore.restore_snapshot`` (manifest GET, key listing,
   downloads hashed as they are written) vs ``boto3 download_file`` of the
   same keys, one after another.
4. The fixed round trips alone: conditional manifest PUT, manifest GET and
   key listing, median of a few calls each.
5. The second snapshot's bytes as a fraction of the first.

SeaweedFS is started the way the test fixture does (tests/plugins/seaweedfs.py),
with room for larger snapshots.

    python bench/archive_throughput.py [--quick] [--articles N] [--repeat N] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
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
# 5,000 articles make a ~55 MB first snapshot: transfers take several tenths of a
# second, so throughput rather than the fixed round trips decides the ratio.
DEFAULT_ARTICLES = 5_000
QUICK_ARTICLES = 500
# Room for (first + second snapshot) x 2 sides x the runs; SeaweedFS fills volumes
# per collection and does not reclaim deleted space without a vacuum.
SERVER_VOLUMES = 16
SERVER_VOLUME_MB = 256
ROUND_TRIP_SAMPLES = 15


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
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ARTICLES} articles, 2 runs per side")
    parser.add_argument("--articles", type=int, help=f"site size (default {DEFAULT_ARTICLES:,})")
    parser.add_argument("--repeat", type=int, help="runs per side (default 3, --quick 2)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    articles = args.articles or (QUICK_ARTICLES if args.quick else DEFAULT_ARTICLES)
    repeat = args.repeat or (2 if args.quick else 3)

    from tests.plugins.seaweedfs import SeaweedS3Server

    with tempfile.TemporaryDirectory(prefix="nv-arch-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        first, second = make_snapshots(work, articles)
        crawl_seconds = time.perf_counter() - started
        first_bytes, second_bytes = dir_bytes(first), dir_bytes(second)

        server = SeaweedS3Server(
            work / "seaweedfs", bucket="newsvault-bench", volume_max=SERVER_VOLUMES, volume_size_limit_mb=SERVER_VOLUME_MB
        )
        server.start()
        try:
            # The store reads boto3's own chain; this script is not a component, so it sets the variables.
            os.environ.update(server.env())
            measured = {
                "large": run_transfers(server, work, first, repeat, "large"),
                "small": run_transfers(server, work, second, repeat, "small"),
            }
            round_trips = measure_round_trips(server, first)
        finally:
            server.stop()

    table = Table(["snapshot", "operation", "bytes", "newsvault s", "newsvault MB/s", "boto3 s", "boto3 MB/s", "ratio", "target"])
    ratios: dict[str, float] = {}
    for label in ("large", "small"):
        rows = measured[label]
        for op, what, target in (
            ("upload", "upload: push_all vs upload_file", UPLOAD_TARGET),
            ("restore", "restore: restore_snapshot vs download_file", RESTORE_TARGET),
        ):
            r = rows[op]
            ratio = r["ours_mb_s"] / r["boto3_mb_s"]
            ratios[f"{label}_{op}"] = ratio
            # The target is about throughput: the large snapshot decides it; the small row shows the fixed cost.
            target_cell = f">= {target}: {verdict(ratio >= target)}" if label == "large" else "(fixed cost weighs more)"
            table.add(label, what, int(rows["bytes"]["total"]), r["ours_s"], r["ours_mb_s"], r["boto3_s"], r["boto3_mb_s"], ratio, target_cell)
    second_fraction = second_bytes / first_bytes
    print(
        f"archive throughput: snapshots of a {articles:,}-article site (crawls took {crawl_seconds:.0f} s), "
        f"SeaweedFS on loopback, best of {repeat} rotated runs"
    )
    print(table.render())
    print(
        "fixed round trips per snapshot (median of {n}): push commits the manifest with one conditional PUT "
        "({put:.1f} ms); restore GETs the manifest ({get:.1f} ms) and LISTs the keys ({lst:.1f} ms, overlapped "
        "with the downloads)".format(
            n=ROUND_TRIP_SAMPLES, put=round_trips["put_manifest_ms"], get=round_trips["get_manifest_ms"], lst=round_trips["list_keys_ms"]
        )
    )
    print(
        f"second snapshot of the unchanged site: {second_bytes:,} bytes = {second_fraction:.3f} of the first ({first_bytes:,})  "
        f"target <= {SECOND_SNAPSHOT_TARGET}: {verdict(second_fraction <= SECOND_SNAPSHOT_TARGET)} (aim 0.10)"
    )
    write_json(
        args.json,
        {
            "articles": articles,
            "repeat": repeat,
            "crawl_seconds": crawl_seconds,
            "transfers": measured,
            "ratios": ratios,
            "upload_ratio": ratios["large_upload"],
            "restore_ratio": ratios["large_restore"],
            "round_trips_ms": round_trips,
            "first_snapshot_bytes": first_bytes,
            "second_snapshot_bytes": second_bytes,
            "second_fraction": second_fraction,
        },
    )
    return 0


def measure_round_trips(server: Any, snapshot: Path) -> dict[str, float]:
    """Median milliseconds of the per-snapshot round trips our push and restore add to the transfers."""
    from archive.manifest import MANIFEST_NAME
    from archive.stores import SnapshotRef, open_store

    site, kind, snapshot_id = snapshot.parts[-3:]
    store = open_store(server.archive_url(f"roundtrips-{uuid.uuid4().hex[:8]}"))
    manifest = (snapshot / MANIFEST_NAME).read_bytes()
    puts, gets, lists = [], [], []
    for n in range(ROUND_TRIP_SAMPLES):
        # A fresh snapshot id each time: the conditional PUT must create, as a real commit does.
        ref = SnapshotRef(snapshot_id=f"{snapshot_id[:-6]}{n:06d}", site=site, kind=kind)
        puts.append(timed(lambda ref=ref: store.put_bytes_if_absent(ref.key(MANIFEST_NAME), manifest)))
        gets.append(timed(lambda ref=ref: store.get_bytes(ref.key(MANIFEST_NAME))))
        lists.append(timed(lambda ref=ref: list(store.list_keys(ref.prefix + "/"))))
    return {
        "put_manifest_ms": statistics.median(puts) * 1000,
        "get_manifest_ms": statistics.median(gets) * 1000,
        "list_keys_ms": statistics.median(lists) * 1000,
    }


def run_transfers(server: Any, work: Path, snapshot: Path, repeat: int, label: str) -> dict[str, dict[str, Any]]:
    import boto3

    from archive.restore import restore_snapshot
    from archive.spool import push_all
    from archive.stores import SnapshotRef, open_store

    site, kind, snapshot_id = snapshot.parts[-3:]
    files = sorted(p for p in snapshot.iterdir() if p.is_file())
    total = sum(p.stat().st_size for p in files)
    client = boto3.client("s3")  # the same endpoint and credentials, from the same variables
    times: dict[str, list[float]] = {name: [] for name in ("push", "upload_file", "restore", "download_file")}
    ref = SnapshotRef(snapshot_id=snapshot_id, site=site, kind=kind)
    for i in range(repeat):
        prefix = f"{label}/run{i}"
        # One archive per run for both snapshots: the small one's revisits refer to
        # the large one, and a push waits until what it refers to is committed.
        store = open_store(server.archive_url(f"ours/run{i}"))
        spool = work / f"spool-{label}-{i}"
        shutil.copytree(snapshot, spool / site / kind / snapshot_id)

        def ours_push(store: Any = store, spool: Path = spool) -> None:
            results = push_all(store, spool, progress=False)
            if not results or not all(r.ok for r in results):
                raise RuntimeError(f"push failed: {results}")

        def ours_restore(store: Any = store, i: int = i) -> None:
            restore_snapshot(store, ref, work / f"restore-{label}-{i}", progress=False)

        def plain_upload(prefix: str = prefix) -> None:
            for path in files:
                client.upload_file(str(path), server.bucket, f"plain/{prefix}/{path.name}")

        def plain_download(prefix: str = prefix, i: int = i) -> None:
            out = work / f"download-{label}-{i}"
            out.mkdir()
            for path in files:
                client.download_file(server.bucket, f"plain/{prefix}/{path.name}", str(out / path.name))

        uploads: list[tuple[str, Callable[[], None]]] = [("push", ours_push), ("upload_file", plain_upload)]
        downloads: list[tuple[str, Callable[[], None]]] = [("restore", ours_restore), ("download_file", plain_download)]
        # Alternate which side goes first, so none always meets a warmer server.
        if i % 2:
            uploads.reverse()
            downloads.reverse()
        for name, func in uploads:
            times[name].append(timed(func))
        for name, func in downloads:
            times[name].append(timed(func))
        for leftover in (work / f"restore-{label}-{i}", work / f"download-{label}-{i}", spool):
            shutil.rmtree(leftover, ignore_errors=True)
    mb = total / 1024**2

    def pair(ours: str, plain: str) -> dict[str, Any]:
        o, p = min(times[ours]), min(times[plain])
        return {
            "ours_s": o,
            "ours_mb_s": mb / o,
            "boto3_s": p,
            "boto3_mb_s": mb / p,
            "ours_runs": times[ours],
            "boto3_runs": times[plain],
        }

    return {
        "bytes": {"total": total, "files": len(files)},
        "upload": pair("push", "upload_file"),
        "restore": pair("restore", "download_file"),
    }


if __name__ == "__main__":
    raise SystemExit(main())

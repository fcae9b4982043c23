"""Peak RSS of the full articles crawl (all pipelines, WARC, local archive push) as the site grows.

Each size gets its own sample site process and a crawl child with fresh state,
started at the sitemap so every article is fetched; peak RSS is the sum of
the peaks of the crawl process and its sidecar process (item stages and
snapshot files), each its own ru_maxrss. The target compares the largest size with the
one ten times smaller. ``--tracemalloc`` re-runs the largest size with a
tracemalloc sampler in the child and prints what holds the memory at its peak.

    python bench/memory.py [--quick] [--sizes 1000,10000,100000] [--tracemalloc] [--json FILE]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    WORKER_RSS_STATS,
    SampleSiteProcess,
    Table,
    crawl_child,
    total_peak_rss_mb,
    verdict,
    write_json,
    write_sample_profile,
)

TARGET_GROWTH = 1.5


def measure(root: Path, articles: int, *, tracemalloc_to: Path | None = None) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(dir=root))
    try:
        with SampleSiteProcess(articles) as site:
            write_sample_profile(work / "sites", site.base_url, articles=articles)
            result, summary = crawl_child(
                work,
                start_urls=[f"{site.base_url}/sitemap.xml"],
                archive=str(work / "archive"),
                tracemalloc_to=tracemalloc_to,
                timeout=7200,
            )
        result.check(f"crawl of {articles} articles")
        pages = int(summary.get("pages", 0))
        stats = summary.get("stats", {})
        return {
            "articles": articles,
            "pages": pages,
            "items": int(summary.get("items", 0)),
            "snapshot_state": summary.get("snapshot_state"),
            "wall_seconds": result.wall_seconds,
            "pages_per_second": pages / result.wall_seconds,
            "max_rss_mb": total_peak_rss_mb(result, summary),
            "crawl_process_mb": int(summary.get("crawl_process_max_rss_kb") or 0) / 1024,
            "sidecar_mb": int(stats.get(WORKER_RSS_STATS[0]) or 0) / 1024,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes 300, 1,000 and 3,000")
    parser.add_argument(
        "--sizes", help="comma-separated article counts (default 1000,10000,100000)"
    )
    parser.add_argument(
        "--tracemalloc", action="store_true", help="also find what holds memory at the largest size"
    )
    parser.add_argument(
        "--tracemalloc-articles",
        type=int,
        metavar="N",
        help="site size of the tracemalloc run (default: the largest size)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    else:
        sizes = [300, 1_000, 3_000] if args.quick else [1_000, 10_000, 100_000]

    rows: list[dict[str, Any]] = []
    tracemalloc_report = ""
    with tempfile.TemporaryDirectory(prefix="nv-mem-") as tmp:
        root = Path(tmp)
        for articles in sizes:
            rows.append(measure(root, articles))
            print(
                f"  {articles:,} articles: {rows[-1]['max_rss_mb']:.0f} MB in {rows[-1]['wall_seconds']:.0f} s",
                file=sys.stderr,
            )
        if args.tracemalloc:
            report = root / "tracemalloc.txt"
            measure(root, args.tracemalloc_articles or sizes[-1], tracemalloc_to=report)
            tracemalloc_report = report.read_text(encoding="utf-8")

    table = Table(
        [
            "articles", "pages", "items", "snapshot", "wall s", "pages/s",
            "crawl MB", "sidecar MB", "peak RSS MB (sum)", "x previous",
        ]
    )
    for i, row in enumerate(rows):
        growth = row["max_rss_mb"] / rows[i - 1]["max_rss_mb"] if i else 1.0
        row["growth_vs_previous"] = growth
        table.add(
            row["articles"],
            row["pages"],
            row["items"],
            row["snapshot_state"],
            row["wall_seconds"],
            row["pages_per_second"],
            row["crawl_process_mb"],
            row["sidecar_mb"],
            row["max_rss_mb"],
            growth,
        )
    print("peak RSS of the full crawl (+ local archive push), sitemap start, no delay")
    print(table.render())
    growth = rows[-1]["max_rss_mb"] / rows[-2]["max_rss_mb"] if len(rows) > 1 else 1.0
    factor = rows[-1]["articles"] / rows[-2]["articles"] if len(rows) > 1 else 1
    print(
        f"RSS at {rows[-1]['articles']:,} / RSS at {rows[-2]['articles'] if len(rows) > 1 else '-':,} articles ({factor:.0f}x the site): "
        f"{growth:.2f}  target < {TARGET_GROWTH}: {verdict(growth < TARGET_GROWTH)}"
    )
    if tracemalloc_report:
        print("\nwhat holds memory at the peak (tracemalloc):")
        print(tracemalloc_report)
    write_json(
        args.json,
        {
            "sizes": rows,
            "growth": growth,
            "target": TARGET_GROWTH,
            "met": growth < TARGET_GROWTH,
            "tracemalloc": tracemalloc_report,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

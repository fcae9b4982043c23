"""Crawl throughput: the full articles crawl vs the same spider with nothing of ours after parsing.

Full: every project pipeline (clean, validate, dedupe, change tracking, items
writer), the WARC recorder, the snapshot extension and the push to a local
archive. Bare: the same spider, downloader and settings with ITEM_PIPELINES,
the WARC recorder and the snapshot extension off and no archive. Both crawl
the same sample site (its own child process) from its sitemap, with no delay
and the same concurrency; each side runs ``--repeat`` times, interleaved, and
the best run counts (other load on the machine only ever slows a run down).
A separate profiled full run (pyinstrument) gives the top costs of the crawl's
own process; CPU of the sidecar process (item stages and snapshot files)
is reported beside it.

    python bench/crawl_throughput.py [--quick] [--articles N] [--json FILE] [--profile FILE]
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    ChildResult,
    SampleSiteProcess,
    Table,
    crawl_child,
    total_peak_rss_mb,
    verdict,
    write_json,
    write_sample_profile,
)

TARGET_RATIO = 0.90
# CPU per 1,000 pages of the full crawl over the bare one's, before the single
# sidecar and its cheaper stages (7.2 vs 4.3 s, measured in one run): the
# full crawl's own cost, comparable across machines that run at other speeds.
EARLIER_CPU_FACTOR = 7.2 / 4.3


def one_run(
    root: Path, base_url: str, articles: int, *, bare: bool, profile_to: Path | None = None
) -> tuple[ChildResult, dict[str, Any]]:
    """A crawl with fresh state, spool and archive dirs."""
    work = Path(tempfile.mkdtemp(dir=root))
    write_sample_profile(work / "sites", base_url, articles=articles)
    archive = None if bare else str(work / "archive")
    result, summary = crawl_child(
        work,
        start_urls=[f"{base_url}/sitemap.xml"],
        archive=archive,
        bare=bare,
        profile_to=profile_to,
    )
    result.check("bare crawl" if bare else "full crawl")
    shutil.rmtree(work, ignore_errors=True)
    return result, summary


def top_costs(profile_text: str, count: int = 10) -> list[str]:
    """The first ``count`` rows of the flat self-time list crawl_child.py writes before the tree."""
    rows: list[str] = []
    for line in profile_text.split("# call tree", 1)[0].splitlines():
        m = re.match(r"^\s*([\d.]+)\s+(\S+)\s+(\S.*)$", line)
        # Skip the idle wait in the event loop and pyinstrument's synthetic "[self]" rows.
        if m and m.group(2) not in ("[self]", "epoll.poll"):
            rows.append(f"{float(m.group(1)):7.2f} s  {m.group(2)}  {m.group(3).strip()}")
    return rows[:count]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 articles, one run per side")
    parser.add_argument("--articles", type=int, help="site size (default 10,000)")
    parser.add_argument("--repeat", type=int, help="runs per side (default 3, --quick 1)")
    parser.add_argument(
        "--profile", metavar="FILE", help="write the pyinstrument report of a full crawl here"
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the profiled run")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    articles = args.articles or (1_000 if args.quick else 10_000)
    repeat = args.repeat or (1 if args.quick else 3)

    runs: dict[str, list[tuple[ChildResult, dict[str, Any]]]] = {"bare": [], "full": []}
    profile_text = ""
    with (
        tempfile.TemporaryDirectory(prefix="nv-bench-") as tmp,
        SampleSiteProcess(articles) as site,
    ):
        root = Path(tmp)
        for i in range(repeat):
            # Alternate the order so neither side always runs on a warmer machine.
            for side in ("bare", "full") if i % 2 == 0 else ("full", "bare"):
                result, summary = one_run(root, site.base_url, articles, bare=side == "bare")
                runs[side].append((result, summary))
                print(
                    f"  {side} run {i + 1}: {summary.get('pages', 0)} pages in {result.wall_seconds:.1f} s",
                    file=sys.stderr,
                )
        if not args.no_profile:
            profile_path = Path(args.profile) if args.profile else root / "profile.txt"
            one_run(root, site.base_url, articles, bare=False, profile_to=profile_path)
            profile_text = profile_path.read_text(encoding="utf-8")

    table = Table(
        [
            "side",
            "pages",
            "items",
            "wall s",
            "pages/s",
            "crawl-only pages/s",
            "CPU s / 1,000 pages",
            "of which crawl process",
            "of which sidecar",
            "peak RSS MB (all processes)",
        ]
    )
    best: dict[str, dict[str, float]] = {}
    for side in ("bare", "full"):
        result, summary = max(runs[side], key=lambda r: r[1].get("pages", 0) / r[0].wall_seconds)
        pages = int(summary.get("pages", 0))
        elapsed = float(summary.get("stats", {}).get("elapsed_time_seconds") or result.wall_seconds)
        best[side] = {
            "pages": pages,
            "items": int(summary.get("items", 0)),
            "wall_seconds": result.wall_seconds,
            "pages_per_second": pages / result.wall_seconds,
            "crawl_pages_per_second": pages / elapsed,
            "cpu_per_1000_pages": result.cpu_seconds / pages * 1000 if pages else 0.0,
            "crawl_process_cpu_per_1000_pages": float(summary.get("crawl_process_cpu_seconds") or 0) / pages * 1000 if pages else 0.0,
            "worker_cpu_per_1000_pages": float(summary.get("worker_cpu_seconds") or 0) / pages * 1000 if pages else 0.0,
            "max_rss_mb": total_peak_rss_mb(result, summary),
        }
        b = best[side]
        table.add(
            side,
            pages,
            b["items"],
            b["wall_seconds"],
            b["pages_per_second"],
            b["crawl_pages_per_second"],
            b["cpu_per_1000_pages"],
            b["crawl_process_cpu_per_1000_pages"],
            b["worker_cpu_per_1000_pages"],
            b["max_rss_mb"],
        )
    ratio = best["full"]["pages_per_second"] / best["bare"]["pages_per_second"]
    crawl_ratio = best["full"]["crawl_pages_per_second"] / best["bare"]["crawl_pages_per_second"]
    print(
        f"crawl throughput: {articles:,}-article sample site, sitemap start, no delay, 16 per domain, best of {repeat}"
    )
    print(table.render())
    print(
        f"full / bare pages/s (end to end, incl. archive push): {ratio:.3f}  target >= {TARGET_RATIO}: {verdict(ratio >= TARGET_RATIO)}"
    )
    print(f"full / bare pages/s (crawl only, Scrapy elapsed time): {crawl_ratio:.3f}")
    cpu_factor = best["full"]["cpu_per_1000_pages"] / best["bare"]["cpu_per_1000_pages"]
    print(
        f"CPU per 1,000 pages: full {best['full']['cpu_per_1000_pages']:.1f} s, bare {best['bare']['cpu_per_1000_pages']:.1f} s:"
        f" {cpu_factor:.2f}x bare (earlier {EARLIER_CPU_FACTOR:.2f}x, 7.2 vs 4.3 s): {verdict(cpu_factor < EARLIER_CPU_FACTOR)}"
    )
    costs = top_costs(profile_text) if profile_text else []
    if costs:
        print("top 10 costs of the full crawl (pyinstrument, self time):")
        print("\n".join(costs))
    write_json(
        args.json,
        {
            "articles": articles,
            "repeat": repeat,
            "sides": best,
            "ratio": ratio,
            "crawl_only_ratio": crawl_ratio,
            "cpu_factor": cpu_factor,
            "earlier_cpu_factor": EARLIER_CPU_FACTOR,
            "target": TARGET_RATIO,
            "met": ratio >= TARGET_RATIO,
            "top_costs": costs,
            "runs": {
                side: [
                    {
                        "pages": s.get("pages"),
                        "wall_seconds": r.wall_seconds,
                        "cpu_seconds": r.cpu_seconds,
                    }
                    for r, s in rs
                ]
                for side, rs in runs.items()
            },
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

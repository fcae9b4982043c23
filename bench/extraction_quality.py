"""Extraction quality of the generic path, beside trafilatura's own extract().

The extraction dev set (bench/data/extraction-dev: 60 real article pages and
their expected bodies) is served as a static site on loopback and crawled by
`newsvault crawl` with a generic profile (start URL and article pattern only),
so the score covers the whole path a user gets: spider, extraction, cleaning.
trafilatura.extract() runs on the same pages in the same script as the baseline.
The generic extraction also runs in-process on every page, with and without its
recall guard (spiders/extract/generic.py), for the per-page time of each and the
number of pages the guard changes.

    python bench/extraction_quality.py [--json FILE] [--timing-rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from scoring import corpus_scores
from static_site import load_pages, serve_pages

DATA = HERE / "data" / "extraction-dev"
PROFILE = """\
name = "extraction-dev"

[start_urls]
front = ["{base}/"]

[articles]
url_patterns = '/pages/[0-9a-f]+\\.html'
"""


def crawl_generic(base_url: str, workdir: Path) -> dict[str, str]:
    """Crawl the static site with a generic profile; page id -> extracted body."""
    sites = workdir / "sites"
    sites.mkdir()
    (sites / "extraction-dev.toml").write_text(PROFILE.format(base=base_url), encoding="utf-8")
    output = workdir / "items.jsonl"
    env = dict(
        os.environ,
        NEWSVAULT_SITES_DIR=str(sites),
        NEWSVAULT_STATE_DIR=str(workdir / "state"),
        NEWSVAULT_CRAWL_DOWNLOAD_DELAY_SECONDS="0",
        NEWSVAULT_CRAWL_AUTOTHROTTLE="false",
        NEWSVAULT_CRAWL_CONCURRENCY_PER_DOMAIN="8",
        NEWSVAULT_CRAWL_LOG_LEVEL="WARNING",
    )
    subprocess.run(
        [sys.executable, "-m", "scheduler", "crawl", "extraction-dev", "--kind", "articles",
         "--output", str(output), "--no-archive"],
        env=env, check=True, stdout=subprocess.DEVNULL,
    )
    bodies: dict[str, str] = {}
    for line in output.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if item.get("type") == "article" and "/pages/" in item["url"]:
            page_id = item["url"].rsplit("/", 1)[-1].removesuffix(".html")
            bodies[page_id] = item.get("body") or ""
    return bodies


def trafilatura_baseline(pages: dict[str, bytes]) -> dict[str, str]:
    import trafilatura

    return {page_id: trafilatura.extract(html.decode("utf-8")) or "" for page_id, html in pages.items()}


def time_generic(pages: dict[str, bytes], rounds: int) -> dict[str, object]:
    """Per-page generic extraction time without and with the recall guard; pages it changes.

    The rounds alternate the two variants; the fastest round of each counts,
    so a busy machine skews the ratio less.
    """
    from parsel import Selector

    from spiders.extract.generic import generic_extract

    docs = {page_id: (html.decode("utf-8"), f"http://127.0.0.1/pages/{page_id}.html") for page_id, html in pages.items()}
    best = {False: float("inf"), True: float("inf")}
    bodies: dict[bool, dict[str, list[str]]] = {False: {}, True: {}}
    modes: dict[str, str] = {}
    for _ in range(max(rounds, 1)):
        for guard in (False, True):
            started = time.perf_counter()
            for page_id, (text, url) in docs.items():
                # Parsed first, as the spider does: the guard measures the parsed page.
                result = generic_extract(Selector(text=text, base_url=url), url, recall_guard=guard)
                bodies[guard][page_id] = result.body
                if guard:
                    modes[page_id] = result.mode
            best[guard] = min(best[guard], time.perf_counter() - started)
    changed = sorted(page_id for page_id in docs if bodies[False][page_id] != bodies[True][page_id])
    per_page = {guard: 1000 * seconds / len(docs) for guard, seconds in best.items()}
    return {
        "ms_per_page_without_guard": per_page[False],
        "ms_per_page_with_guard": per_page[True],
        "time_ratio": per_page[True] / per_page[False],
        "pages_changed_by_guard": changed,
        "pages_using_recall": sorted(page_id for page_id, mode in modes.items() if mode == "recall"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--timing-rounds", type=int, default=3, metavar="N",
                        help="rounds of in-process generic extraction timing (default 3)")
    args = parser.parse_args(argv)

    truth = {k: v["articleBody"] for k, v in json.loads((DATA / "ground-truth.json").read_text()).items()}
    pages = load_pages(DATA / "html")
    with tempfile.TemporaryDirectory() as tmp, serve_pages(pages) as base_url:
        started = time.perf_counter()
        ours = crawl_generic(base_url, Path(tmp))
        crawl_seconds = time.perf_counter() - started
    baseline = trafilatura_baseline(pages)
    timing = time_generic(pages, args.timing_rounds)

    rows = {
        "newsvault generic crawl": corpus_scores(ours, truth),
        "trafilatura extract()": corpus_scores(baseline, truth),
    }
    print(f"extraction dev set: {len(truth)} pages, {len(ours)} extracted by the crawl in {crawl_seconds:.1f} s")
    print(f"{'path':<26} {'precision':>9} {'recall':>7} {'F1':>6}")
    for name, score in rows.items():
        print(f"{name:<26} {score['precision']:>9.3f} {score['recall']:>7.3f} {score['f1']:>6.3f}")
    ratio = rows["newsvault generic crawl"]["f1"] / rows["trafilatura extract()"]["f1"]
    print(f"F1 ratio newsvault / trafilatura: {ratio:.3f} (target >= 1.000)")
    changed = timing["pages_changed_by_guard"]
    assert isinstance(changed, list)
    print(
        f"generic extraction in-process: {timing['ms_per_page_without_guard']:.1f} ms/page without the recall guard, "
        f"{timing['ms_per_page_with_guard']:.1f} ms/page with it (ratio {timing['time_ratio']:.2f}); "
        f"the guard changed {len(changed)} of {len(pages)} pages"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"scores": rows, "f1_ratio": ratio, "generic_timing": timing}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

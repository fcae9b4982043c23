"""Catalog benchmark: rebuild rate from a local archive, history and search latency at a million versions,
and the catalog update's share of a crawl's time.

The synthetic archive is built from sample-site articles: ``--base`` articles
of the model (title, lead, first paragraphs), each edited into
``--versions / --base`` versions (a sentence changed per version), written as
real committed snapshots (items only, one snapshot per round of edits) into a
local archive by the project's own Staging and push (by default 100,000
articles of ten versions each). Then:

- rebuild: ``catalog.ingest.rebuild`` from that archive alone (verification
  included), in items per second;
- history: ``catalog.query.history`` of random URLs (median, p95);
- search: ``catalog.query.search`` for words and phrases of the sample site's
  banks (median, p95);
- crawl share: a real crawl of the sample site (child process), then the time
  to catalogue its snapshot, as a share of the crawl's wall time.

    python bench/catalog.py [--quick] [--versions 1000000] [--base 100000] [--json FILE]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from common import (
    FAST_CRAWL_ENV,
    PYTHON,
    SampleSiteProcess,
    Table,
    child_env,
    run_child,
    write_json,
    write_sample_profile,
)

SAMPLES = 200


def build_archive(archive: Path, spool: Path, versions: int, base: int, seed: int) -> int:
    """Committed snapshots of ``versions`` article versions (``base`` articles); the items written."""
    from archive.ids import new_snapshot_id, utc_iso
    from archive.spool import push_all
    from archive.staging import Staging
    from archive.stores import open_store
    from samplesite import SampleSite

    model = SampleSite(max(base, 50), seed=seed)
    texts = []
    for article_id in range(1, base + 1):
        article = model.article(article_id)
        texts.append((model.canonical_url(article_id), article.title, article.paragraphs[:3], article.authors))
    rounds = max(1, versions // base)
    store = open_store(str(archive))
    written = 0
    for round_ in range(rounds):
        when = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=round_)
        staging = Staging(spool, "sample", "articles", warc_max_bytes=10**9, index=None,
                          snapshot_id=new_snapshot_id(when), started=when)
        for url, title, paragraphs, authors in texts:
            body = list(paragraphs)
            body[round_ % len(body)] += f" Revision {round_} of this paragraph."
            staging.write_item({
                "type": "article", "site": "sample", "url": url, "canonical_url": url, "title": title,
                "lead": paragraphs[0][:200], "body": "\n\n".join(body), "authors": list(authors), "tags": [],
                "fetched_at": utc_iso(when), "views": round_, "change": "updated",
                "published_at": "2025-12-31T12:00:00Z", "content_hash": f"{round_}",
            })
            written += 1
        staging.finalise(finish_reason="finished")
        push_all(store, spool, progress=False)
        print(f"  snapshot {round_ + 1}/{rounds} ({written:,} items)", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    return written


def timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def measure_queries(path: Path, archive: str, seed: int) -> dict[str, Any]:
    from catalog.db import Catalog
    from catalog.query import history, search
    from samplesite import banks

    rng = random.Random(seed)
    with Catalog(path, archive) as catalog:
        urls = [row[0] for row in catalog.db.execute("SELECT DISTINCT canonical_url FROM versions")]
        history_ms = [timed(lambda url=url: history(catalog, url)) for url in rng.sample(urls, min(SAMPLES, len(urls)))]
        words = sorted({w.strip(".,:;").lower() for phrase in banks.EN_SUBJECTS + banks.EN_VERBS for w in phrase.split()
                        if len(w) > 4})
        queries = [f"\"{rng.choice(words)}\"" for _ in range(SAMPLES // 2)]
        queries += [f'"{rng.choice(banks.EN_SUBJECTS).lower()}"' for _ in range(SAMPLES // 2)]
        search_ms = [timed(lambda q=q: search(catalog, q)) for q in queries]
        count = catalog.db.execute("SELECT COUNT(*) FROM versions").fetchone()[0]
    return {
        "versions_in_catalog": count,
        "history_ms_median": statistics.median(history_ms),
        "history_ms_p95": statistics.quantiles(history_ms, n=20)[-1],
        "search_ms_median": statistics.median(search_ms),
        "search_ms_p95": statistics.quantiles(search_ms, n=20)[-1],
    }


def crawl_share(work: Path, articles: int) -> dict[str, Any]:
    """A real crawl's wall time, and the time to catalogue its snapshot again, from its committed files."""
    from archive.stores import open_store
    from catalog.db import Catalog
    from catalog.ingest import ingest_from_store

    with SampleSiteProcess(articles) as site:
        write_sample_profile(work / "sites", site.base_url, articles=articles)
        env = child_env({**FAST_CRAWL_ENV, "NEWSVAULT_SITES_DIR": str(work / "sites"),
                         "NEWSVAULT_STATE_DIR": str(work / "crawl-state"), "NEWSVAULT_ARCHIVE": str(work / "crawl-archive")})
        result = run_child([PYTHON, "-m", "scheduler", "crawl", "sample", "--start-url", f"{site.base_url}/sitemap.xml",
                            "--no-progress"], env=env, cwd=work).check("crawl")
    store = open_store(str(work / "crawl-archive"))
    (ref,) = store.list_snapshots()
    with Catalog(work / "share.sqlite", str(work / "crawl-archive")) as catalog:
        started = time.perf_counter()
        ingest_from_store(catalog, store, ref)
        ingest_seconds = time.perf_counter() - started
    return {"articles": articles, "crawl_seconds": result.wall_seconds, "catalog_seconds": ingest_seconds,
            "share": ingest_seconds / result.wall_seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 versions, a 300-article crawl")
    parser.add_argument("--versions", type=int, help="article versions in the catalog (default 1,000,000)")
    parser.add_argument("--base", type=int, help="distinct articles (default: a tenth of --versions)")
    parser.add_argument("--crawl-articles", type=int, help="the crawl of the share measurement (default 2,000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    versions = args.versions or (100_000 if args.quick else 1_000_000)
    # Ten versions an article: many edits for news, few enough to be what a catalog holds.
    args.base = args.base or max(50, versions // 10)
    crawl_articles = args.crawl_articles or (300 if args.quick else 2_000)
    from archive.stores import open_store
    from catalog.ingest import rebuild

    with tempfile.TemporaryDirectory(prefix="nv-catalog-") as tmp:
        work = Path(tmp)
        print(f"building an archive of {versions:,} article versions ...", file=sys.stderr)
        items = build_archive(work / "archive", work / "spool", versions, args.base, args.seed)
        started = time.perf_counter()
        report = rebuild(work / "catalog.sqlite", str(work / "archive"), open_store(str(work / "archive")))
        rebuild_seconds = time.perf_counter() - started
        results: dict[str, Any] = {
            "versions": versions, "base_articles": args.base, "items": items, "snapshots": report.ingested,
            "rebuild_seconds": rebuild_seconds, "rebuild_items_per_second": items / rebuild_seconds,
            "catalog_mb": (work / "catalog.sqlite").stat().st_size / 1e6,
        }
        results.update(measure_queries(work / "catalog.sqlite", str(work / "archive"), args.seed))
        results["crawl"] = crawl_share(work, crawl_articles)
    table = Table(["measure", "value", "target"])
    table.add("versions in the catalog", f"{results['versions_in_catalog']:,}", "-")
    table.add("rebuild from a local archive (verify + ingest)", f"{results['rebuild_items_per_second']:,.0f} items/s", "-")
    table.add("catalog file", f"{results['catalog_mb']:,.0f} MB", "-")
    table.add("history of one URL, median / p95", f"{results['history_ms_median']:.1f} / {results['history_ms_p95']:.1f} ms", "< 20 ms")
    table.add("search, median / p95", f"{results['search_ms_median']:.1f} / {results['search_ms_p95']:.1f} ms", "p95 < 200 ms")
    crawl = results["crawl"]
    table.add(f"catalog update of a {crawl['articles']:,}-article crawl", f"{crawl['catalog_seconds']:.2f} s of "
              f"{crawl['crawl_seconds']:.1f} s = {crawl['share']:.3f} of its time", "-")
    print(table.render())
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

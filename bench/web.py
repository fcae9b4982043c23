"""Web view benchmark: server time of the dashboard and of an article page when the catalog holds a million versions.

The catalog is the synthetic one of ``bench/catalog.py`` (its ``build_archive``:
``--base`` sample-site articles, each edited into ``--versions / --base``
versions, written as committed snapshots into a local archive by the project's
own Staging and push), rebuilt by ``catalog.ingest.rebuild`` into
``<state>/catalog.sqlite``; the run history (``<state>/history.sqlite``) gets
``--runs`` rows of the bundled jobs, some of them problems, so the dashboard's
lists have work to do. Then the web view is served in a thread of this process
(``web.server.WebServer`` on 127.0.0.1, port 0) and timed from here with urllib:

- baseline: ``GET /static/style.css``, the server's floor (a connection, the
  middleware, a small file);
- dashboard: ``GET /``;
- article: ``GET /article?url=...`` for ``--urls`` canonical URLs drawn from
  the catalog's versions with a fixed seed (all versions, a diff of the last two).

Each page is requested ``--repeat`` times (per URL for the article), the
pages interleaved round by round; one untimed request per page first. The
figures are the wall time of a whole GET (connect, request, response read),
median and p95, and their ratio to the baseline's. Target: p95 < 100 ms for
the dashboard and the article page. A second table times the pages' parts
in-process (the same calls the handlers make), to show where the time goes.

Building a million versions takes a while: ``--keep DIR`` builds into DIR and
keeps it, and a later run with the same DIR reuses what is there.

    python bench/web.py [--quick] [--versions 1000000] [--base 100000] [--repeat 30] [--keep DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
# The repository first: this file is bench/web.py, and the script's folder
# (sys.path[0]) would otherwise shadow the `web` package (and bench/catalog.py
# the `catalog` package).
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from common import Table, verdict, write_json

TARGET_MS = 100.0
BUILD_INFO = "web-bench.json"
# Shares of the run history's statuses (the rest are ok).
_PROBLEM_SHARES = (("degraded", 0.05), ("failed", 0.04), ("missed", 0.03), ("partial", 0.02),
                   ("timeout", 0.01), ("skipped-overlap", 0.01))


def _catalog_bench() -> Any:
    """bench/catalog.py as a module (``import catalog`` is the package)."""
    spec = importlib.util.spec_from_file_location("bench_catalog", HERE / "catalog.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _config(work: Path) -> Any:
    from newsvault.config import load_config

    return load_config(None, env={}, overrides={"state.dir": str(work / "state"),
                                                "archive.url": str(work / "archive")})


# --- building ---------------------------------------------------------------------
def build(work: Path, versions: int, base: int, seed: int) -> dict[str, Any]:
    """The archive and its catalog in ``work`` (or what an earlier run left there)."""
    from archive.stores import open_store
    from catalog.ingest import rebuild

    config = _config(work)
    info_path = work / BUILD_INFO
    if info_path.exists() and config.catalog_path.exists():
        info = json.loads(info_path.read_text(encoding="utf-8"))
        if (info["versions"], info["base"], info["seed"]) != (versions, base, seed):
            print(f"note: reusing the catalog in {work} built with --versions {info['versions']:,} --base "
                  f"{info['base']:,} --seed {info['seed']} (not the ones asked for)", file=sys.stderr)
        else:
            print(f"reusing the catalog in {work}", file=sys.stderr)
        info["reused"] = True
        return info
    archive = str(work / "archive")
    print(f"building an archive of {versions:,} article versions ({base:,} articles) in {work} ...",
          file=sys.stderr)
    started = time.perf_counter()
    # Its own spool: the config's spool (<state>/spool) stays empty, as after a good push.
    items = _catalog_bench().build_archive(work / "archive", work / "build-spool", versions, base, seed)
    build_seconds = time.perf_counter() - started

    def progress(done: int, total: int, snapshot_id: str) -> None:
        print(f"  catalogued snapshot {done}/{total} ({snapshot_id}) after {time.perf_counter() - started:,.0f} s",
              file=sys.stderr)

    print("rebuilding the catalog from it ...", file=sys.stderr)
    started = time.perf_counter()
    report = rebuild(config.catalog_path, archive, open_store(archive), progress=progress)
    info = {"versions": versions, "base": base, "seed": seed, "items": items, "snapshots": report.ingested,
            "archive_build_seconds": build_seconds, "rebuild_seconds": time.perf_counter() - started,
            "reused": False}
    info_path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def fill_history(state_dir: Path, runs: int, snapshot_ids: list[str], seed: int) -> int:
    """Up to ``runs`` rows in the run history: hourly runs of the bundled jobs, a few problems; the rows now there."""
    from scheduler.history import RunRecord, iso, open_history

    history = open_history(state_dir)
    try:
        have = len(history.list_runs(limit=None))
        rng = random.Random(seed)
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        for n in range(have, runs):
            job_id = ("sample:articles", "sample:discussions")[n % 2]
            site, kind = job_id.split(":")
            planned = now - timedelta(hours=runs - n)
            draw, status = rng.random(), "ok"
            for name, share in _PROBLEM_SHARES:
                if draw < share:
                    status = name
                    break
                draw -= share
            ran = status not in ("missed", "skipped-overlap")
            started = planned + timedelta(seconds=rng.randint(0, 5))
            finished = started + timedelta(seconds=rng.randint(30, 900))
            history.record(RunRecord(
                run_id=f"{planned:%Y%m%dT%H%M%SZ}-{n:06x}", job_id=job_id, site=site, kind=kind,
                trigger="schedule", status=status, planned_at=iso(planned),
                started_at=iso(started) if ran else None, finished_at=iso(finished) if ran else None,
                counts={"pages": rng.randint(100, 2000), "items": rng.randint(50, 1000)} if ran else {},
                snapshot_id=rng.choice(snapshot_ids) if ran and snapshot_ids else None,
                snapshot_state="committed" if ran else None,
                error={"failed": "crawl exited with 1", "timeout": "ran past its timeout",
                       "missed": "the daemon was not running", "partial": "closespider_pagecount",
                       "skipped-overlap": "the previous run was still running"}.get(status),
            ))
        return len(history.list_runs(limit=None))
    finally:
        history.close()


# --- measuring --------------------------------------------------------------------
def _get(url: str) -> tuple[float, int, bytes]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as resp:
        body = resp.read()
        status = resp.status
    return (time.perf_counter() - started) * 1000, status, body


def _stats(samples: list[float]) -> dict[str, float]:
    return {"requests": len(samples), "median_ms": statistics.median(samples),
            "p95_ms": statistics.quantiles(samples, n=20)[-1] if len(samples) > 1 else samples[0],
            "max_ms": max(samples)}


def measure_http(base_url: str, article_urls: list[str], repeat: int) -> dict[str, Any]:
    """Wall time of GETs of the three pages, interleaved round by round."""
    pages = {"baseline": [f"{base_url}/static/style.css"], "dashboard": [f"{base_url}/"],
             "article": [f"{base_url}/article?{urlencode({'url': u})}" for u in article_urls]}
    markers = {"baseline": b"", "dashboard": b"<h1>Dashboard</h1>", "article": b"data-version"}
    first: dict[str, float] = {}
    for page, urls in pages.items():  # untimed warm-up, but its time is kept (cold caches, templates)
        for url in urls:
            ms, status, body = _get(url)
            if status != 200 or markers[page] not in body or b"data-problem" in body:
                raise RuntimeError(f"GET {url} gave {status}: {body[:300]!r}")
            first.setdefault(page, ms)
    samples: dict[str, list[float]] = {page: [] for page in pages}
    per_url: dict[str, list[float]] = {url: [] for url in article_urls}
    for _round in range(repeat):
        for page, urls in pages.items():
            for n, url in enumerate(urls):
                ms, status, _body = _get(url)
                if status != 200:
                    raise RuntimeError(f"GET {url} gave {status}")
                samples[page].append(ms)
                if page == "article":
                    per_url[article_urls[n]].append(ms)
    out: dict[str, Any] = {page: {**_stats(values), "first_ms": first[page]} for page, values in samples.items()}
    out["article"]["per_url_median_ms"] = {u: statistics.median(v) for u, v in per_url.items()}
    return out


def _median_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure_parts(config: Any, article_urls: list[str], repeat: int) -> dict[str, float]:
    """The calls each page's handler makes, timed in this thread with their own context (median ms)."""
    from catalog import diff as catalog_diff
    from catalog import query
    from web.data import PROBLEM_STATUSES, RECENT_RUNS, WebContext, _stored_next_runs

    ctx = WebContext(config)
    try:
        cat = ctx.require_catalog()
        parts = {
            "dashboard: ctx.dashboard() (all of it)": lambda: ctx.dashboard(),
            "dashboard: collect_jobs (site profiles)": lambda: ctx.jobs(),
            "dashboard: next runs (job store)": lambda: _stored_next_runs(config),
            "dashboard: history.last_runs": lambda: ctx.history.last_runs(),
            "dashboard: history.list_runs (recent)": lambda: ctx.history.list_runs(limit=RECENT_RUNS),
            "dashboard: history.list_runs (problems)":
                lambda: ctx.history.list_runs(statuses=PROBLEM_STATUSES, limit=RECENT_RUNS),
            "dashboard: archive_health.report": lambda: ctx.archive_health.report(),
            "dashboard: catalog_summary (snapshots table)": lambda: ctx.catalog_summary(),
        }
        out = {name: _median_ms(fn, repeat) for name, fn in parts.items()}

        def each(fn: Callable[[str], Any]) -> Callable[[], Any]:
            return lambda: [fn(url) for url in article_urls]

        def article_diff(url: str) -> Any:
            found = query.versions(cat, url)
            older, newer = query.pick_version(found, None, -2 if len(found) > 1 else -1), found[-1]
            catalog_diff.paragraphs(newer.fields.get("body"))
            return catalog_diff.diff(older, newer) if older.number != newer.number else None

        n = len(article_urls)
        out["article: query.versions"] = _median_ms(each(lambda u: query.versions(cat, u)), repeat) / n
        out["article: query.history (versions again + changed fields)"] = \
            _median_ms(each(lambda u: query.history(cat, u)), repeat) / n
        out["article: versions + diff of the last two"] = _median_ms(each(article_diff), repeat) / n
        return out
    finally:
        ctx.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 versions")
    parser.add_argument("--versions", type=int, help="article versions in the catalog (default 1,000,000)")
    parser.add_argument("--base", type=int, help="distinct articles (default: a tenth of --versions, 100,000)")
    parser.add_argument("--repeat", type=int, default=30, help="requests per page (per URL for articles)")
    parser.add_argument("--urls", type=int, default=10, help="random article URLs to request")
    parser.add_argument("--runs", type=int, default=1000, help="rows in the run history")
    parser.add_argument("--keep", metavar="DIR", help="build into DIR and keep it; reuse what an earlier run left")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    versions = args.versions or (20_000 if args.quick else 1_000_000)
    base = args.base or max(50, versions // 10)
    if args.repeat < 2:
        parser.error("--repeat must be at least 2 (a p95 needs samples)")

    tmp = None
    if args.keep:
        work = Path(args.keep).resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="nv-web-bench-")
        work = Path(tmp.name)
    try:
        results = run(work, versions, base, args)
    finally:
        if tmp is not None:
            tmp.cleanup()
    http = results["http"]
    floor = http["baseline"]["median_ms"]
    table = Table(["page", "requests", "median ms", "p95 ms", "median / baseline", "p95 / baseline",
                   "first request ms", "target"])
    labels = {"baseline": "baseline: GET /static/style.css", "dashboard": "dashboard: GET /",
              "article": f"article: GET /article?url=... ({len(results['article_urls'])} URLs)"}
    for page in ("baseline", "dashboard", "article"):
        row = http[page]
        table.add(labels[page], row["requests"], f"{row['median_ms']:.1f}", f"{row['p95_ms']:.1f}",
                  f"{row['median_ms'] / floor:.1f}x", f"{row['p95_ms'] / floor:.1f}x", f"{row['first_ms']:.1f}",
                  "-" if page == "baseline" else f"p95 < {TARGET_MS:.0f} ms")
    parts = Table(["part (in-process, no HTTP)", "median ms"])
    for name, ms in results["parts_ms"].items():
        parts.add(name, f"{ms:.2f}")
    catalog = results["catalog"]
    print(f"catalog: {catalog['versions_in_catalog']:,} versions of {catalog['articles']:,} articles in "
          f"{catalog['snapshots']:,} snapshots ({catalog['catalog_mb']:,.0f} MB); run history: {results['history_rows']:,} "
          f"rows")
    print()
    print(table.render())
    print()
    print(parts.render())
    print()
    ok = http["dashboard"]["p95_ms"] < TARGET_MS and http["article"]["p95_ms"] < TARGET_MS
    results["verdict"] = verdict(ok)
    print(f"verdict: dashboard p95 {http['dashboard']['p95_ms']:.1f} ms and article p95 {http['article']['p95_ms']:.1f} ms"
          f" at {catalog['versions_in_catalog']:,} versions, target < {TARGET_MS:.0f} ms each: {verdict(ok)}")
    write_json(args.json, results)
    return 0


def run(work: Path, versions: int, base: int, args: argparse.Namespace) -> dict[str, Any]:
    from catalog.db import Catalog
    from web.server import WebServer

    info = build(work, versions, base, args.seed)
    config = _config(work)
    with Catalog(config.catalog_path, config.archive.url, create=False) as cat:
        count = cat.db.execute("SELECT COUNT(*) FROM versions").fetchone()[0]
        urls = sorted(row[0] for row in cat.db.execute("SELECT DISTINCT canonical_url FROM versions"))
        snapshot_ids = sorted(cat.snapshot_ids())
    history_rows = fill_history(config.state_dir, args.runs, snapshot_ids, args.seed)
    article_urls = random.Random(args.seed).sample(urls, min(args.urls, len(urls)))
    catalog = {"versions_in_catalog": count, "articles": len(urls), "snapshots": len(snapshot_ids),
               "catalog_mb": config.catalog_path.stat().st_size / 1e6}
    server = WebServer(config, host="127.0.0.1", port=0).start()
    try:
        print(f"timing {server.url}: {args.repeat} rounds of the baseline, the dashboard and "
              f"{len(article_urls)} article pages ...", file=sys.stderr)
        http = measure_http(server.url, article_urls, args.repeat)
    finally:
        server.stop()
    print("timing the pages' parts in-process ...", file=sys.stderr)
    parts_ms = measure_parts(config, article_urls, max(5, args.repeat // 3))
    return {"build": info, "work_dir": str(work) if args.keep else None, "catalog": catalog,
            "history_rows": history_rows, "repeat": args.repeat, "article_urls": article_urls,
            "target_ms": TARGET_MS, "http": http, "parts_ms": parts_ms}


if __name__ == "__main__":
    raise SystemExit(main())

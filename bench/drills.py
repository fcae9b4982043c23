"""Reliability drills: killed crawls, an S3 outage mid-upload, and the sample site's fault pages.

(a) kills: a crawl + S3 archive of the sample site is SIGKILLed at ``--kills``
    seeded random moments spread over the crawl (0 to 0.8x a clean run's time
    after its staging dir appears) and the upload (every fourth kill: 0-0.4 s
    after the finished spool entry appears); ``newsvault push`` runs after each.
    Then one crawl runs to the end. Counted: snapshots half-visible in the
    store (a manifest whose files are missing: must be 0), committed snapshots
    failing verify (0), items lost (a committed items file shorter than its
    manifest's count, or a snapshot seen in the spool that is neither
    committed nor still spooled: 0), and the final crawl's items against a
    clean crawl with fresh state.
(b) S3 outage: the SeaweedFS server is stopped as soon as a crawl starts its
    upload, ``--outages`` times; after a restart and ``newsvault push``, each
    crawl's snapshot must be committed and verify.
(c) faults: a crawl from the front page (which links the fault pages) plus
    /faults/gzip-bomb and /faults/big-10mb.html must finish, count each fault
    in its stats, and keep its peak RSS bounded.

    python bench/drills.py [--quick] [--only kills,s3,faults] [--seed 7] [--json FILE]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
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
    total_peak_rss_mb,
    verdict,
    write_json,
    write_sample_profile,
)

CLI = [PYTHON, "-m", "scheduler"]
PARTIAL = ".partial"


# --- helpers ---------------------------------------------------------------------
def spool_state(spool: Path) -> tuple[set[str], set[str]]:
    """(partial ids, finished ids) in a spool dir right now."""
    partial: set[str] = set()
    finished: set[str] = set()
    if spool.is_dir():
        for entry in spool.glob("*/*/*"):
            if entry.name.endswith(PARTIAL):
                partial.add(entry.name.removesuffix(PARTIAL))
            elif entry.is_dir():
                finished.add(entry.name)
    return partial, finished


def audit_store(archive_url: str) -> dict[str, Any]:
    """Every committed snapshot: verify, items file line count vs manifest; uncommitted debris."""
    from archive.stores import SNAPSHOTS_PREFIX, open_store
    from archive.verify import load_manifest, verify_snapshot
    from newsvault.errors import IntegrityError, NewsvaultError

    store = open_store(archive_url)
    refs = store.list_snapshots()
    committed = {r.snapshot_id for r in refs}
    failing: list[str] = []
    half_visible: list[str] = []
    items_lost = 0
    statuses: dict[str, int] = {}
    for ref in refs:
        manifest = load_manifest(store, ref)
        statuses[manifest.status] = statuses.get(manifest.status, 0) + 1
        if any(not store.exists(ref.key(f.name)) for f in manifest.files):
            half_visible.append(ref.snapshot_id)
            continue
        try:
            verify_snapshot(store, ref)
        except (IntegrityError, NewsvaultError):
            failing.append(ref.snapshot_id)
            continue
        with (
            store.open(ref.key("items.jsonl.gz")) as raw,
            gzip.open(raw, "rt", encoding="utf-8") as lines,
        ):
            complete = sum(1 for line in lines if line.endswith("\n") and json.loads(line))
        items_lost += max(0, int(manifest.counts.get("items", 0)) - complete)
    prefixes = {key.rsplit("/", 1)[0] for key, _size in store.list_keys(SNAPSHOTS_PREFIX + "/")}
    debris = sorted(p for p in prefixes if p.rsplit("/", 1)[-1] not in committed)
    return {
        "committed": committed,
        "statuses": statuses,
        "failing_verify": failing,
        "half_visible": half_visible,
        "items_lost": items_lost,
        "uncommitted_prefixes": len(debris),
    }


def article_keys(path: Path) -> set[tuple[str, str]]:
    """(canonical_url, content_hash) of every article item of a JSONL feed."""
    keys: set[tuple[str, str]] = set()
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            if item.get("type") == "article":
                keys.add((item.get("canonical_url") or item["url"], item.get("content_hash", "")))
    return keys


def crawl_args(site_url: str, output: Path, summary: Path) -> list[str]:
    return [
        *CLI,
        "crawl",
        "sample",
        "--kind",
        "articles",
        "--start-url",
        f"{site_url}/sitemap.xml",
        "--output",
        str(output),
        "--json-summary",
        str(summary),
        "--no-progress",
    ]


# --- (a) kills ---------------------------------------------------------------------
def drill_kills(
    work: Path, server: Any, site: SampleSiteProcess, kills: int, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    archive = server.archive_url("kills")
    state = work / "kills-state"
    env = child_env(
        {
            **FAST_CRAWL_ENV,
            **server.env(),
            "NEWSVAULT_SITES_DIR": str(work / "sites"),
            "NEWSVAULT_STATE_DIR": str(state),
            "NEWSVAULT_ARCHIVE": archive,
        }
    )
    clean_env = {
        **env,
        "NEWSVAULT_STATE_DIR": str(work / "clean-state"),
        "NEWSVAULT_ARCHIVE": server.archive_url("clean"),
    }
    clean = run_child(
        crawl_args(site.base_url, work / "clean.jsonl", work / "clean.json"),
        env=clean_env,
        cwd=work,
    ).check("clean crawl")
    duration = clean.wall_seconds
    spool = state / "spool"
    seen_ids: set[str] = set()
    rows = []
    for i in range(kills):
        upload_phase = i % 4 == 3
        delay = rng.uniform(0, 0.4) if upload_phase else rng.uniform(0.0, duration * 0.8)
        started = time.monotonic()
        proc = subprocess.Popen(
            crawl_args(site.base_url, work / f"kill-{i}.jsonl", work / f"kill-{i}.json"),
            env=env,
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        trigger_at = started + delay
        phase = "exited first"
        _before_partial, before_finished = spool_state(spool)
        while proc.poll() is None:
            partial, finished = spool_state(spool)
            seen_ids |= partial | finished
            finished -= before_finished  # an entry an earlier push kept is not this run's upload
            now = time.monotonic()
            # Delays count from the start of the phase aimed at: the crawl (staging dir
            # exists) or the upload (finished spool entry), not from process start-up.
            if (upload_phase and not finished) or (not upload_phase and not (partial or finished)):
                trigger_at = now + delay
            if now >= trigger_at:
                phase = "upload" if finished else ("crawl" if partial else "start-up/after push")
                proc.kill()
                break
            time.sleep(0.01)
        proc.wait(600)
        killed_at = time.monotonic() - started
        push = run_child([*CLI, "push"], env=env, cwd=work)
        rows.append(
            {
                "kill": i + 1,
                "planned": "upload" if upload_phase else "random",
                "at_s": round(killed_at, 2),
                "phase": phase,
                "push_exit": push.returncode,
                "push": push.stdout.strip().replace("\n", "; ")[:120],
            }
        )
        print(
            f"  kill {i + 1}: {phase} at {rows[-1]['at_s']} s; push: {rows[-1]['push'] or '-'}",
            file=sys.stderr,
        )
    final = run_child(
        crawl_args(site.base_url, work / "final.jsonl", work / "final.json"), env=env, cwd=work
    ).check("final crawl")
    run_child([*CLI, "push"], env=env, cwd=work)
    audit = audit_store(archive)
    left_partial, left_finished = spool_state(spool)
    lost_ids = sorted(seen_ids - audit["committed"] - left_partial - left_finished)
    final_keys, clean_keys = article_keys(work / "final.jsonl"), article_keys(work / "clean.jsonl")
    return {
        "kills": rows,
        "clean_crawl_seconds": duration,
        "final_crawl_seconds": final.wall_seconds,
        "snapshots_committed": len(audit["committed"]),
        "manifest_statuses": audit["statuses"],
        "half_visible": len(audit["half_visible"]),
        "failing_verify": len(audit["failing_verify"]),
        "items_lost": audit["items_lost"],
        "snapshots_lost": len(lost_ids),
        "lost_ids": lost_ids,
        "still_spooled": len(left_partial | left_finished),
        "uncommitted_prefixes": audit["uncommitted_prefixes"],
        "final_articles": len(final_keys),
        "clean_articles": len(clean_keys),
        "final_missing": len(clean_keys - final_keys),
        "final_extra": len(final_keys - clean_keys),
    }


# --- (b) S3 outage -------------------------------------------------------------------
def drill_outage(work: Path, server: Any, site: SampleSiteProcess, outages: int) -> dict[str, Any]:
    archive = server.archive_url("outage")
    state = work / "outage-state"
    env = child_env(
        {
            **FAST_CRAWL_ENV,
            **server.env(),
            "NEWSVAULT_SITES_DIR": str(work / "sites"),
            "NEWSVAULT_STATE_DIR": str(state),
            "NEWSVAULT_ARCHIVE": archive,
        }
    )
    rows = []
    ids: list[str] = []
    for i in range(outages):
        summary_path = work / f"outage-{i}.json"
        started = time.monotonic()
        proc = subprocess.Popen(
            crawl_args(site.base_url, work / f"outage-{i}.jsonl", summary_path),
            env=env,
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stopper: threading.Thread | None = None
        while proc.poll() is None:
            _partial, finished = spool_state(state / "spool")
            if finished:
                # The upload has begun: stop the server (in a thread: stopping waits for weed).
                stopper = threading.Thread(target=server.stop)
                stopper.start()
                break
            time.sleep(0.01)
        crawl_exit = proc.wait(600)
        crawl_seconds = time.monotonic() - started
        if stopper is not None:
            stopper.join()
        server.stop()
        summary = (
            json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.exists() else {}
        )
        server.start()
        push = run_child([*CLI, "push"], env=env, cwd=work)
        ids.append(summary.get("snapshot_id") or "")
        rows.append(
            {
                "outage": i + 1,
                "crawl_exit": crawl_exit,
                "crawl_seconds": round(crawl_seconds, 1),
                "hit_upload": stopper is not None,
                "snapshot_state": summary.get("snapshot_state"),
                "push": push.stdout.strip().replace("\n", "; ")[:120],
            }
        )
        print(
            f"  outage {i + 1}: crawl said {rows[-1]['snapshot_state']}; push: {rows[-1]['push'] or '-'}",
            file=sys.stderr,
        )
    audit = audit_store(archive)
    lost = [sid for sid in ids if sid not in audit["committed"]]
    return {
        "outages": rows,
        "spooled_by_outage": sum(r["snapshot_state"] == "spooled" for r in rows),
        "snapshots_lost": len(lost),
        "lost_ids": lost,
        "failing_verify": len(audit["failing_verify"]),
        "half_visible": len(audit["half_visible"]),
        "items_lost": audit["items_lost"],
    }


# --- (c) faults ----------------------------------------------------------------------
def drill_faults(work: Path, site: SampleSiteProcess, articles: int) -> dict[str, Any]:
    from samplesite import SampleSite

    env = child_env(
        {
            **FAST_CRAWL_ENV,
            "NEWSVAULT_SITES_DIR": str(work / "sites"),
            "NEWSVAULT_STATE_DIR": str(work / "faults-state"),
            "NEWSVAULT_ARCHIVE": str(work / "faults-archive"),
        }
    )
    output, summary_path = work / "faults.jsonl", work / "faults.json"
    args = [
        *CLI,
        "crawl",
        "sample",
        "--kind",
        "articles",
        "--start-url",
        f"{site.base_url}/",
        "--start-url",
        f"{site.base_url}/faults/gzip-bomb",
        "--start-url",
        f"{site.base_url}/faults/big-10mb.html",
        "--output",
        str(output),
        "--json-summary",
        str(summary_path),
        "--no-progress",
    ]
    # INFO level: the spider logs "request failed (<reason>): <url>" for every page it counts as failed.
    result = run_child(
        args, env={**env, "NEWSVAULT_CRAWL_LOG_LEVEL": "INFO"}, cwd=work, timeout=600
    )
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.exists() else {}
    stats = summary.get("stats", {})
    items = (
        [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
        if output.exists()
        else []
    )
    urls = {(item.get("url") or "").split("?")[0] for item in items}
    failed = {
        m.group(2): m.group(1)
        for m in re.finditer(r"request failed \((\w+)\): (\S+)", result.stderr)
    }
    page_stats = {
        k.removeprefix("newsvault/pages/"): v
        for k, v in stats.items()
        if k.startswith("newsvault/pages/")
    }
    model = SampleSite(articles)
    rows = []
    for fault in model.fault_urls():
        path = "/" + fault["url"].split("://", 1)[-1].split("/", 1)[-1]
        final = "/" + (fault.get("final_url") or fault["url"]).split("://", 1)[-1].split("/", 1)[-1]
        kind = fault["counts_as"]
        reason = failed.get(site.base_url + path)
        if kind == "article":
            ok = any(u.endswith(final) for u in urls)
            evidence = "item present" if ok else f"no item ({reason or 'no failure logged'})"
        elif kind == "error":
            # A 404/410 on an article URL is a "gone" page (an item the change tracker counts and drops).
            gone = page_stats.get("gone", 0)
            ok = gone > 0 or reason == f"http_{fault['status']}"
            evidence = f"pages/gone = {gone}" + (f", failed ({reason})" if reason else "")
        elif kind == "too_large":
            ok = reason == "too_large"
            evidence = (
                f"counted as {reason}"
                if reason
                else "fetched and parsed, counted under no pages/ reason"
            )
        elif kind == "nothing_new":
            # Fetched and read, but no article or link came of it.
            ok = page_stats.get("nothing_new", 0) > 0 and reason is None
            evidence = f"pages/nothing_new = {page_stats.get('nothing_new', 0)}"
        else:
            ok = reason == "disallowed"
            evidence = f"counted as {reason}" if reason else "no failure logged"
        rows.append(
            {
                "fault": fault["name"],
                "path": path,
                "counts_as": kind,
                "ok": ok,
                "evidence": evidence,
            }
        )
    return {
        "exit": result.returncode,
        "status": summary.get("status"),
        "finish_reason": summary.get("finish_reason"),
        "pages": summary.get("pages"),
        "items": summary.get("items"),
        "wall_seconds": result.wall_seconds,
        "max_rss_mb": total_peak_rss_mb(result, summary),
        "page_stats": page_stats,
        "retries": stats.get("retry/count", 0),
        "faults": rows,
        "all_counted": all(r["ok"] for r in rows),
    }


# --- main ----------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 articles, 4 kills, 2 outages")
    parser.add_argument(
        "--articles", type=int, help="site size for kills and outages (default 1,000)"
    )
    parser.add_argument("--kills", type=int, help="default 20 (--quick 4)")
    parser.add_argument("--outages", type=int, help="default 5 (--quick 2)")
    parser.add_argument("--seed", type=int, default=7, help="RNG seed of the kill moments")
    parser.add_argument(
        "--only", default="kills,s3,faults", help="comma-separated subset of kills,s3,faults"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    articles = args.articles or (300 if args.quick else 1_000)
    kills = args.kills or (4 if args.quick else 20)
    outages = args.outages or (2 if args.quick else 5)
    only = set(args.only.split(","))
    results: dict[str, Any] = {"articles": articles, "seed": args.seed}

    from tests.plugins.seaweedfs import SeaweedS3Server

    with tempfile.TemporaryDirectory(prefix="nv-drills-") as tmp:
        work = Path(tmp)
        server = SeaweedS3Server(work / "seaweedfs", bucket="newsvault-drills")
        with SampleSiteProcess(articles) as site:
            write_sample_profile(work / "sites", site.base_url, articles=articles)
            if only & {"kills", "s3"}:
                server.start()
                # audit_store opens the store in this process: same variables as the children.
                os.environ.update(server.env())
            try:
                if "kills" in only:
                    results["kills"] = drill_kills(work, server, site, kills, args.seed)
                if "s3" in only:
                    results["s3_outage"] = drill_outage(work, server, site, outages)
            finally:
                server.stop()
            if "faults" in only:
                results["faults"] = drill_faults(work, site, articles)

    report(results)
    write_json(args.json, results)
    return 0


def report(results: dict[str, Any]) -> None:
    if "kills" in results:
        k = results["kills"]
        phases: dict[str, int] = {}
        for row in k["kills"]:
            phases[row["phase"]] = phases.get(row["phase"], 0) + 1
        print(
            f"(a) SIGKILL drill: {len(k['kills'])} kills of a crawl + S3 archive ({results['articles']:,} articles, seed {results['seed']}); "
            f"moments by phase: {phases}"
        )
        table = Table(["check", "value", "target", "verdict"])
        table.add("snapshots committed", k["snapshots_committed"], "-", str(k["manifest_statuses"]))
        table.add(
            "half-visible snapshots (manifest without its files)",
            k["half_visible"],
            0,
            verdict(k["half_visible"] == 0),
        )
        table.add(
            "committed snapshots failing verify",
            k["failing_verify"],
            0,
            verdict(k["failing_verify"] == 0),
        )
        table.add(
            "items lost in committed snapshots", k["items_lost"], 0, verdict(k["items_lost"] == 0)
        )
        table.add(
            "snapshots lost (seen in spool, not committed nor spooled)",
            k["snapshots_lost"],
            0,
            verdict(k["snapshots_lost"] == 0),
        )
        table.add(
            "still in the spool after the final push",
            k["still_spooled"],
            0,
            verdict(k["still_spooled"] == 0),
        )
        table.add(
            "uncommitted upload debris in the bucket (invisible)",
            k["uncommitted_prefixes"],
            "-",
            "info",
        )
        table.add(
            "final crawl articles missing vs clean crawl",
            k["final_missing"],
            0,
            verdict(k["final_missing"] == 0),
        )
        table.add(
            "final crawl articles extra vs clean crawl",
            k["final_extra"],
            0,
            verdict(k["final_extra"] == 0),
        )
        print(table.render())
    if "s3_outage" in results:
        s = results["s3_outage"]
        print(
            f"(b) S3 outage drill: server stopped at the start of {len(s['outages'])} uploads; "
            f"{s['spooled_by_outage']} crawls ended with their snapshot spooled"
        )
        table = Table(["check", "value", "target", "verdict"])
        table.add(
            "snapshots lost after restart + push",
            s["snapshots_lost"],
            0,
            verdict(s["snapshots_lost"] == 0),
        )
        table.add(
            "committed snapshots failing verify",
            s["failing_verify"],
            0,
            verdict(s["failing_verify"] == 0),
        )
        table.add("half-visible snapshots", s["half_visible"], 0, verdict(s["half_visible"] == 0))
        table.add(
            "items lost in committed snapshots", s["items_lost"], 0, verdict(s["items_lost"] == 0)
        )
        print(table.render())
    if "faults" in results:
        f = results["faults"]
        print(
            f"(c) fault pages: crawl {f['status']} ({f['finish_reason']}), exit {f['exit']}, {f['pages']} pages, {f['items']} items "
            f"in {f['wall_seconds']:.1f} s, peak RSS {f['max_rss_mb']:.0f} MB, retries {f['retries']}"
        )
        table = Table(["fault", "path", "counts as", "evidence", "verdict"])
        for row in f["faults"]:
            table.add(
                row["fault"],
                row["path"],
                row["counts_as"],
                row["evidence"],
                verdict(bool(row["ok"])),
            )
        print(table.render())
        print(f"pages not used, by reason: {f['page_stats']}")


if __name__ == "__main__":
    raise SystemExit(main())

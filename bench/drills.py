"""Reliability drills: killed crawls, S3 outages, fault pages, and whether the archive tells the truth.

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

(d) overwrite: a state dir copied (shutil.copytree) while a crawl's
    ``.partial`` is in it; the crawl commits; ``push --state-dir COPY``. Counted:
    committed snapshots failing verify or whose manifest bytes changed (0); the
    copy's push must say ``conflict``. Local and S3; the full run adds a round
    per backend where the copy is pushed before the crawl commits.
(e) false-committed: Ctrl-C twice (SIGINT, 0.2 s, SIGINT) during crawls; the
    state dir, then the local archive, on a 2 MB tmpfs (a private mount
    namespace). Counted: "committed" (summary or stdout) for an id the store
    does not list, status ok while the snapshot is not committed and complete
    (ok + spooled is documented; it counts only if the spool lacks it) (0).
(f) fresh-starts: daemons ``--run-now`` on fresh state dirs, several at once,
    both jobs at once; SIGTERM after both first runs. Counted: ok runs whose
    snapshot is not committed / not listed, runs failed "database is locked" (0).
(g) prune-race: crawls of both kinds, pushes and ``prune --keep-last 1`` at
    once on S3 behind a TCP proxy that delays every chunk; then a final push.
    Counted: dangling ``refers_to``, verify and ``restore --self-contained``
    failures, entries stuck in the spool (0); prunes run, deleting, waiting, giving up.
(h) hostile: one hostile object at a time next to three good snapshots;
    snapshots, verify --all, restore, restore --latest, prune, each under a
    timeout with its peak RSS. Counted: hangs, tracebacks, RSS over the bound,
    files outside the archive changed, good snapshots lost (0).
(i) down-runs: 2 good runs, runs with the site down, 2 good runs:
    restore --latest gets the last good one, prune --keep-last 3 keeps three good.
(j) two-writers: a copy of a state dir crawling into the same archive is
    refused (naming the first state dir) until ``newsvault claim``; then the
    original is refused.
(web) the web view on a hostile archive: every page, and every page with
    markup in each parameter, escaped and under a no-script policy; archived
    pages sandboxed; writes refused without the token, CSRF field or origin;
    no file from outside; no listening beyond loopback without a token
    (bench/drills_web.py).

    python bench/drills.py [--quick] [--only kills,s3,faults,overwrite,...] [--seed 7] [--json FILE]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import shutil
import signal
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
    ChildResult,
    SampleSiteProcess,
    SlowTCPProxy,
    Table,
    child_env,
    has_traceback,
    run_child,
    run_measured,
    tmpfs_available,
    tmpfs_command,
    total_peak_rss_mb,
    uncaught_traceback,
    verdict,
    write_json,
    write_sample_profile,
)
from drills_input import drill_config, drill_regex, drill_secrets, report_input
from drills_web import drill_web, report_web

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
        args, env={**env, "NEWSVAULT_CRAWL_LOG_LEVEL": "INFO"}, cwd=work, timeout=300
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
        "hang": result.timed_out,
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


# --- shared by the archive-truth drills (d-j) ------------------------------------------
# Crawls that must still be running when the drill acts on them (copy, Ctrl-C): fewer at once.
SLOW_CRAWL_ENV = {
    "NEWSVAULT_CRAWL_CONCURRENT_REQUESTS": "4",
    "NEWSVAULT_CRAWL_CONCURRENCY_PER_DOMAIN": "4",
}
SNAPSHOT_LINE = re.compile(r"snapshot (\S+) \((\w+)\)")
PUSH_LINE = re.compile(r"(?m)^(\w+) (\S+) \((\S+)/(\S+)\)")
FAILED_LINE = re.compile(r"(?m)^FAILED (\S+?):")
LOCK_NOT_FREE = "the archive lock was not free"


def nv_env(
    work: Path,
    state: Path,
    archive: str,
    *,
    server: Any = None,
    extra: dict[str, str] | None = None,
    sites: str = "sites",
) -> dict[str, str]:
    """The environment of a child ``newsvault`` with its own state dir and archive."""
    return child_env(
        {
            **FAST_CRAWL_ENV,
            **(server.env() if server is not None else {}),
            "NEWSVAULT_SITES_DIR": str(work / sites),
            "NEWSVAULT_STATE_DIR": str(state),
            "NEWSVAULT_ARCHIVE": archive,
            **(extra or {}),
        }
    )


def nv(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> ChildResult:
    return run_child([*CLI, *args], env=env, cwd=cwd, timeout=timeout)


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except ValueError:
        return {}


def wait_for(predicate: Any, timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def store_manifests(archive_url: str) -> dict[str, bytes]:
    """Snapshot id -> stored manifest bytes, for every committed snapshot."""
    from archive.manifest import MANIFEST_NAME
    from archive.stores import open_store

    store = open_store(archive_url)
    out: dict[str, bytes] = {}
    for ref in store.list_snapshots():
        try:
            out[ref.snapshot_id] = store.get_bytes(ref.key(MANIFEST_NAME))
        except Exception as exc:  # noqa: BLE001 - a drill records what it finds
            out[ref.snapshot_id] = f"unreadable: {exc}".encode()
    return out


def store_statuses(archive_url: str) -> dict[str, str]:
    """Snapshot id -> manifest status ("damaged" when it cannot be read)."""
    from archive.stores import open_store
    from archive.verify import load_manifest

    store = open_store(archive_url)
    out: dict[str, str] = {}
    for ref in store.list_snapshots():
        try:
            out[ref.snapshot_id] = load_manifest(store, ref).status
        except Exception:  # noqa: BLE001
            out[ref.snapshot_id] = "damaged"
    return out


def partials(spool: Path, pattern: str = "*.partial") -> set[str]:
    return {p.name for p in spool.glob(pattern)} if spool.is_dir() else set()


def wait_for_partial(
    proc: subprocess.Popen[bytes], spool: Path, before: set[str], timeout: float, pattern: str = "*.partial"
) -> bool:
    """Until a ``.partial`` (matching ``pattern``) not in ``before`` appears, or the crawl exits."""
    return wait_for(lambda: proc.poll() is not None or bool(partials(spool, pattern) - before), timeout)


def last_line(text: str, limit: int = 160) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""


def check_row(table: Table, name: str, value: Any, target: Any = 0) -> None:
    """One row of a drill table: ``value`` against ``target`` (a number, or "-" for information)."""
    if target == "-":
        table.add(name, value, "-", "info")
    else:
        table.add(name, value, target, verdict(value == target))


# --- (d) copied state dir + push: committed snapshots overwritten? ---------------------
def drill_overwrite(
    work: Path, server: Any, site: SampleSiteProcess, rounds: int, seed: int, copy_first: int = 0
) -> dict[str, Any]:
    """Copy a state dir while a crawl's .partial is in it, let the crawl commit, push the copy.

    ``copy_first`` extra rounds per backend push the copy at once, while the
    crawl still runs: its snapshot must still be committed as its own
    (complete), not as the copy's salvaged partial of the same id.
    """
    from archive.manifest import Manifest

    rng = random.Random(seed)
    plan = ["after-commit"] * rounds + ["copy-first"] * copy_first
    backends = [("local", m) for m in plan] + ([("s3", m) for m in plan] if server is not None else [])
    rows = []
    for n, (backend, mode) in enumerate(backends):
        root = work / f"overwrite-{n}"
        root.mkdir()
        state, copy = root / "state", root / "copy"
        archive = (
            str(root / "archive") if backend == "local" else server.archive_url(f"overwrite-{n}")
        )
        env = nv_env(
            work, state, archive, server=server if backend == "s3" else None, extra=SLOW_CRAWL_ENV
        )
        summary_path = root / "crawl.json"
        proc = subprocess.Popen(
            crawl_args(site.base_url, root / "items.jsonl", summary_path),
            env=env,
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        spool = state / "spool" / "sample" / "articles"
        wait_for_partial(proc, spool, set(), 120, "*.partial/items.jsonl.gz")
        time.sleep(rng.uniform(0.3, 1.2))
        partial_at_copy = bool(partials(spool))
        copy_errors = 0
        try:
            shutil.copytree(state, copy, symlinks=True, ignore_dangling_symlinks=True)
        except shutil.Error as exc:  # files the crawl removed while they were copied
            copy_errors = len(exc.args[0]) if exc.args and isinstance(exc.args[0], list) else 1
        early_states: dict[str, str] = {}
        if mode == "copy-first":
            early = nv(["push", "--state-dir", str(copy)], env, root)
            early_states = {m.group(2): m.group(1) for m in PUSH_LINE.finditer(early.stdout)}
        crawl_exit = proc.wait(600)
        summary = read_json(summary_path)
        snapshot_id = summary.get("snapshot_id") or ""
        before = store_manifests(archive)
        taken = 0
        if mode == "copy-first":
            try:
                own = Manifest.from_json(before[snapshot_id])
                taken = int(own.status != "complete" or own.finish_reason == "salvaged")
            except (KeyError, ValueError, Exception):  # noqa: BLE001 - not committed as the crawl's own
                taken = 1
        push = nv(["push", "--state-dir", str(copy)], env, root)
        states = {m.group(2): m.group(1) for m in PUSH_LINE.finditer(push.stdout)}
        if early_states.get(snapshot_id):
            states[snapshot_id] = f"{early_states[snapshot_id]}, then {states.get(snapshot_id, '-')}"
        after = store_manifests(archive)
        verify = nv(["verify", "--all"], env, root)
        failing = set(FAILED_LINE.findall(verify.stderr))
        changed = sorted(sid for sid, raw in before.items() if after.get(sid) != raw)
        kept = (copy / "spool" / "sample" / "articles").is_dir() and any(
            (copy / "spool" / "sample" / "articles").iterdir()
        )
        rows.append(
            {
                "round": n + 1,
                "backend": backend,
                "mode": mode,
                "crawl_snapshot_taken_by_copy": taken,
                "partial_at_copy": partial_at_copy,
                "copy_errors": copy_errors,
                "crawl_exit": crawl_exit,
                "crawl_snapshot_state": summary.get("snapshot_state"),
                "committed": len(before),
                "push_exit": push.returncode,
                "copy_push_state": states.get(snapshot_id, "-"),
                "push_output": push.stdout.strip().replace("\n", "; ")[:200],
                "failing_verify": len(failing & set(before)),
                "manifest_changed": len(changed),
                "lost": len(set(before) - set(after)),
                "copy_entry_kept": kept,
                "push_traceback": has_traceback(push),
            }
        )
        print(
            f"  overwrite {n + 1} ({backend}, {mode}): partial at copy {partial_at_copy}; copy's push: "
            f"{states.get(snapshot_id, '-')}; verify failures {len(failing)}; changed {len(changed)}",
            file=sys.stderr,
        )
    return {
        "rounds": rows,
        "failing_verify": sum(r["failing_verify"] for r in rows),
        "manifest_changed": sum(r["manifest_changed"] for r in rows),
        "lost": sum(r["lost"] for r in rows),
        "not_conflict": sum(any(part != "conflict" for part in r["copy_push_state"].split(", then "))
                            for r in rows),
        "taken_by_copy": sum(r["crawl_snapshot_taken_by_copy"] for r in rows),
        "missed_partial": sum(not r["partial_at_copy"] for r in rows),
        "tracebacks": sum(r["push_traceback"] for r in rows),
    }


# --- (e) false "committed" reports --------------------------------------------------------
def judge_report(
    summary: dict[str, Any],
    stdout: str,
    committed: set[str],
    statuses: dict[str, str],
    spooled: set[str] | None,
) -> list[str]:
    """Why a crawl's report is false (empty: it told the truth).

    False: "committed" (summary or stdout) for an id the store does not list;
    status ok while its snapshot is not committed and complete. An ok run whose
    snapshot is ``spooled`` is what docs/archive.md promises ("the crawl still
    succeeds with snapshot state spooled"): true when the spool (seen from the
    same mount namespace) holds it, false otherwise.
    """
    problems = []
    sid = summary.get("snapshot_id")
    state = summary.get("snapshot_state")
    if state == "committed" and sid not in committed:
        problems.append(f"summary says {sid} committed; the store does not list it")
    for m in SNAPSHOT_LINE.finditer(stdout):
        if m.group(2) == "committed" and m.group(1) not in committed:
            problems.append(f"stdout says {m.group(1)} committed; the store does not list it")
    if summary.get("status") == "ok":
        if state == "committed":
            if sid in committed and statuses.get(sid) != "complete":
                problems.append(f"status ok; snapshot {sid} is {statuses.get(sid)}")
        elif state == "spooled":
            if spooled is not None and sid not in spooled:
                problems.append(f"status ok, spooled; the spool does not hold {sid}")
        else:
            problems.append(f"status ok with snapshot state {state}")
    return problems


def drill_ctrl_c(work: Path, site: SampleSiteProcess, attempts: int, seed: int) -> dict[str, Any]:
    """Ctrl-C twice (SIGINT, 0.2 s, SIGINT) well into a crawl; odd attempts signal the whole group."""
    rng = random.Random(seed + 1)
    root = work / "ctrl-c"
    root.mkdir()
    state, archive = root / "state", str(root / "archive")
    env = nv_env(work, state, archive, extra=SLOW_CRAWL_ENV)
    spool = state / "spool" / "sample" / "articles"
    rows = []
    for i in range(attempts):
        to_group = i % 2 == 1
        summary_path = root / f"run-{i}.json"
        before = partials(spool)
        with open(root / f"run-{i}.out", "wb") as out, open(root / f"run-{i}.err", "wb") as err:
            proc = subprocess.Popen(
                crawl_args(site.base_url, root / f"run-{i}.jsonl", summary_path),
                env=env,
                cwd=root,
                stdout=out,
                stderr=err,
                start_new_session=to_group,
            )
        wait_for_partial(proc, spool, before, 120)
        delay = rng.uniform(0.5, 2.0)
        time.sleep(delay)
        exited_first = proc.poll() is not None
        for n in range(2):
            if proc.poll() is None:
                if to_group:
                    os.killpg(proc.pid, signal.SIGINT)
                else:
                    proc.send_signal(signal.SIGINT)
            if n == 0:
                time.sleep(0.2)
        hang = False
        try:
            code = proc.wait(180)
        except subprocess.TimeoutExpired:
            hang = True
            proc.kill()
            code = proc.wait(30)
        stdout = (root / f"run-{i}.out").read_text(encoding="utf-8", errors="replace")
        stderr = (root / f"run-{i}.err").read_text(encoding="utf-8", errors="replace")
        summary = read_json(summary_path)
        statuses = store_statuses(archive)
        problems = judge_report(summary, stdout, set(statuses), statuses, None)
        rows.append(
            {
                "case": f"ctrl-c {i + 1}",
                "signalled": "group" if to_group else "process",
                "delay_s": round(delay, 2),
                "exited_first": exited_first,
                "exit": code,
                "hang": hang,
                "status": summary.get("status"),
                "snapshot_state": summary.get("snapshot_state"),
                "snapshot_status": statuses.get(summary.get("snapshot_id") or "", "-"),
                "false_reports": len(problems),
                "problems": problems,
                "traceback": uncaught_traceback(stderr),
            }
        )
        print(
            f"  ctrl-c {i + 1} ({rows[-1]['signalled']}, {delay:.2f} s): exit {code}, "
            f"{summary.get('status')}/{summary.get('snapshot_state')}, false {len(problems)}",
            file=sys.stderr,
        )
    push = nv(["push"], env, root)
    verify = nv(["verify", "--all"], env, root)
    return {
        "rows": rows,
        "after_push_failing_verify": len(FAILED_LINE.findall(verify.stderr)),
        "after_push_exit": push.returncode,
    }


def drill_full_disk(work: Path, site: SampleSiteProcess, which: str, n: int) -> dict[str, Any]:
    """A crawl with its state dir (``which`` = "state") or local archive ("archive") on a 2 MB tmpfs."""
    import shlex

    root = work / f"full-{which}-{n}"
    state, archive, out = root / "state", root / "archive", root / "out"
    for d in (state, archive, out):
        d.mkdir(parents=True)
    env = nv_env(work, state, str(archive))
    summary_path = root / "summary.json"
    crawl = crawl_args(site.base_url, root / "items.jsonl", summary_path)
    listing = [*CLI, "snapshots", "--json"]
    # The crawl, then (same namespace: the same full tmpfs) what the archive and spool hold.
    script = (
        f"{shlex.join(crawl)} > {out}/crawl.out 2> {out}/crawl.err; echo $? > {out}/crawl.rc; "
        f"{shlex.join(listing)} > {out}/list.json 2> {out}/list.err"
    )
    mount = state if which == "state" else archive
    result = run_child(
        tmpfs_command(mount, "2m", ["sh", "-c", script]), env=env, cwd=root, timeout=600
    )
    summary = read_json(summary_path)
    stdout = (out / "crawl.out").read_text(encoding="utf-8", errors="replace") if (out / "crawl.out").exists() else ""
    stderr = (out / "crawl.err").read_text(encoding="utf-8", errors="replace") if (out / "crawl.err").exists() else ""
    try:
        rows = json.loads((out / "list.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        rows = []
    spooled = {r["snapshot_id"] for r in rows if r.get("state") == "spooled"}
    if which == "archive":
        statuses = {r["snapshot_id"]: r.get("status", "?") for r in rows if r.get("state") == "committed"}
    else:
        statuses = store_statuses(str(archive))
    problems = judge_report(summary, stdout, set(statuses), statuses, spooled)
    sid = summary.get("snapshot_id") or ""
    ok_spooled = summary.get("status") == "ok" and summary.get("snapshot_state") == "spooled"
    lost_after = 0
    if which == "archive" and summary.get("snapshot_state") == "spooled":
        # Room again (the tmpfs is gone): the push must commit what the crawl spooled.
        push = nv(["push"], env, root)
        if sid not in store_statuses(str(archive)):
            lost_after = 1
        problems += [] if push.returncode == 0 else [f"push after the full disk: {last_line(push.stderr)}"]
    try:
        crawl_rc = int((out / "crawl.rc").read_text().strip())
    except (OSError, ValueError):
        crawl_rc = None
    return {
        "case": f"full {which} disk {n + 1}",
        "exit": crawl_rc,
        "namespace_exit": result.returncode,
        "hang": result.timed_out,
        "status": summary.get("status"),
        "snapshot_state": summary.get("snapshot_state"),
        "snapshot_status": statuses.get(sid, "-"),
        "error": (summary.get("error") or "")[:160],
        "ok_spooled": ok_spooled,
        "spooled_lost_after_push": lost_after,
        "false_reports": len(problems),
        "problems": problems,
        "traceback": uncaught_traceback(stderr),
    }


def drill_false_committed(
    work: Path, site: SampleSiteProcess, attempts: int, disk_runs: int, seed: int
) -> dict[str, Any]:
    result = drill_ctrl_c(work, site, attempts, seed)
    if tmpfs_available(work / "tmpfs-probe"):
        for which in ("state", "archive"):
            for n in range(disk_runs):
                row = drill_full_disk(work, site, which, n)
                result["rows"].append(row)
                print(
                    f"  {row['case']}: exit {row['exit']}, {row['status']}/{row['snapshot_state']}, "
                    f"false {row['false_reports']}",
                    file=sys.stderr,
                )
        result["tmpfs"] = True
    else:
        result["tmpfs"] = False
        print("  no tmpfs in a private namespace here: the full-disk cases are skipped", file=sys.stderr)
    rows = result["rows"]
    result["false_reports"] = sum(r["false_reports"] for r in rows)
    result["hangs"] = sum(bool(r["hang"]) for r in rows)
    result["tracebacks"] = sum(bool(r["traceback"]) for r in rows)
    result["ok_spooled"] = sum(bool(r.get("ok_spooled")) for r in rows)
    result["spooled_lost_after_push"] = sum(r.get("spooled_lost_after_push", 0) for r in rows)
    return result


# --- (f) fresh starts: ok runs with nothing archived? -------------------------------------
FRESH_POLL_SECONDS = 2.5
FRESH_DEADLINE_SECONDS = 300.0


def _toml_str(value: str | Path) -> str:
    return json.dumps(str(value))  # a TOML basic string


def _write_daemon_config(root: Path, sites_dir: Path) -> Path:
    config = root / "newsvault.toml"
    config.write_text(
        "\n".join(
            [
                "[archive]",
                f"url = {_toml_str(root / 'archive')}",
                "[state]",
                f"dir = {_toml_str(root / 'state')}",
                "[sites]",
                f"dir = {_toml_str(sites_dir)}",
                "[daemon]",
                "shutdown_grace_seconds = 60",
                "crawl_timeout_seconds = 280",
                "misfire_grace_seconds = 300",
                # Both kinds at once (--run-now), then not again during the drill.
                "[schedules.sample.articles]",
                "interval_seconds = 3600",
                "[schedules.sample.discussions]",
                "interval_seconds = 3600",
                "",
            ]
        ),
        encoding="utf-8",
    )
    return config


def _runs_json(config: Path, root: Path) -> tuple[list[dict[str, Any]], ChildResult]:
    result = run_child(
        [*CLI, "runs", "--json", "--config", str(config)], env=child_env(FAST_CRAWL_ENV), cwd=root, timeout=60
    )
    runs = []
    for line in result.stdout.splitlines():
        try:
            runs.append(json.loads(line))
        except ValueError:
            continue
    return runs, result


def drill_fresh_starts(work: Path, sites_dir: Path, total: int, parallel: int) -> dict[str, Any]:
    """``total`` daemons (``parallel`` at a time), each on a fresh state dir, both jobs at once."""
    from archive.stores import open_store
    from scheduler.history import FINAL_STATUSES

    base = work / "fresh"
    pending = list(range(total))
    running: dict[int, dict[str, Any]] = {}
    finished: list[dict[str, Any]] = []

    def start(i: int) -> dict[str, Any]:
        root = base / f"d{i:03d}"
        root.mkdir(parents=True)
        config = _write_daemon_config(root, sites_dir)
        with open(root / "daemon.log", "wb") as log:
            proc = subprocess.Popen(
                [*CLI, "daemon", "--config", str(config), "--run-now"],
                env=child_env(FAST_CRAWL_ENV),
                cwd=root,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return {"i": i, "root": root, "config": config, "proc": proc, "started": time.monotonic(),
                "polled": 0.0, "stopped": None, "timed_out": False, "polls": 0}

    while pending or running:
        while pending and len(running) < parallel:
            i = pending.pop(0)
            running[i] = start(i)
        now = time.monotonic()
        for i, d in list(running.items()):
            proc = d["proc"]
            if d["stopped"] is None:
                if proc.poll() is not None:
                    d["stopped"] = now  # exited by itself
                elif now - d["started"] > FRESH_DEADLINE_SECONDS:
                    d["timed_out"] = True
                    proc.send_signal(signal.SIGTERM)
                    d["stopped"] = now
                elif now - d["polled"] >= FRESH_POLL_SECONDS and (d["root"] / "state" / "history.sqlite").exists():
                    d["polled"] = now
                    d["polls"] += 1
                    runs, _ = _runs_json(d["config"], d["root"])
                    done = {r["kind"] for r in runs if r.get("status") in FINAL_STATUSES}
                    if {"articles", "discussions"} <= done:
                        proc.send_signal(signal.SIGTERM)
                        d["stopped"] = time.monotonic()
            elif proc.poll() is None and now - d["stopped"] > 90:
                proc.kill()
            if d["stopped"] is not None and proc.poll() is not None:
                d["exit"] = proc.returncode
                d["seconds"] = time.monotonic() - d["started"]
                finished.append(d)
                del running[i]
        time.sleep(0.2)

    rows = []
    for d in sorted(finished, key=lambda d: d["i"]):
        runs, listed = _runs_json(d["config"], d["root"])
        committed = {r.snapshot_id for r in open_store(str(d["root"] / "archive")).list_snapshots()}
        log = (d["root"] / "daemon.log").read_text(encoding="utf-8", errors="replace")
        ok_not_archived = [
            r for r in runs
            if r.get("status") == "ok"
            and (r.get("snapshot_state") != "committed" or r.get("snapshot_id") not in committed)
        ]
        locked = [r for r in runs if "database is locked" in (r.get("error") or "")]
        crawl_logs = ""
        for r in runs:
            path = Path(r.get("log_path") or "")
            if r.get("log_path") and path.is_file():
                crawl_logs += path.read_text(encoding="utf-8", errors="replace")
        first = {k: next((r for r in reversed(runs) if r.get("kind") == k), None)
                 for k in ("articles", "discussions")}
        rows.append(
            {
                "daemon": d["i"] + 1,
                "exit": d.get("exit"),
                "seconds": round(d.get("seconds", 0.0), 1),
                "timed_out": d["timed_out"],
                "runs": len(runs),
                "statuses": {k: (v or {}).get("status") for k, v in first.items()},
                "ok_not_archived": len(ok_not_archived),
                "locked_runs": len(locked),
                "failed_runs": sum(r.get("status") != "ok" for r in runs),
                "errors": sorted({(r.get("error") or "")[:120] for r in runs if r.get("status") != "ok"}),
                "locked_in_log": log.count("database is locked") + crawl_logs.count("database is locked"),
                "traceback_in_log": "Traceback (most recent call last)" in log,
                "runs_exit": listed.returncode,
            }
        )
    bad = [r for r in rows if r["ok_not_archived"] or r["locked_runs"] or r["timed_out"]]
    for r in bad:
        print(f"  fresh start {r['daemon']}: {r}", file=sys.stderr)
    return {
        "daemons": rows,
        "total": total,
        "parallel": parallel,
        "runs": sum(r["runs"] for r in rows),
        "ok_runs": sum(r["runs"] - r["failed_runs"] for r in rows),
        "ok_not_archived": sum(r["ok_not_archived"] for r in rows),
        "locked_runs": sum(r["locked_runs"] for r in rows),
        "failed_runs": sum(r["failed_runs"] for r in rows),
        "failed_errors": sorted({e for r in rows for e in r["errors"]}),
        "timed_out": sum(r["timed_out"] for r in rows),
        "bad_exit": sum(r["exit"] != 0 for r in rows),
        "locked_in_logs": sum(r["locked_in_log"] for r in rows),
        "tracebacks_in_logs": sum(r["traceback_in_log"] for r in rows),
        "missing_first_runs": sum(
            sum(v is None for v in r["statuses"].values()) for r in rows
        ),
    }


# --- (g) prune during crawls and pushes on a slowed store: dangling revisits? --------------
def drill_prune_race(
    work: Path, server: Any, seconds: float, delay_ms: float, articles: int, seed: int
) -> dict[str, Any]:
    """Crawls (both kinds), pushes and ``prune --keep-last 1`` at once, through a slow TCP proxy."""
    from archive.stores import open_store
    from archive.verify import load_manifest

    rng = random.Random(seed + 2)
    root = work / "prune-race"
    root.mkdir()
    state = root / "state"
    archive = server.archive_url("prune-race")
    host, port = server.endpoint_url.removeprefix("http://").rsplit(":", 1)
    counters: dict[str, Any] = {
        "crawls": {"articles": 0, "discussions": 0},
        "crawl_status": {},
        "crawl_errors": [],
        "crawl_lock_gave_up": 0,
        "pushes": 0,
        "push_failed": 0,
        "push_states": {},
        "prunes": 0,
        "prunes_deleting": 0,
        "deleted": 0,
        "protected_kept": 0,
        "prunes_waited": 0,
        "prunes_gave_up": 0,
        "prune_errors": [],
        "ticks": 0,
        "tracebacks": 0,
    }
    lock = threading.Lock()
    with SampleSiteProcess(articles, seed=1) as site, SlowTCPProxy(host, int(port), delay_ms / 1000) as proxy:
        write_sample_profile(work / "sites-race", site.base_url, articles=articles)
        env = nv_env(work, state, archive, server=server, sites="sites-race",
                     extra={"AWS_ENDPOINT_URL": proxy.url})
        deadline = time.monotonic() + seconds
        tick = [0]

        def crawler(kind: str) -> None:
            n = 0
            while time.monotonic() < deadline:
                if kind == "articles" and rng.random() < 0.5:
                    with lock:
                        tick[0] += 1
                        counters["ticks"] += 1
                    site.set_tick(tick[0])
                summary_path = root / f"crawl-{kind}-{n}.json"
                args = ["crawl", "sample", "--kind", kind, "--json-summary", str(summary_path), "--no-progress"]
                if kind == "articles":
                    args += ["--start-url", f"{site.base_url}/sitemap.xml"]
                result = nv(args, env, root, timeout=600)
                summary = read_json(summary_path)
                key = f"{kind}:{summary.get('status')}/{summary.get('snapshot_state')}"
                with lock:
                    counters["crawls"][kind] += 1
                    counters["crawl_status"][key] = counters["crawl_status"].get(key, 0) + 1
                    if summary.get("status") != "ok":
                        counters["crawl_errors"].append((summary.get("error") or last_line(result.stderr))[:200])
                    counters["crawl_lock_gave_up"] += LOCK_NOT_FREE in (summary.get("error") or "")
                    counters["tracebacks"] += uncaught_traceback(result.stderr)
                n += 1

        def pusher() -> None:
            while time.monotonic() < deadline:
                result = nv(["push"], env, root, timeout=600)
                with lock:
                    counters["pushes"] += 1
                    counters["push_failed"] += result.returncode != 0
                    for m in PUSH_LINE.finditer(result.stdout):
                        counters["push_states"][m.group(1)] = counters["push_states"].get(m.group(1), 0) + 1
                    counters["tracebacks"] += has_traceback(result)
                time.sleep(rng.uniform(0.5, 2.0))

        def pruner() -> None:
            time.sleep(rng.uniform(2.0, 5.0))
            while time.monotonic() < deadline:
                result = nv(["prune", "sample", "--keep-last", "1", "--wait", "20"], env, root, timeout=600)
                deleted = len(re.findall(r"(?m)^deleted ", result.stdout))
                with lock:
                    counters["prunes"] += 1
                    counters["prunes_deleting"] += deleted > 0
                    counters["deleted"] += deleted
                    counters["protected_kept"] += len(re.findall(r"(?m)^kept .*revisit records", result.stdout))
                    counters["prunes_waited"] += "waiting for the archive lock" in result.stderr
                    counters["prunes_gave_up"] += LOCK_NOT_FREE in result.stderr
                    if result.returncode != 0 and LOCK_NOT_FREE not in result.stderr:
                        counters["prune_errors"].append(last_line(result.stderr))
                    counters["tracebacks"] += has_traceback(result)
                time.sleep(rng.uniform(1.0, 3.0))

        threads = [
            threading.Thread(target=crawler, args=("articles",)),
            threading.Thread(target=crawler, args=("discussions",)),
            threading.Thread(target=pusher),
            threading.Thread(target=pruner),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        proxy_stats = {"connections": proxy.connections, "chunks": proxy.chunks, "bytes": proxy.bytes}

    # The end: push everything (the direct endpoint), then audit what the store holds.
    direct = nv_env(work, state, archive, server=server, sites="sites-race")
    final_pushes = [nv(["push"], direct, root) for _ in range(2)]
    left = final_pushes[-1].stdout
    stuck = [line for line in left.splitlines() if line.startswith(("waiting", "failed", "conflict"))]
    store = open_store(archive)
    refs = store.list_snapshots()
    ids = {r.snapshot_id for r in refs}
    dangling = []
    for ref in refs:
        try:
            manifest = load_manifest(store, ref)
        except Exception as exc:  # noqa: BLE001
            dangling.append(f"{ref.snapshot_id}: unreadable manifest {exc}")
            continue
        dangling += [f"{ref.snapshot_id} -> {t}" for t in manifest.refers_to if t not in ids]
    verify = nv(["verify", "--all"], direct, root, timeout=900)
    restore_failures = []
    for ref in refs:
        target = root / "restored" / ref.snapshot_id
        restored = nv(["restore", ref.snapshot_id, "--to", str(target), "--self-contained"], direct, root)
        if restored.returncode != 0:
            restore_failures.append(f"{ref.snapshot_id}: {last_line(restored.stderr)}")
        shutil.rmtree(target, ignore_errors=True)
    counters["crawl_errors_total"] = len(counters["crawl_errors"])
    counters["crawl_errors"] = sorted(set(counters["crawl_errors"]))[:20]
    return {
        **counters,
        "seconds": seconds,
        "delay_ms": delay_ms,
        "proxy": proxy_stats,
        "committed_at_end": len(refs),
        "dangling": len(dangling),
        "dangling_refs": dangling[:20],
        "failing_verify": len(FAILED_LINE.findall(verify.stderr)),
        "verify_errors": [line for line in verify.stderr.splitlines() if line.startswith("FAILED")][:20],
        "restore_failures": len(restore_failures),
        "restore_errors": restore_failures[:20],
        "stuck_in_spool": len(stuck),
        "stuck": stuck[:20],
    }


# --- (h) hostile archive contents ------------------------------------------------------------
HOSTILE_TIMEOUT = 60.0
HOSTILE_RSS_MB = 500.0
GOOD_DAYS = (20, 21, 22)


def _h_ref(day: int, suffix: str = "a0b1c2", snapshot_id: str | None = None) -> Any:
    from archive.stores import SnapshotRef

    return SnapshotRef(snapshot_id or f"202611{day:02d}T060000Z-{suffix}", "sample", "articles")


def _h_dir(archive: Path, ref: Any) -> Path:
    return archive.joinpath(*ref.prefix.split("/"))


def _h_manifest(ref: Any, files: dict[str, bytes] | list[dict[str, Any]], **extra: Any) -> bytes:
    """A format 2 manifest with a valid ``manifest_sha256``: only what a case plants in it is wrong."""
    import hashlib

    from archive.manifest import manifest_checksum

    entries = files if isinstance(files, list) else [
        {"name": n, "size": len(b), "sha256": hashlib.sha256(b).hexdigest()} for n, b in files.items()
    ]
    data: dict[str, Any] = {
        "format": "newsvault-snapshot", "format_version": 2, "schema_version": 1,
        "snapshot_id": ref.snapshot_id, "site": ref.site, "kind": ref.kind,
        "started_at": "2026-11-01T06:00:00Z", "finished_at": "2026-11-01T06:01:00Z",
        "status": "complete", "finish_reason": "finished", "counts": extra.get("counts", {}),
        "crawl_stats": {}, "previous_snapshot_id": None, "refers_to": extra.get("refers_to", []),
        "tool": {"name": "newsvault", "version": "drill"}, "files": entries,
    }
    data["manifest_sha256"] = manifest_checksum(data)
    return json.dumps(data, indent=2).encode("utf-8")


def _h_commit(archive: Path, ref: Any, files: dict[str, bytes] | None = None) -> Path:
    files = files if files is not None else {
        "items.jsonl.gz": gzip.compress(f'{{"id": "{ref.snapshot_id}"}}\n'.encode())
    }
    folder = _h_dir(archive, ref)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "manifest.json").write_bytes(_h_manifest(ref, files))
    return folder


def _fingerprint(paths: list[Path]) -> dict[str, str | None]:
    import hashlib

    out: dict[str, str | None] = {}
    for path in paths:
        if path.is_symlink():
            out[str(path)] = f"link -> {os.readlink(path)}"
        elif path.is_file():
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[str(path)] = None
    return out


def _canary(path: Path, data: bytes = b"canary") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _hostile_name(archive: Path, outside: Path, name: str, canary_at: Path | None) -> dict[str, Any]:
    import hashlib

    bad = _h_ref(1)
    folder = _h_commit(archive, bad)
    items = (folder / "items.jsonl.gz").read_bytes()
    watch = [_canary(canary_at)] if canary_at is not None else []
    (folder / "manifest.json").write_bytes(_h_manifest(bad, [
        {"name": "items.jsonl.gz", "size": len(items), "sha256": hashlib.sha256(items).hexdigest()},
        {"name": name, "size": 6, "sha256": hashlib.sha256(b"canary").hexdigest()},
    ]))
    return {"hostile": bad.snapshot_id, "watch": watch}


def _build_huge_pair(case: Path, archive: Path, size: int) -> dict[str, Any]:
    """Two snapshots made by the real code: a ``size`` (zeros) response, then a revisit of it.

    Built in a spawned process: a child's ru_maxrss starts at its parent's peak
    (exec inherits the high-water mark), so a GiB held here would show up in
    every command measured afterwards.
    """
    import multiprocessing

    out = case / "huge-pair.json"
    proc = multiprocessing.get_context("spawn").Process(
        target=_build_huge_pair_child, args=(str(case), str(archive), size, str(out))
    )
    proc.start()
    proc.join(600)
    if proc.exitcode != 0:
        raise RuntimeError(f"building the huge revisit pair failed (exit {proc.exitcode})")
    return read_json(out)


def _build_huge_pair_child(case_dir: str, archive_dir: str, size: int, out: str) -> None:
    case, archive = Path(case_dir), Path(archive_dir)
    from datetime import UTC, datetime

    from archive.index import DigestIndex
    from archive.spool import push_all
    from archive.staging import Staging
    from archive.stores import open_store

    spool = case / "build-spool"
    index = DigestIndex.in_state_dir(case / "build-state", str(archive))
    store = open_store(str(archive))
    body = bytes(size)
    ids = []
    try:
        for day in (1, 2):
            staging = Staging(
                spool, "sample", "articles", warc_max_bytes=10**10, index=index,
                started=datetime(2026, 11, day, 6, tzinfo=UTC),
                previous_snapshot_id=index.latest_snapshot("sample", "articles"),
            )
            staging.record_exchange(
                url="http://sample.test/big", method="GET", request_target="/big",
                request_headers=[("Host", "sample.test")], request_body=b"", status=200,
                response_headers=[("Content-Type", "application/octet-stream")], body=body,
            )
            staging.write_item({"type": "article", "url": "http://sample.test/big", "change": "new"})
            staging.finalise(finish_reason="finished")
            push_all(store, spool, progress=False)
            ids.append(staging.snapshot_id)
    finally:
        index.close()
    del body
    sizes = [p.stat().st_size for p in archive.rglob("pages-*.warc.gz")]
    spec = {"hostile": ids[1], "self_contained": True, "timeout": 180.0,
            "note": f"{size >> 20} MiB payload in WARCs of {max(sizes) / 1e6:.2f} MB"}
    Path(out).write_text(json.dumps(spec), encoding="utf-8")


def _hostile_cases(huge_bytes: int) -> dict[str, Any]:
    """Case name -> builder(case_dir, archive, outside) -> spec (see drill_hostile)."""

    def dotdot(case: Path, archive: Path, outside: Path) -> dict[str, Any]:
        folder = _h_dir(archive, _h_ref(1))
        return _hostile_name(archive, outside, "../../etc/x", Path(os.path.normpath(folder / "../../etc/x")))

    def dotdot_out(case: Path, archive: Path, outside: Path) -> dict[str, Any]:
        folder = _h_dir(archive, _h_ref(1))
        target = outside / "canary-dotdot"
        return _hostile_name(archive, outside, os.path.relpath(target, folder), target)

    def absolute(case: Path, archive: Path, outside: Path) -> dict[str, Any]:
        target = outside / "canary-abs"
        return _hostile_name(archive, outside, str(target), target)

    def backslash(case: Path, archive: Path, outside: Path) -> dict[str, Any]:
        return _hostile_name(archive, outside, "..\\x", _h_dir(archive, _h_ref(1)).parent / "x")

    def nul(case: Path, archive: Path, outside: Path) -> dict[str, Any]:
        return _hostile_name(archive, outside, "x\x00y", None)

    def newline(case: Path, archive: Path, outside: Path) -> dict[str, Any]:
        return _hostile_name(archive, outside, "x\ny", None)

    def long_name(case: Path, archive: Path, outside: Path) -> dict[str, Any]:
        return _hostile_name(archive, outside, "n" * 300, None)

    def deep(case: Path, archive: Path, outside: Path) -> dict[str, Any]:
        bad = _h_ref(1)
        (_h_commit(archive, bad) / "manifest.json").write_bytes(b"[" * 200000)
        return {"hostile": bad.snapshot_id}

    def link(name: str, to: str) -> Any:
        def build(case: Path, archive: Path, outside: Path) -> dict[str, Any]:
            bad = _h_ref(1)
            folder = _h_commit(archive, bad, {"items.jsonl.gz": b"x" * 1000})
            (folder / name).unlink()
            (folder / name).symlink_to(to)
            return {"hostile": bad.snapshot_id}
        return build

    def fifo(name: str) -> Any:
        def build(case: Path, archive: Path, outside: Path) -> dict[str, Any]:
            bad = _h_ref(1)
            folder = _h_commit(archive, bad)
            (folder / name).unlink()
            os.mkfifo(folder / name)
            return {"hostile": bad.snapshot_id}
        return build

    def passwd(case: Path, archive: Path, outside: Path) -> dict[str, Any]:
        secret = Path("/etc/passwd").read_bytes()
        bad = _h_ref(1)
        folder = _h_commit(archive, bad, {"items.jsonl.gz": secret})  # size and sha256 of /etc/passwd
        (folder / "items.jsonl.gz").unlink()
        (folder / "items.jsonl.gz").symlink_to("/etc/passwd")
        return {"hostile": bad.snapshot_id, "secret": secret}

    def link_canary(case: Path, archive: Path, outside: Path) -> dict[str, Any]:
        precious = _canary(outside / "precious.txt", b"precious")
        bad = _h_ref(1)
        folder = _h_commit(archive, bad, {"items.jsonl.gz": b"precious"})
        (folder / "items.jsonl.gz").unlink()
        (folder / "items.jsonl.gz").symlink_to(precious)
        return {"hostile": bad.snapshot_id, "watch": [precious], "secret": b"precious"}

    def snapdir_link(case: Path, archive: Path, outside: Path) -> dict[str, Any]:
        look = _h_ref(1)
        fake = outside / "fake"
        _h_commit(fake, look)
        _canary(_h_dir(fake, look) / "precious.txt", b"precious")
        link_at = _h_dir(archive, look)
        link_at.parent.mkdir(parents=True, exist_ok=True)
        link_at.symlink_to(_h_dir(fake, look), target_is_directory=True)
        return {"hostile": look.snapshot_id, "watch": sorted(p for p in fake.rglob("*") if p.is_file())}

    def huge(case: Path, archive: Path, outside: Path) -> dict[str, Any]:
        return _build_huge_pair(case, archive, huge_bytes)

    def arg(which: str) -> Any:
        def build(case: Path, archive: Path, outside: Path) -> dict[str, Any]:
            base = case / "restores"
            base.mkdir()
            to = str(base / "target")
            args = {"long-id": ["2" * 300], "impossible-id": ["20261399T999999Z-abcdef"],
                    "long-latest-site": ["--latest", "s" * 300],
                    "long-to": [_h_ref(GOOD_DAYS[-1]).snapshot_id]}[which]
            if which == "long-to":
                to = str(base / ("t" * 300))
            return {"restore": ["restore", *args, "--to", to], "empty_dir": base}
        return build

    def impossible_dir(case: Path, archive: Path, outside: Path) -> dict[str, Any]:
        bad = _h_ref(0, snapshot_id="20261399T999999Z-abcdef")
        _h_commit(archive, bad)
        return {"hostile": bad.snapshot_id}

    def full_disk(case: Path, archive: Path, outside: Path) -> dict[str, Any]:
        big = _h_ref(GOOD_DAYS[-1] + 1)
        _h_commit(archive, big, {"items.jsonl.gz": os.urandom(3 * 1024 * 1024)})
        return {"hostile": big.snapshot_id, "full_disk": True, "good_extra": [big.snapshot_id],
                "note": "restore of a 3 MiB snapshot into a 2 MiB tmpfs"}

    return {
        "name ../../etc/x": dotdot,
        "name ../ out of the archive": dotdot_out,
        "name absolute path": absolute,
        "name ..\\x": backslash,
        "name with NUL": nul,
        "name with newline": newline,
        "name of 300 chars": long_name,
        "manifest [ * 200000": deep,
        "data file -> /dev/zero": link("items.jsonl.gz", "/dev/zero"),
        "manifest.json -> /dev/zero": link("manifest.json", "/dev/zero"),
        "FIFO as data file": fifo("items.jsonl.gz"),
        "FIFO as manifest": fifo("manifest.json"),
        "data file -> /etc/passwd (hash matches)": passwd,
        "data file -> canary outside": link_canary,
        "snapshot dir -> dir with canary": snapdir_link,
        "revisit inflating to a huge payload (--self-contained)": huge,
        "restore id of 300 chars": arg("long-id"),
        "restore --to name of 300 chars": arg("long-to"),
        "restore --latest site of 300 chars": arg("long-latest-site"),
        "restore impossible id 20261399T999999Z": arg("impossible-id"),
        "snapshot dir with impossible id": impossible_dir,
        "full disk (tmpfs) during restore": full_disk,
    }


def _restore_on_full_disk(case: Path, env: dict[str, str], snapshot_id: str) -> tuple[ChildResult, ChildResult, int]:
    """``restore`` into a 2 MB tmpfs; returns (wrapper, restore as a ChildResult, files left in the target's fs)."""
    import shlex

    mnt, out = case / "t-mnt", case / "t-out"
    mnt.mkdir()
    out.mkdir()
    restore = [*CLI, "restore", snapshot_id, "--to", str(mnt / "target")]
    script = (
        f"{shlex.join(restore)} > {out}/restore.out 2> {out}/restore.err; echo $? > {out}/restore.rc; "
        f"find {mnt} -mindepth 1 > {out}/left.txt"
    )
    wrapper = run_measured(tmpfs_command(mnt, "2m", ["sh", "-c", script]), env=env, cwd=case,
                           timeout=HOSTILE_TIMEOUT)

    def text(name: str) -> str:
        path = out / name
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    try:
        rc = int(text("restore.rc").strip())
    except ValueError:
        rc = -1
    inner = ChildResult(rc, wrapper.wall_seconds, wrapper.cpu_seconds, wrapper.max_rss_mb,
                        text("restore.out"), text("restore.err"), timed_out=wrapper.timed_out)
    left = [line for line in text("left.txt").splitlines() if line.strip()]
    return wrapper, inner, len(left)


def drill_hostile(work: Path, huge_bytes: int, only_cases: str | None = None) -> dict[str, Any]:
    """Each case: three good snapshots plus one hostile thing; every command under a timeout, RSS measured."""
    from archive.stores import open_store

    tmpfs = tmpfs_available(work / "tmpfs-probe")
    rows = []
    for n, (name, build) in enumerate(_hostile_cases(huge_bytes).items()):
        if only_cases and not any(part in name for part in only_cases.split(",")):
            continue
        case = work / "hostile" / f"case-{n:02d}"
        archive, outside = case / "archive", case / "outside"
        outside.mkdir(parents=True)
        goods = [_h_ref(day).snapshot_id for day in GOOD_DAYS]
        for day in GOOD_DAYS:
            _h_commit(archive, _h_ref(day))
        spec = build(case, archive, outside)
        if spec.get("full_disk") and not tmpfs:
            rows.append({"case": name, "skipped": "no tmpfs in a private namespace"})
            continue
        goods += spec.get("good_extra", [])
        newest_good = max(goods)
        watch = list(spec.get("watch", []))
        before = _fingerprint(watch)
        env = nv_env(work, case / "state", str(archive))
        timeout = spec.get("timeout", HOSTILE_TIMEOUT)
        results: dict[str, ChildResult] = {}
        notes: list[str] = [spec["note"]] if spec.get("note") else []
        lost: set[str] = set()

        def run(label: str, args: list[str], env: dict[str, str] = env, case: Path = case,
                timeout: float = timeout, results: dict[str, ChildResult] = results) -> ChildResult:
            result = run_measured([*CLI, *args], env=env, cwd=case, timeout=timeout)
            results[label] = result
            return result

        listing = run("snapshots", ["snapshots", "--json"])
        try:
            listed = {r["snapshot_id"]: r.get("status") for r in json.loads(listing.stdout)}
        except (ValueError, TypeError, KeyError):
            listed = {}
            notes.append(f"snapshots: exit {listing.returncode}: {last_line(listing.stderr)}")
        lost |= {g for g in goods if listed.get(g) != "complete"}
        verify = run("verify", ["verify", "--all"])
        lost |= {g for g in goods if f"ok {g} " not in verify.stdout}
        debris = 0
        hostile = spec.get("hostile")
        if spec.get("full_disk"):
            _wrapper, inner, debris = _restore_on_full_disk(case, env, hostile)
            results["restore (2 MB tmpfs)"] = inner
            notes.append(f"restore on full disk: exit {inner.returncode}, {last_line(inner.stderr, 100)}")
            if debris:
                notes.append(f"{debris} files left in the full target")
        elif spec.get("restore") or hostile:
            target = case / "t-hostile"
            args = spec.get("restore") or ["restore", hostile, "--to", str(target)]
            if spec.get("self_contained"):
                args = [*args, "--self-contained"]
            restored = run("restore", args)
            notes.append(f"restore: exit {restored.returncode}"
                         + (f", {last_line(restored.stderr, 100)}" if restored.returncode else
                            f", {last_line(restored.stdout, 100)}"))
            if restored.returncode != 0 and target.exists():
                debris += sum(1 for _ in target.rglob("*")) or 1
                notes.append("failed restore left its target")
            if spec.get("empty_dir") is not None and any(Path(spec["empty_dir"]).iterdir()):
                debris += 1
                notes.append("failed restore left files in the parent dir")
        latest = run("restore --latest", ["restore", "--latest", "sample", "--to", str(case / "t-latest")])
        if f"restored {newest_good} " not in latest.stdout:
            lost.add(newest_good)
            notes.append(f"restore --latest: {last_line(latest.stdout or latest.stderr, 100)}")
        prune = run("prune", ["prune", "--keep-last", "1"])
        if prune.returncode != 0:
            notes.append(f"prune: exit {prune.returncode}: {last_line(prune.stderr, 100)}")
        after_ids = {r.snapshot_id for r in open_store(str(archive)).list_snapshots()}
        if newest_good not in after_ids:
            lost.add(newest_good)
        check = run("verify newest after prune", ["verify", newest_good])
        if check.returncode != 0:
            lost.add(newest_good)
        after = _fingerprint(watch)
        changed = sum(before[k] != after.get(k) for k in before)
        leaks = 0
        if spec.get("secret"):
            secret = spec["secret"]
            leaks = sum(
                1 for p in case.rglob("*")
                if p.is_file() and not p.is_symlink() and not p.is_relative_to(outside)
                and p.stat().st_size == len(secret) and p.read_bytes() == secret
            )
            if leaks:
                notes.append(f"{leaks} copies of a file from outside the archive")
        hangs = [label for label, r in results.items() if r.timed_out]
        tracebacks = [label for label, r in results.items() if has_traceback(r)]
        heavy = {label: round(r.max_rss_mb) for label, r in results.items() if r.max_rss_mb > HOSTILE_RSS_MB}
        rows.append({
            "case": name,
            "commands": len(results),
            "hangs": len(hangs),
            "hung": hangs,
            "tracebacks": len(tracebacks),
            "traceback_in": tracebacks,
            "over_rss": len(heavy),
            "heavy": heavy,
            "peak_rss_mb": round(max(r.max_rss_mb for r in results.values()), 1),
            "outside_changed": changed + leaks + debris,
            "good_lost": len(lost),
            "notes": "; ".join(notes),
            "exits": {label: r.returncode for label, r in results.items()},
        })
        row = rows[-1]
        print(f"  hostile {name}: hangs {row['hangs']}, tracebacks {row['tracebacks']}, "
              f"over RSS {row['over_rss']}, outside changed {row['outside_changed']}, good lost {row['good_lost']}",
              file=sys.stderr)
        if spec.get("self_contained"):
            shutil.rmtree(case, ignore_errors=True)  # a GiB-size restored WARC
    done = [r for r in rows if "skipped" not in r]
    return {
        "cases": rows,
        "timeout_s": HOSTILE_TIMEOUT,
        "rss_bound_mb": HOSTILE_RSS_MB,
        **{k: sum(r[k] for r in done) for k in ("hangs", "tracebacks", "over_rss", "outside_changed", "good_lost")},
        "skipped": len(rows) - len(done),
    }


# --- (i) runs with the site down between good ones -----------------------------------------
def drill_down_runs(work: Path, site_url: str, down: int) -> dict[str, Any]:
    root = work / "down-runs"
    root.mkdir()
    archive = str(root / "archive")
    env = nv_env(work, root / "state", archive, sites="sites-small",
                 extra={"NEWSVAULT_CRAWL_RETRY_TIMES": "0"})
    tracebacks = 0

    def crawl(url: str, tag: str) -> dict[str, Any]:
        nonlocal tracebacks
        path = root / f"{tag}.json"
        result = nv(["crawl", "sample", "--start-url", url, "--json-summary", str(path), "--no-progress"], env, root)
        tracebacks += uncaught_traceback(result.stderr)
        return {**read_json(path), "exit": result.returncode}

    good = [crawl(site_url + "/", f"good-{i}") for i in range(2)]
    downs = [crawl("http://127.0.0.1:9/", f"down-{i}") for i in range(down)]  # nothing listens there
    good += [crawl(site_url + "/", f"good-{i}") for i in range(2, 4)]
    statuses = store_statuses(archive)
    good_ids = [g.get("snapshot_id") for g in good]
    down_ids = [d.get("snapshot_id") for d in downs]
    restored = nv(["restore", "--latest", "sample", "--to", str(root / "latest")], env, root)
    m = re.search(r"restored (\S+)", restored.stdout)
    restored_id = m.group(1) if m else None
    prune = nv(["prune", "sample", "--keep-last", "3"], env, root)
    left = set(store_statuses(archive))
    protected = {line.split()[1] for line in prune.stdout.splitlines() if line.startswith("kept ")}
    kept_by_rules = (set(good_ids) & left) - protected
    verify = nv(["verify", "--all"], env, root)
    return {
        "good_runs": len(good),
        "down_runs": len(downs),
        "good_not_ok": sum(g.get("status") != "ok" for g in good),
        "down_not_failed": sum(d.get("status") != "failed" for d in downs),
        "down_manifest_not_failed": sum(statuses.get(sid or "") != "failed" for sid in down_ids),
        "down_manifest_statuses": sorted({statuses.get(sid or "", "-") for sid in down_ids}),
        "last_good": good_ids[-1],
        "restored": restored_id,
        "restored_last_good": int(restored_id == good_ids[-1]),
        "restore_error": last_line(restored.stderr) if restored.returncode else "",
        "kept_by_rules": len(kept_by_rules),
        "kept_by_rules_are_newest": kept_by_rules == set(good_ids[1:]),
        "kept_for_revisits": sorted(protected & set(good_ids)),
        "down_kept": sum(sid in left for sid in down_ids),
        "prune_output": prune.stdout.strip().splitlines()[-1:] if prune.stdout.strip() else [],
        "failing_verify": len(FAILED_LINE.findall(verify.stderr)),
        "tracebacks": tracebacks + has_traceback(restored) + has_traceback(prune),
    }


# --- (n) moved host: the known articles' host stops answering; the crawl must end normally ---
def drill_moved_host(work: Path, articles: int) -> dict[str, Any]:
    """The issue's case: crawl a site, stop it, serve it on another port, crawl with the same state.

    Revisits of every known URL (mode ``all``, so all of them are due) hit a
    port nothing listens on. The crawl must finish ok well inside its
    timeout, say once that the host is down, and mark nothing removed.
    """
    root = work / "moved-host"
    root.mkdir()
    state = root / "state"
    env = nv_env(work, state, str(root / "archive"), sites="sites-small",
                 extra={"NEWSVAULT_REVISIT_MODE": "all"})

    def crawl(url: str, tag: str) -> tuple[dict[str, Any], ChildResult]:
        path = root / f"{tag}.json"
        result = nv(["crawl", "sample", "--start-url", url, "--json-summary", str(path), "--no-progress"], env, root,
                    timeout=600)
        return ({**read_json(path), "exit": result.returncode} if path.exists() else {"exit": result.returncode}), result

    with SampleSiteProcess(articles, tick=1) as old:
        first, _ = crawl(old.base_url + "/", "first")
        old_prefix = old.base_url + "/"
    with SampleSiteProcess(articles, tick=1) as new:
        moved, result = crawl(new.base_url + "/", "moved")
    stats = moved.get("stats", {})
    from pipelines.state import revisit_records

    old_records = [r for r in revisit_records(state, "sample") if r.url.startswith(old_prefix)]
    return {
        "known": len(old_records),
        "first_status": first.get("status"),
        "status": moved.get("status"),
        "exit": moved.get("exit"),
        "wall_seconds_crawl": result.wall_seconds,
        "timed_out": int(result.timed_out),
        "revisits_due": stats.get("newsvault/revisit/due", 0),
        "revisits_requested": stats.get("newsvault/revisit/requested", 0),
        "hosts_down": stats.get("newsvault/revisit/hosts_down", 0),
        "down_warnings": result.stderr.count("did not answer"),
        "removed": stats.get("newsvault/removed", 0),
        "records_removed": sum(r.removed_at is not None for r in old_records),
        "tracebacks": int(uncaught_traceback(result.stderr)),
    }


# --- (o) silent failures: runs that succeed but archive the wrong thing ---------------------
def drill_silent_failures(normal_runs: int) -> dict[str, Any]:
    """Normal runs, then a redesign, a ban and empty listings (each one run, then a normal one) via the job runner."""
    from health import soak, verdicts

    rows = soak(60, normal_runs)
    false_alarms, missed, not_recovered = verdicts(rows)
    return {"normal_runs": normal_runs, "false_alarms": false_alarms, "switched_not_degraded": missed,
            "not_recovered": not_recovered,
            "reasons": {r["phase"]: r["reasons"] for r in rows if r["phase"] in ("redesign", "ban", "empty")}}


# --- (j) two writers: a copied state dir writing the same archive ---------------------------
def drill_two_writers(work: Path, server: Any, site_url: str) -> dict[str, Any]:
    backends = ["local"] + (["s3"] if server is not None else [])
    rows = []
    for backend in backends:
        root = work / f"two-writers-{backend}"
        root.mkdir()
        first, copy = root / "state", root / "state-copy"
        archive = str(root / "archive") if backend == "local" else server.archive_url("two-writers")
        env = nv_env(work, first, archive, server=server if backend == "s3" else None, sites="sites-small")
        crawls: list[ChildResult] = []

        def crawl(state: Path, tag: str, root: Path = root, env: dict[str, str] = env,
                  crawls: list[ChildResult] = crawls) -> tuple[ChildResult, dict[str, Any]]:
            path = root / f"{tag}.json"
            result = nv(["crawl", "sample", "--start-url", f"{site_url}/sitemap.xml", "--state-dir", str(state),
                         "--json-summary", str(path), "--no-progress"], env, root)
            crawls.append(result)
            return result, read_json(path)

        _r, original = crawl(first, "first-1")
        shutil.copytree(first, copy)
        before = set(store_statuses(archive))
        refusals = [crawl(copy, f"copy-refused-{n}") for n in range(2)]
        push = nv(["push", "--state-dir", str(copy)], env, root)
        interleaved = set(store_statuses(archive)) - before
        names_first = [str(first.resolve()) in (s.get("error") or "") for _r, s in refusals]
        claim = nv(["claim", "sample", "--kind", "articles", "--state-dir", str(copy)], env, root)
        claimed, claimed_summary = crawl(copy, "copy-claimed")
        after, after_summary = crawl(first, "first-after-claim")
        rows.append({
            "backend": backend,
            "first_committed": original.get("snapshot_state") == "committed",
            "copy_refused": sum(r.returncode == 1 and s.get("status") == "failed" for r, s in refusals),
            "copy_attempts": len(refusals),
            "refusal_names_first": sum(names_first),
            "refusal_error": (refusals[0][1].get("error") or "")[:240],
            "interleaved": len(interleaved),
            "claim_exit": claim.returncode,
            "copy_after_claim_committed": int(claimed.returncode == 0
                                              and claimed_summary.get("snapshot_state") == "committed"
                                              and claimed_summary.get("snapshot_id") in store_statuses(archive)),
            "original_refused_after_claim": int(after.returncode == 1
                                                and str(copy.resolve()) in (after_summary.get("error") or "")),
            "tracebacks": sum(uncaught_traceback(r.stderr) for r in crawls) + has_traceback(push) + has_traceback(claim),
        })
        print(f"  two writers ({backend}): {rows[-1]}", file=sys.stderr)
    return {"rows": rows,
            "interleaved": sum(r["interleaved"] for r in rows),
            "not_refused": sum(r["copy_attempts"] - r["copy_refused"] for r in rows),
            "refusal_not_naming_first": sum(r["copy_attempts"] - r["refusal_names_first"] for r in rows),
            "copy_not_committed_after_claim": sum(1 - r["copy_after_claim_committed"] for r in rows),
            "original_not_refused_after_claim": sum(1 - r["original_refused_after_claim"] for r in rows),
            "tracebacks": sum(r["tracebacks"] for r in rows)}


# --- main ----------------------------------------------------------------------------
CODE_DIRS = ("archive", "newsvault", "pipelines", "samplesite", "scheduler", "spiders", "sites")


def code_fingerprint() -> dict[str, Any]:
    """The commit and a hash of the library's files: a run is only one codebase's figures if they did not change."""
    import hashlib

    root = HERE.parent
    digest = hashlib.sha256()
    files = sorted(p for d in CODE_DIRS for p in (root / d).rglob("*") if p.suffix in (".py", ".toml"))
    for path in [*files, root / "settings.py"]:
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10, check=False).stdout.strip()
    except OSError:
        head = ""
    return {"head": head or "(not a git checkout)", "files_sha256": digest.hexdigest()[:16]}


ALL_DRILLS = (
    "kills",
    "s3",
    "faults",
    "overwrite",
    "false-committed",
    "fresh-starts",
    "prune-race",
    "hostile",
    "down-runs",
    "two-writers",
    "regex",
    "secrets",
    "config",
    "moved-host",
    "silent-failures",
    "web",
)
S3_DRILLS = {"kills", "s3", "overwrite", "prune-race", "two-writers", "secrets"}
# Site sizes: the small site serves the daemons, the site-down runs and the two writers.
SMALL_SITE = 60


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="drills: " + ", ".join(ALL_DRILLS),
    )
    parser.add_argument(
        "--quick", action="store_true",
        help="smaller sizes: 300 articles, 4 kills, 2 outages, 1+1 overwrite rounds, 2 Ctrl-Cs, "
        "10 fresh starts, 30 s prune race, 6 down runs, 256 MiB huge payload",
    )
    parser.add_argument(
        "--articles", type=int, help="site size for kills, outages, overwrite, Ctrl-C, full disks (default 1,000)"
    )
    parser.add_argument("--kills", type=int, help="default 20 (--quick 4)")
    parser.add_argument("--outages", type=int, help="default 5 (--quick 2)")
    parser.add_argument("--overwrite-rounds", type=int, help="per backend (local, S3): default 3 (--quick 1)")
    parser.add_argument("--ctrl-c", type=int, help="Ctrl-C-twice runs: default 5 (--quick 2)")
    parser.add_argument("--disk-runs", type=int, help="runs per full-disk case: default 1")
    parser.add_argument("--fresh-starts", type=int, help="fresh daemons: default 50 (--quick 10)")
    parser.add_argument("--fresh-parallel", type=int, default=5, help="daemons at once (default 5)")
    parser.add_argument("--race-seconds", type=float, help="prune race length: default 90 (--quick 30)")
    parser.add_argument("--proxy-delay-ms", type=float, default=5.0,
                        help="prune race: delay per forwarded chunk (default 5)")
    parser.add_argument("--down-runs", type=int, help="runs with the site down: default 12 (--quick 6)")
    parser.add_argument("--huge-mib", type=int, help="inflated revisit payload: default 1024 (--quick 256)")
    parser.add_argument("--hostile-cases", metavar="TEXT,...", help="only hostile cases whose name contains one")
    parser.add_argument("--seed", type=int, default=7, help="RNG seed of the kill moments and other timings")
    parser.add_argument(
        "--only", default=",".join(ALL_DRILLS), help="comma-separated subset of: " + ",".join(ALL_DRILLS)
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    quick = args.quick
    articles = args.articles or (300 if quick else 1_000)
    kills = args.kills or (4 if quick else 20)
    outages = args.outages or (2 if quick else 5)
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = only - set(ALL_DRILLS)
    if unknown:
        parser.error(f"unknown drill(s) {', '.join(sorted(unknown))}; choose from {', '.join(ALL_DRILLS)}")
    results: dict[str, Any] = {"articles": articles, "seed": args.seed, "quick": quick, "wall_seconds": {},
                               "code_at_start": code_fingerprint()}

    def timed(key: str, fn: Any, *fn_args: Any) -> None:
        import traceback

        print(f"drill {key} ...", file=sys.stderr)
        started = time.perf_counter()
        try:
            section = fn(*fn_args)
        except Exception:  # noqa: BLE001 - one broken drill must not hide the others' figures
            section = {"crashed": traceback.format_exc()}
            print(section["crashed"], file=sys.stderr)
        section["wall_seconds"] = time.perf_counter() - started
        results[key] = section
        results["wall_seconds"][key] = section["wall_seconds"]
        print(f"drill {key}: {section['wall_seconds']:.1f} s", file=sys.stderr)

    from tests.plugins.seaweedfs import SeaweedS3Server

    with tempfile.TemporaryDirectory(prefix="nv-drills-") as tmp:
        work = Path(tmp)
        server = SeaweedS3Server(work / "seaweedfs", bucket="newsvault-drills", volume_max=16)
        with SampleSiteProcess(articles) as site, SampleSiteProcess(SMALL_SITE, seed=3) as small:
            write_sample_profile(work / "sites", site.base_url, articles=articles)
            write_sample_profile(work / "sites-small", small.base_url, articles=SMALL_SITE)
            if only & S3_DRILLS:
                server.start()
                # The audits open the store in this process: same variables as the children.
                os.environ.update(server.env())
            try:
                if "kills" in only:
                    timed("kills", drill_kills, work, server, site, kills, args.seed)
                if "s3" in only:
                    timed("s3_outage", drill_outage, work, server, site, outages)
                if "overwrite" in only:
                    rounds = args.overwrite_rounds or (1 if quick else 3)
                    timed("overwrite", drill_overwrite, work, server, site, rounds, args.seed, 0 if quick else 1)
                if "prune-race" in only:
                    seconds = args.race_seconds or (30.0 if quick else 90.0)
                    timed("prune_race", drill_prune_race, work, server, seconds, args.proxy_delay_ms,
                          SMALL_SITE if quick else 100, args.seed)
                if "two-writers" in only:
                    timed("two_writers", drill_two_writers, work, server, small.base_url)
                if "secrets" in only:
                    timed("secrets", drill_secrets, work, server, small.base_url, work / "sites-small")
            finally:
                server.stop()
            if "faults" in only:
                timed("faults", drill_faults, work, site, articles)
            if "false-committed" in only:
                timed("false_committed", drill_false_committed, work, site,
                      args.ctrl_c or (2 if quick else 5), args.disk_runs or 1, args.seed)
            if "down-runs" in only:
                timed("down_runs", drill_down_runs, work, small.base_url, args.down_runs or (6 if quick else 12))
            if "silent-failures" in only:
                timed("silent_failures", drill_silent_failures, 5 if quick else 10)
            if "moved-host" in only:
                timed("moved_host", drill_moved_host, work, 200 if quick else 1000)
            if "fresh-starts" in only:
                timed("fresh_starts", drill_fresh_starts, work, work / "sites-small",
                      args.fresh_starts or (10 if quick else 50), args.fresh_parallel)
            if "hostile" in only:
                huge = (args.huge_mib or (256 if quick else 1024)) * 1024 * 1024
                timed("hostile", drill_hostile, work, huge, args.hostile_cases)
            if "regex" in only:
                timed("regex", drill_regex, work)
            if "config" in only:
                timed("config", drill_config, work)
            if "web" in only:
                timed("web", drill_web, work)

    results["code_at_end"] = code_fingerprint()
    results["code_changed_during_run"] = results["code_at_end"] != results["code_at_start"]
    report(results)
    write_json(args.json, results)
    return 1 if any(isinstance(v, dict) and "crashed" in v for v in results.values()) else 0


def report(results: dict[str, Any]) -> None:
    if "kills" in results and "kills" in results["kills"]:
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
    if "s3_outage" in results and "outages" in results["s3_outage"]:
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
    if "faults" in results and "faults" in results["faults"]:
        f = results["faults"]
        print(
            f"(c) fault pages: crawl {f['status']} ({f['finish_reason']}), exit {f['exit']}"
            f"{' (HUNG: killed after 300 s)' if f.get('hang') else ''}, {f['pages']} pages, {f['items']} items "
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
    report_truth(results)
    report_input(results)
    report_web(results)


# --- reports of the archive-truth drills ------------------------------------------------
def _wall(section: dict[str, Any]) -> str:
    return f"{section.get('wall_seconds', 0):.0f} s"


def report_truth(results: dict[str, Any]) -> None:
    if "overwrite" in results and "rounds" in results["overwrite"]:
        o = results["overwrite"]
        states: dict[str, int] = {}
        for row in o["rounds"]:
            states[row["copy_push_state"]] = states.get(row["copy_push_state"], 0) + 1
        backends = {b: sum(r["backend"] == b for r in o["rounds"]) for b in ("local", "s3")}
        early = sum(r.get("mode") == "copy-first" for r in o["rounds"])
        print(f"(d) copied state dir + push: {backends['local']} local + {backends['s3']} S3 rounds "
              f"(state dir copied while the crawl's .partial existed, then `push --state-dir COPY`; in {early} of "
              f"them the copy was also pushed before the crawl committed), {_wall(o)}")
        table = Table(["check", "value", "target", "verdict"])
        check_row(table, "committed snapshots failing verify after the copy's push", o["failing_verify"])
        check_row(table, "committed snapshots whose manifest bytes changed", o["manifest_changed"])
        check_row(table, "committed snapshots gone after the copy's push", o["lost"])
        check_row(table, "rounds where the copy's push state was not conflict", o["not_conflict"])
        check_row(table, "crawl snapshots committed as the copy's salvaged partial (copy pushed first)",
                  o["taken_by_copy"])
        check_row(table, "tracebacks in the copy's push", o["tracebacks"])
        check_row(table, "copy's push state, by round", str(states), "-")
        check_row(table, "rounds where the crawl finished before the copy (no .partial copied)",
                  o["missed_partial"], "-")
        print(table.render())
    if "false_committed" in results and "rows" in results["false_committed"]:
        f = results["false_committed"]
        print(f"(e) false \"committed\" reports: Ctrl-C twice x{sum(r['case'].startswith('ctrl-c') for r in f['rows'])}"
              f", full state disk and full archive disk (2 MB tmpfs{'' if f['tmpfs'] else ': UNAVAILABLE'}), {_wall(f)}")
        table = Table(["run", "exit", "status", "snapshot state", "manifest status", "false reports", "verdict"])
        for r in f["rows"]:
            table.add(r["case"] + (f" ({r['signalled']}, {r['delay_s']} s)" if "signalled" in r else ""),
                      "hang" if r["hang"] else r["exit"], r["status"], r["snapshot_state"],
                      r["snapshot_status"], r["false_reports"], verdict(r["false_reports"] == 0))
        print(table.render())
        table = Table(["check", "value", "target", "verdict"])
        check_row(table, "false reports (committed but not in the store; ok but not committed+complete)",
                  f["false_reports"])
        check_row(table, "hangs (no exit within 180 s of the second SIGINT / 600 s)", f["hangs"])
        check_row(table, "crawls ending in an uncaught traceback", f["tracebacks"])
        check_row(table, "Ctrl-C runs: verify --all failures after a final push", f["after_push_failing_verify"])
        check_row(table, "full archive disk: spooled snapshot not committed by a push with room again",
                  f["spooled_lost_after_push"])
        check_row(table, "runs ok with the snapshot spooled (documented; the spool held it)", f["ok_spooled"], "-")
        print(table.render())
        for r in f["rows"]:
            for problem in r["problems"]:
                print(f"  FALSE REPORT {r['case']}: {problem}")
    if "fresh_starts" in results and "daemons" in results["fresh_starts"]:
        s = results["fresh_starts"]
        print(f"(f) fresh starts: {s['total']} daemons --run-now ({s['parallel']} at a time), each on a fresh "
              f"state dir, both jobs at once; {s['runs']} runs, {s['ok_runs']} ok, {_wall(s)}")
        table = Table(["check", "value", "target", "verdict"])
        check_row(table, "runs ok whose snapshot is not committed or not in the store", s["ok_not_archived"])
        check_row(table, "runs failed with \"database is locked\"", s["locked_runs"])
        check_row(table, "daemons whose two first runs did not finish in time", s["timed_out"])
        check_row(table, "first runs missing from `newsvault runs`", s["missing_first_runs"])
        check_row(table, "daemons exiting non-zero after SIGTERM", s["bad_exit"])
        check_row(table, "\"database is locked\" in daemon and crawl logs", s["locked_in_logs"])
        check_row(table, "tracebacks in daemon logs", s["tracebacks_in_logs"])
        check_row(table, "runs failed (any reason)", s["failed_runs"], "-")
        print(table.render())
        for error in s["failed_errors"][:5]:
            print(f"  failed run: {error}")
    if "prune_race" in results and "prunes" in results["prune_race"]:
        p = results["prune_race"]
        crawls = p["crawls"]
        print(f"(g) prune during crawls and pushes: {p['seconds']:.0f} s, SeaweedFS behind a proxy adding "
              f"{p['delay_ms']:g} ms per chunk ({p['proxy']['connections']} connections, {p['proxy']['chunks']} chunks); "
              f"{crawls['articles']} article + {crawls['discussions']} discussion crawls, {p['ticks']} ticks, "
              f"{p['pushes']} pushes, {p['prunes']} prunes; {p['committed_at_end']} snapshots at the end, {_wall(p)}")
        table = Table(["check", "value", "target", "verdict"])
        check_row(table, "committed snapshots with a refers_to not in the store (dangling)", p["dangling"])
        check_row(table, "verify --all failures", p["failing_verify"])
        check_row(table, "restore --self-contained failures (every committed snapshot)", p["restore_failures"])
        check_row(table, "spool entries left waiting/failed after the final push", p["stuck_in_spool"])
        check_row(table, "tracebacks (crawls: uncaught; push, prune: any)", p["tracebacks"])
        check_row(table, "prunes run / deleting something", f"{p['prunes']} / {p['prunes_deleting']}", "-")
        check_row(table, "snapshots deleted / kept for revisit records", f"{p['deleted']} / {p['protected_kept']}", "-")
        check_row(table, "prunes that waited for the lock / gave up (--wait 20)",
                  f"{p['prunes_waited']} / {p['prunes_gave_up']}", "-")
        check_row(table, "crawls that gave up on the lock", p["crawl_lock_gave_up"], "-")
        check_row(table, "crawl outcomes", str(p["crawl_status"]), "-")
        check_row(table, "push outcomes (entries)", str(p["push_states"]), "-")
        print(table.render())
        for line in p["dangling_refs"][:5] + p["verify_errors"][:5] + p["restore_errors"][:5] + p["stuck"][:5]:
            print(f"  {line}")
    if "hostile" in results and "cases" in results["hostile"]:
        h = results["hostile"]
        print(f"(h) hostile archive contents: {len(h['cases'])} cases, each with 3 good snapshots; snapshots, "
              f"verify --all, restore, restore --latest, prune --keep-last 1 (timeout {h['timeout_s']:.0f} s, "
              f"RSS bound {h['rss_bound_mb']:.0f} MB), {_wall(h)}")
        table = Table(["case", "cmds", "hangs", "tracebacks", "RSS > bound", "outside changed", "good lost",
                       "peak RSS MB", "verdict"])
        for r in h["cases"]:
            if "skipped" in r:
                table.add(r["case"], 0, "-", "-", "-", "-", "-", "-", "skipped")
                continue
            bad = r["hangs"] + r["tracebacks"] + r["over_rss"] + r["outside_changed"] + r["good_lost"]
            table.add(r["case"], r["commands"], r["hangs"], r["tracebacks"], r["over_rss"],
                      r["outside_changed"], r["good_lost"], r["peak_rss_mb"], verdict(bad == 0))
        print(table.render())
        for r in h["cases"]:
            if "skipped" not in r and (r["hangs"] or r["tracebacks"] or r["over_rss"] or r["outside_changed"]
                                       or r["good_lost"]):
                print(f"  {r['case']}: hung {r['hung']}, traceback in {r['traceback_in']}, heavy {r['heavy']}; "
                      f"{r['notes']}")
    if "down_runs" in results and "good_runs" in results["down_runs"]:
        d = results["down_runs"]
        print(f"(i) site down: 2 good runs, {d['down_runs']} runs with the site down, 2 good runs; "
              f"restore --latest and prune --keep-last 3, {_wall(d)}")
        table = Table(["check", "value", "target", "verdict"])
        check_row(table, "restore --latest restored the last good snapshot", d["restored_last_good"], 1)
        check_row(table, "complete snapshots kept by the rules (not only for revisits)", d["kept_by_rules"], 3)
        check_row(table, "... and they are the three newest good ones", d["kept_by_rules_are_newest"], True)
        check_row(table, "failed runs whose manifest status is not \"failed\"", d["down_manifest_not_failed"])
        check_row(table, "down runs not reported failed", d["down_not_failed"])
        check_row(table, "good runs not ok", d["good_not_ok"])
        check_row(table, "verify --all failures after prune", d["failing_verify"])
        check_row(table, "tracebacks (crawls: uncaught; restore, prune: any)", d["tracebacks"])
        check_row(table, "good kept only for revisit records", len(d["kept_for_revisits"]), "-")
        check_row(table, "failed snapshots kept after prune (newer than the oldest kept good)", d["down_kept"], "-")
        print(table.render())
    if "silent_failures" in results and "normal_runs" in results["silent_failures"]:
        f = results["silent_failures"]
        print(f"(o) silent failures: {f['normal_runs']} normal runs, then a redesign, a ban and empty listings, "
              f"each followed by a normal run, {_wall(f)}")
        table = Table(["check", "value", "target", "verdict"])
        check_row(table, "normal runs not ok (false alarms)", f["false_alarms"])
        check_row(table, "broken runs reported ok", f["switched_not_degraded"])
        check_row(table, "runs after the fix not ok", f["not_recovered"])
        print(table.render())
        for phase, reasons in f["reasons"].items():
            print(f"  {phase}: {'; '.join(reasons)}")
    if "moved_host" in results and "known" in results["moved_host"]:
        m = results["moved_host"]
        print(f"(n) moved host: {m['known']} known articles on a port that stopped answering, revisited in mode "
              f"all from the site on a new port; crawl {m['wall_seconds_crawl']:.1f} s, {_wall(m)}")
        table = Table(["check", "value", "target", "verdict"])
        check_row(table, "crawl not ok (or timed out)", int(m["status"] != "ok" or m["exit"] != 0) + m["timed_out"])
        check_row(table, "articles marked removed for no answer", m["removed"] + m["records_removed"])
        check_row(table, "\"host down\" reported", m["down_warnings"], 1)
        check_row(table, "revisits sent of those due", f"{m['revisits_requested']} of {m['revisits_due']}", "-")
        check_row(table, "tracebacks", m["tracebacks"])
        print(table.render())
    if "two_writers" in results and "rows" in results["two_writers"]:
        t = results["two_writers"]
        print(f"(j) two writers: a copy of a state dir crawling into the same archive "
              f"({', '.join(r['backend'] for r in t['rows'])}), then `claim` on the copy, {_wall(t)}")
        table = Table(["check", "value", "target", "verdict"])
        check_row(table, "snapshots committed by the copy before claim (interleaved chain)", t["interleaved"])
        check_row(table, "copy's crawls not refused before claim", t["not_refused"])
        check_row(table, "refusals not naming the first state dir", t["refusal_not_naming_first"])
        check_row(table, "copy's crawl after claim not committed", t["copy_not_committed_after_claim"])
        check_row(table, "original's crawl after claim not refused (naming the copy)",
                  t["original_not_refused_after_claim"])
        check_row(table, "tracebacks (crawls: uncaught; push, claim: any)", t["tracebacks"])
        print(table.render())
        if t["rows"]:
            print(f"  refusal: {t['rows'][0]['refusal_error']}")
    for key, section in results.items():
        if isinstance(section, dict) and "crashed" in section:
            print(f"DRILL {key} CRASHED:\n{section['crashed']}")
    if "code_at_start" in results:
        start, end = results["code_at_start"], results.get("code_at_end", {})
        print(f"code: commit {start['head']}, library files {start['files_sha256']}"
              + ("" if start == end else
                 f"; WARNING: the library changed during the run (now {end.get('head')}, {end.get('files_sha256')}): "
                 "these figures mix codebases"))
    walls = results.get("wall_seconds", {})
    if walls:
        table = Table(["drill", "wall s"])
        for key, seconds in walls.items():
            table.add(key, round(seconds, 1))
        table.add("total", round(sum(walls.values()), 1))
        print(table.render())


if __name__ == "__main__":
    raise SystemExit(main())

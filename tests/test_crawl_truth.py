"""A crawl reports what the archive holds: no false "committed", no "ok" run with nothing archived.

Real crawls of the sample site in child processes, a real local archive, and
for the full-disk cases a real 2 MB tmpfs (in a private mount namespace).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from archive.stores import open_store
from tests.plugins.cli import NewsvaultRunner, child_env, wait_for_responses

SMALL_SITE = 60
# Runs with the site down between good ones (bench/drills.py runs 12; six show the same here).
DOWN_RUNS = 6


def _summary(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _committed_ids(archive: Path) -> set[str]:
    return {ref.snapshot_id for ref in open_store(str(archive)).list_snapshots()}


def _state_articles(state_dir: Path) -> int:
    path = state_dir / "state.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM articles").fetchone()[0])


# --- opening a fresh state dir from several processes at once -------------------------
def _open_all(state_dir: str, barrier: Any, errors: Any) -> None:
    from archive.index import DigestIndex
    from pipelines.state import open_state_store
    from scheduler.history import open_history

    barrier.wait()
    try:
        DigestIndex.in_state_dir(state_dir, "var/archive").close()
        open_state_store(state_dir).close()
        open_history(state_dir).close()
    except Exception as exc:  # noqa: BLE001 - counted by the test
        errors.put(repr(exc))


def test_a_fresh_state_dir_opened_by_three_processes_at_once_never_fails(tmp_path: Path) -> None:
    # Before: `PRAGMA journal_mode=WAL` got "database is locked" in about 1 of 4 such starts.
    ctx = multiprocessing.get_context("spawn")
    errors = ctx.Queue()
    for round_ in range(12):
        state = tmp_path / f"state-{round_}"
        barrier = ctx.Barrier(3)
        procs = [ctx.Process(target=_open_all, args=(str(state), barrier, errors)) for _ in range(3)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(60)
            assert proc.exitcode == 0
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []


# --- archiving that cannot start ---------------------------------------------------------
def test_a_crawl_whose_snapshot_cannot_start_fails_at_once_and_remembers_nothing(
    newsvault_cli: NewsvaultRunner, sample_site_factory: Any
) -> None:
    site = sample_site_factory(articles=SMALL_SITE)
    newsvault_cli.state_dir.mkdir(parents=True)
    (newsvault_cli.state_dir / "spool").write_text("not a directory")  # the staging dir cannot be made
    summary_path = newsvault_cli.root / "summary.json"
    result = newsvault_cli("crawl", "sample", "--start-url", site.base_url + "/", "--json-summary", str(summary_path))
    summary = _summary(summary_path)
    assert result.returncode == 1, result.stdout + result.stderr[-2000:]
    assert summary["status"] == "failed"
    assert "snapshot could not be started" in summary["error"]
    assert summary["finish_reason"] == "archive_failed"
    assert summary["items"] == 0  # it did not crawl on with archiving off
    assert summary["snapshot_state"] is None
    assert "committed" not in result.stdout
    assert _state_articles(newsvault_cli.state_dir) == 0

    # Fixed: the next run archives everything, and finds every article new (nothing was remembered).
    (newsvault_cli.state_dir / "spool").unlink()
    again = newsvault_cli.crawl_summary("sample", "--start-url", site.base_url + "/")
    assert again["status"] == "ok" and again["snapshot_state"] == "committed"
    assert again["stats"]["newsvault/new/article"] == len(site.site.live_ids(0))
    assert _committed_ids(newsvault_cli.archive_dir) == {again["snapshot_id"]}


# --- Ctrl-C twice ---------------------------------------------------------------------------
@pytest.mark.parametrize("attempt", range(3))
def test_ctrl_c_twice_never_reports_a_snapshot_the_store_does_not_hold(
    newsvault_cli: NewsvaultRunner, sample_site_factory: Any, attempt: int
) -> None:
    site = sample_site_factory(articles=600)
    summary_path = newsvault_cli.root / "summary.json"
    out_path, err_path = newsvault_cli.root / "stdout.txt", newsvault_cli.root / "stderr.txt"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scheduler", "crawl", "sample", "--start-url", site.base_url + "/sitemap.xml",
             "--json-summary", str(summary_path)],
            env=child_env({**newsvault_cli.base_env(), "NEWSVAULT_CRAWL_CONCURRENT_REQUESTS": "4",
                           "NEWSVAULT_CRAWL_CONCURRENCY_PER_DOMAIN": "4"}),
            cwd=newsvault_cli.root, stdout=out, stderr=err, text=True,
        )
        # Well into the crawl (later with each attempt), Ctrl-C; once the crawl says it is
        # shutting down gracefully, Ctrl-C again ("send again to force").
        wait_for_responses(newsvault_cli.state_dir / "spool", 30 + 40 * attempt, proc)
        proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 30
        while "shutting down gracefully" not in err_path.read_text() and proc.poll() is None:
            assert time.monotonic() < deadline, "the crawl never acknowledged the first Ctrl-C"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    stdout = out_path.read_text()
    committed = _committed_ids(newsvault_cli.archive_dir)
    summary = _summary(summary_path)
    if summary:
        if summary["snapshot_state"] == "committed":
            assert summary["snapshot_id"] in committed
        assert summary["status"] != "ok"
    if "(committed)" in stdout:
        assert any(snapshot_id in stdout for snapshot_id in committed), stdout
    # Whatever was written is still recoverable: nothing is lost, the next push completes it.
    push = newsvault_cli("push")
    assert push.returncode == 0, push.stdout + push.stderr
    verify = newsvault_cli("verify", "--all")
    assert verify.returncode == 0, verify.stdout + verify.stderr


# --- full disks -------------------------------------------------------------------------------
def _tmpfs_command(mountpoint: Path, size: str, argv: list[str]) -> list[str]:
    """argv run in a private mount namespace with a fresh tmpfs of ``size`` at ``mountpoint``."""
    script = f'mount -t tmpfs -o size={size} tmpfs "$1" && shift && exec "$@"'
    return ["unshare", "--mount", "--map-root-user", "sh", "-c", script, "sh", str(mountpoint), *argv]


def _require_tmpfs(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    probe.mkdir()
    ok = subprocess.run(_tmpfs_command(probe, "1m", ["true"]), capture_output=True, check=False).returncode == 0
    if not ok:
        if os.environ.get("CI"):
            pytest.fail("cannot mount a tmpfs in a private namespace (unshare) on this CI machine")
        pytest.skip("cannot mount a tmpfs in a private namespace here")


def test_a_full_state_disk_is_never_reported_as_archived(
    newsvault_cli: NewsvaultRunner, sample_site_factory: Any, tmp_path: Path
) -> None:
    _require_tmpfs(tmp_path)
    site = sample_site_factory(articles=300)
    state = newsvault_cli.state_dir
    state.mkdir(parents=True)
    summary_path = tmp_path / "summary.json"
    # The crawl, then (same namespace, same full tmpfs) what the state store remembers as seen.
    count = (f"import sqlite3; db = sqlite3.connect('{state}/state.sqlite'); "
             "print('articles-seen=%d' % db.execute('SELECT count(*) FROM articles').fetchone()[0])")
    script = (f"{sys.executable} -m scheduler crawl sample --start-url {site.base_url}/sitemap.xml "
              f"--json-summary {summary_path}; echo crawl-exit=$?; {sys.executable} -c \"{count}\"")
    result = subprocess.run(_tmpfs_command(state, "2m", ["sh", "-c", script]), env=child_env(newsvault_cli.base_env()),
                            cwd=newsvault_cli.root, capture_output=True, text=True, timeout=240, check=False)
    summary = _summary(summary_path)
    assert "crawl-exit=1" in result.stdout, result.stdout + result.stderr[-3000:]
    assert summary["status"] == "failed" and "No space left" in summary["error"], summary.get("error")
    committed = _committed_ids(newsvault_cli.archive_dir)
    if summary["snapshot_state"] == "committed":
        # What could be read back was salvaged: the store holds it, and its manifest says it is partial.
        assert committed == {summary["snapshot_id"]}
        manifest = json.loads(newsvault_cli("show", summary["snapshot_id"]).stdout)
        assert manifest["status"] == "partial" and manifest["finish_reason"] == "salvaged"
    else:
        assert committed == set() and "(committed)" not in result.stdout
    # Nothing the archive may lack is remembered as seen: the next run finds those articles new.
    assert "articles-seen=0" in result.stdout, result.stdout


def test_a_full_archive_disk_leaves_the_snapshot_spooled_and_says_so(
    newsvault_cli: NewsvaultRunner, sample_site_factory: Any, tmp_path: Path
) -> None:
    _require_tmpfs(tmp_path)
    site = sample_site_factory(articles=300)
    archive = newsvault_cli.archive_dir
    archive.mkdir(parents=True)
    summary_path = tmp_path / "summary.json"
    # The crawl and the check of its result see the same full tmpfs (one namespace).
    check = (f"{sys.executable} -m scheduler crawl sample --start-url {site.base_url}/sitemap.xml "
             f"--json-summary {summary_path}; echo crawl-exit=$?; {sys.executable} -m scheduler snapshots --json")
    result = subprocess.run(_tmpfs_command(archive, "2m", ["sh", "-c", check]), env=child_env(newsvault_cli.base_env()),
                            cwd=newsvault_cli.root, capture_output=True, text=True, timeout=240, check=False)
    summary = _summary(summary_path)
    assert "crawl-exit=0" in result.stdout, result.stdout + result.stderr[-3000:]
    assert summary["snapshot_state"] == "spooled"
    assert "spooled" in (summary["error"] or "") and "No space left" in (summary["error"] or "")
    assert "(committed)" not in result.stdout
    listing = json.loads(result.stdout.split("crawl-exit=0", 1)[1])
    assert [(row["snapshot_id"], row["state"]) for row in listing] == [(summary["snapshot_id"], "spooled")]
    # Room again (the tmpfs is gone): the push commits the snapshot whole.
    push = newsvault_cli("push")
    assert push.returncode == 0 and f"committed {summary['snapshot_id']}" in push.stdout, push.stdout + push.stderr
    assert newsvault_cli("verify", "--all").returncode == 0


# --- failed runs ----------------------------------------------------------------------------
def test_failed_runs_leave_failed_snapshots_that_latest_and_keep_last_pass_over(
    newsvault_cli: NewsvaultRunner, sample_site_factory: Any
) -> None:
    site = sample_site_factory(articles=SMALL_SITE)
    fast_fail = {"NEWSVAULT_CRAWL_RETRY_TIMES": "0"}

    def crawl(url: str) -> dict[str, Any]:
        path = newsvault_cli.root / f"run-{len(list(newsvault_cli.root.glob('run-*.json')))}.json"
        newsvault_cli("crawl", "sample", "--start-url", url, "--json-summary", str(path), env=fast_fail)
        return _summary(path)

    good = [crawl(site.base_url + "/") for _ in range(2)]
    stopped = "http://127.0.0.1:9/"  # nothing listens: the site is down
    down = [crawl(stopped) for _ in range(DOWN_RUNS)]
    good += [crawl(site.base_url + "/") for _ in range(2)]
    assert [r["status"] for r in good] == ["ok"] * 4
    assert {r["status"] for r in down} == {"failed"}
    statuses = Counter(json.loads(newsvault_cli("show", r["snapshot_id"]).stdout)["status"] for r in down)
    assert statuses == Counter(failed=DOWN_RUNS)  # the record says what the run was

    target = newsvault_cli.root / "latest"
    restored = newsvault_cli("restore", "--latest", "sample", "--to", str(target))
    assert restored.returncode == 0 and good[-1]["snapshot_id"] in restored.stdout, restored.stdout + restored.stderr

    prune = newsvault_cli("prune", "sample", "--keep-last", "3")
    assert prune.returncode == 0, prune.stderr
    left = _committed_ids(newsvault_cli.archive_dir)
    # Kept only because a kept snapshot's revisits point into it (the first good run holds the pages).
    protected = {line.split()[1] for line in prune.stdout.splitlines() if line.startswith("kept ")}
    kept_good = ({r["snapshot_id"] for r in good} & left) - protected
    assert kept_good == {r["snapshot_id"] for r in good[1:]}  # the rules kept three good ones, not failures
    assert {r["snapshot_id"] for r in down} <= left  # the failures after the oldest kept good run stay on record
    assert newsvault_cli("verify", "--all").returncode == 0


# --- dry runs ----------------------------------------------------------------------------------
def test_a_dry_run_compares_with_the_archive_but_changes_nothing(
    newsvault_cli: NewsvaultRunner, sample_site_factory: Any
) -> None:
    site = sample_site_factory(articles=SMALL_SITE)
    newsvault_cli.crawl_summary("sample", "--start-url", site.base_url + "/")
    site.set_tick(1)
    truth = site.site.changes(0, 1)
    dry = newsvault_cli.crawl_summary("sample", "--start-url", site.base_url + "/", "--no-archive")
    assert dry["stats"].get("newsvault/updated/article", 0) == len(truth["updated"])
    archived = newsvault_cli.crawl_summary("sample", "--start-url", site.base_url + "/")
    # The dry run did not use the changes up: the archived run still sees every one of them.
    assert archived["stats"].get("newsvault/updated/article", 0) == len(truth["updated"])
    assert archived["stats"].get("newsvault/new/article", 0) == dry["stats"].get("newsvault/new/article", 0)


"""Small units of the daemon with real processes and files: launcher timeouts, locks, log pruning."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from newsvault.errors import DaemonLockedError
from scheduler.launcher import CrawlOptions, Launcher, crawl_command, prune_logs
from scheduler.lock import DaemonLock, daemon_running, job_lock


def test_launcher_stops_a_crawl_past_its_timeout(tmp_path: Path) -> None:
    launcher = Launcher(kill_grace_seconds=5)
    began = time.monotonic()
    result = launcher.run([sys.executable, "-c", "import time; time.sleep(60)"],
                          log_path=tmp_path / "a.log", summary_path=tmp_path / "a.json", timeout=1)
    assert result.timed_out and not result.terminated
    assert result.returncode is not None and result.returncode < 0
    assert time.monotonic() - began < 5
    assert launcher.running() == 0


def test_launcher_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True);"
            " time.sleep(60)")
    launcher = Launcher(kill_grace_seconds=1)
    result = launcher.run([sys.executable, "-c", code], log_path=tmp_path / "b.log",
                          summary_path=tmp_path / "b.json", timeout=1.5)
    assert result.timed_out and result.returncode == -9
    assert "ready" in (tmp_path / "b.log").read_text()


def test_launcher_reads_the_summary(tmp_path: Path) -> None:
    summary = tmp_path / "c.json"
    code = f"import json; json.dump({{'status': 'ok', 'items': 3}}, open({str(summary)!r}, 'w'))"
    result = Launcher().run([sys.executable, "-c", code], log_path=tmp_path / "c.log",
                            summary_path=summary, timeout=30)
    assert result.returncode == 0 and result.summary == {"status": "ok", "items": 3}


def test_crawl_command_passes_the_daemon_options() -> None:
    cmd = crawl_command("sample", "discussions", summary_path="s.json",
                        options=CrawlOptions("c.toml", "/st", "s3://b/p"), start_urls=["http://x/"])
    assert cmd[1:6] == ["-m", "scheduler", "crawl", "sample", "--kind"]
    joined = " ".join(cmd)
    for part in ("--json-summary s.json", "--config c.toml", "--state-dir /st", "--archive s3://b/p",
                 "--start-url http://x/"):
        assert part in joined


def test_one_daemon_lock_per_state_dir(tmp_path: Path) -> None:
    first = DaemonLock(tmp_path)
    first.acquire()
    try:
        assert daemon_running(tmp_path)
        with pytest.raises(DaemonLockedError, match=str(tmp_path)):
            DaemonLock(tmp_path).acquire()
    finally:
        first.release()
    assert not daemon_running(tmp_path)
    with DaemonLock(tmp_path):
        pass


def test_probing_for_a_daemon_never_takes_its_lock_or_pid(tmp_path: Path) -> None:
    """`jobs`/`trigger` probing in a tight loop while a daemon starts must not refuse it."""
    assert not daemon_running(tmp_path)
    assert not (tmp_path / "daemon.lock").exists()  # a probe creates nothing
    (tmp_path / "daemon.lock").write_text("")
    code = ("import sys, time\nfrom scheduler.lock import daemon_running\n"
            "print('probing', flush=True)\nend = time.monotonic() + 30\n"
            "while time.monotonic() < end:\n    daemon_running(sys.argv[1])\n")
    prober = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert prober.stdout is not None and prober.stdout.readline().strip() == "probing"
        for _ in range(200):
            lock = DaemonLock(tmp_path)
            lock.acquire()  # raises DaemonLockedError if a probe is taken for a daemon
            try:
                assert (tmp_path / "daemon.lock").read_text().strip() == str(os.getpid())
                assert daemon_running(tmp_path)
            finally:
                lock.release()
        assert prober.poll() is None, "the prober stopped early: the test proved nothing"
    finally:
        prober.kill()
        prober.wait()
        prober.stdout.close()  # type: ignore[union-attr]


def test_job_lock_excludes_a_second_holder(tmp_path: Path) -> None:
    a, b = job_lock(tmp_path, "sample:articles"), job_lock(tmp_path, "sample:articles")
    assert a.try_acquire()
    assert not b.try_acquire()
    assert job_lock(tmp_path, "sample:discussions").try_acquire()
    a.release()
    assert b.try_acquire()
    b.release()


def test_prune_logs_keeps_the_newest_runs(tmp_path: Path) -> None:
    for i in range(7):
        (tmp_path / f"2026010{i}T000000Z-aaaaaa.log").write_text("x")
        (tmp_path / f"2026010{i}T000000Z-aaaaaa.summary.json").write_text("{}")
    assert prune_logs(tmp_path, keep=3) == 8
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left[0].startswith("20260104") and len(left) == 6

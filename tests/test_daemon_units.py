"""Small units of the daemon with real processes and files: launcher timeouts, locks, log pruning."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from newsvault.errors import DaemonLockedError
from scheduler.child import EXIT_ORPHANED, PARENT_PID_ENV
from scheduler.launcher import CrawlOptions, Launcher, crawl_command, prune_logs
from scheduler.lock import DaemonLock, daemon_running, job_lock


def test_launcher_stops_a_crawl_past_its_timeout(tmp_path: Path) -> None:
    launcher = Launcher(kill_grace_seconds=30)
    result = launcher.run([sys.executable, "-c", "import time; time.sleep(60)"],
                          log_path=tmp_path / "a.log", summary_path=tmp_path / "a.json", timeout=1)
    assert result.timed_out and not result.terminated
    # Ended by the launcher's SIGTERM: not by its own end (0, after 60 s), nor by the kill after the grace.
    assert result.returncode == -signal.SIGTERM
    assert launcher.running() == 0


def test_launcher_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    # The child ignores SIGTERM from its first instruction on: an ignored signal survives
    # fork and exec, so it is set here around the start rather than raced by the child's
    # own start-up against the launcher's timeout.
    code = ("import signal, time; assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN;"
            " print('ready', flush=True); time.sleep(60)")
    launcher = Launcher(kill_grace_seconds=1)
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        result = launcher.run([sys.executable, "-c", code], log_path=tmp_path / "b.log",
                              summary_path=tmp_path / "b.json", timeout=1.5)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert result.timed_out and result.returncode == -signal.SIGKILL
    assert "ready" in (tmp_path / "b.log").read_text()


def test_a_crawl_starting_while_shutdown_begins_is_stopped(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Shutdown landing between the launcher's check and the child's registration."""
    real_popen = subprocess.Popen
    starting = threading.Event()
    launcher = Launcher(kill_grace_seconds=2)

    class AnnouncingLock:
        """The launcher's lock, telling when the shutdown (the main thread) asks for it."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner
            self.shutdown_waits = threading.Event()

        def __enter__(self) -> Any:
            if threading.current_thread() is threading.main_thread():
                self.shutdown_waits.set()
            return self.inner.__enter__()

        def __exit__(self, *exc: object) -> Any:
            return self.inner.__exit__(*exc)

    lock = AnnouncingLock(launcher._lock)
    launcher._lock = lock  # type: ignore[assignment]

    class SlowStart(real_popen):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            starting.set()
            # A slow fork: the child is started only once shutdown has begun and waits on the launcher.
            assert lock.shutdown_waits.wait(30), "shutdown never asked for the launcher's lock"
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", SlowStart)
    results = []
    worker = threading.Thread(target=lambda: results.append(launcher.run(
        [sys.executable, "-c", "import time; time.sleep(60)"], log_path=tmp_path / "d.log",
        summary_path=tmp_path / "d.json", timeout=60)), daemon=True)
    worker.start()
    try:
        assert starting.wait(10)
        launcher.stop_accepting()
        launcher.stop_all()
        worker.join(15)
        assert not worker.is_alive(), "a crawl started during shutdown was never stopped"
        [result] = results
        assert result.terminated and result.returncode == -signal.SIGTERM
    finally:
        for proc in list(launcher._children.values()):
            proc.kill()
    assert not launcher.accepting
    refused = launcher.run([sys.executable, "-c", "pass"], log_path=tmp_path / "e.log",
                           summary_path=tmp_path / "e.json", timeout=10)
    assert refused.terminated and refused.returncode is None


_GRANDCHILD = """
import signal, sys, time
from pathlib import Path
from scheduler.child import arrange_parent_death_signal
out = Path(sys.argv[1])
def on_term(*_):
    (out / "terminated").write_text("SIGTERM")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
assert arrange_parent_death_signal()
(out / "ready").write_text("")
time.sleep(60)
"""

_FAKE_DAEMON = """
import sys
from pathlib import Path
from scheduler.launcher import Launcher
out = Path(sys.argv[1])
Launcher().run([sys.executable, "-c", sys.argv[2], str(out)], log_path=out / "child.log",
               summary_path=out / "child.json", timeout=60)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_a_crawl_gets_sigterm_when_its_daemon_is_killed(tmp_path: Path) -> None:
    daemon = subprocess.Popen([sys.executable, "-c", _FAKE_DAEMON, str(tmp_path), _GRANDCHILD])
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "ready").exists():
            assert daemon.poll() is None and time.monotonic() < deadline, (
                (tmp_path / "child.log").read_text() if (tmp_path / "child.log").exists() else "")
            time.sleep(0.05)
        daemon.kill()
        daemon.wait()
        deadline = time.monotonic() + 10
        while not (tmp_path / "terminated").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (tmp_path / "terminated").read_text() == "SIGTERM"
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()


def test_a_crawl_child_whose_parent_is_gone_does_not_run(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "scheduler.child", "--version"]
    mine = subprocess.run(cmd, env={**os.environ, PARENT_PID_ENV: str(os.getpid())},
                          capture_output=True, text=True, timeout=60, check=False)
    assert mine.returncode == 0 and mine.stdout.startswith("newsvault"), mine.stderr
    # A parent pid that is not ours stands for a daemon that died before the child started.
    other = subprocess.run(cmd, env={**os.environ, PARENT_PID_ENV: str(os.getpid() + 1)},
                           capture_output=True, text=True, timeout=60, check=False)
    assert other.returncode == EXIT_ORPHANED
    assert "the process that started this crawl is gone" in other.stderr


def test_launcher_reads_the_summary(tmp_path: Path) -> None:
    summary = tmp_path / "c.json"
    code = f"import json; json.dump({{'status': 'ok', 'items': 3}}, open({str(summary)!r}, 'w'))"
    result = Launcher().run([sys.executable, "-c", code], log_path=tmp_path / "c.log",
                            summary_path=summary, timeout=30)
    assert result.returncode == 0 and result.summary == {"status": "ok", "items": 3}


def test_crawl_command_passes_the_daemon_options() -> None:
    cmd = crawl_command("sample", "discussions", summary_path="s.json",
                        options=CrawlOptions("c.toml", "/st", "s3://b/p"), start_urls=["http://x/"])
    assert cmd[1:6] == ["-m", "scheduler.child", "crawl", "sample", "--kind"]
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

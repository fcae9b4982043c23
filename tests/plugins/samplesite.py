"""pytest fixtures: the sample news site served on loopback.

The server runs in a background thread of the pytest process; crawls run in
child processes, so the GIL is free while they fetch.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from samplesite import SampleSite, SiteServer

RunningSite = SiteServer
SiteFactory = Callable[..., SiteServer]


@pytest.fixture
def sample_site_factory() -> Iterator[SiteFactory]:
    """``start(articles=300, tick=0, seed=0, **kw) -> RunningSite``; every site stops at teardown."""
    started: list[SiteServer] = []

    def start(articles: int = 300, tick: int = 0, seed: int = 0, **kwargs: Any) -> SiteServer:
        server = SiteServer(SampleSite(articles, seed=seed, tick=tick, **kwargs)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def sample_site(sample_site_factory: SiteFactory) -> SiteServer:
    """A 300-article sample site at tick 0 (seed 0)."""
    return sample_site_factory()


@contextlib.contextmanager
def site_process(articles: int = 50) -> Iterator[str]:
    """A sample site in a process of its own (for daemons, whose crawls must not share the test's GIL); its URL."""
    from tests.plugins.cli import child_env

    proc = subprocess.Popen(
        [sys.executable, "-m", "samplesite", "--port", "0", "--articles", str(articles), "--tick", "0"],
        stdout=subprocess.PIPE, text=True, env=child_env(),
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip().rstrip("/")
    try:
        if not url.startswith("http"):
            pytest.fail("the sample site did not print its URL")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()

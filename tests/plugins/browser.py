"""pytest fixtures: a real headless Chromium (Debian's ``chromium``) driven by Playwright for Python.

No browser is downloaded: Playwright starts the system's Chromium through
``executable_path`` (``$NEWSVAULT_CHROMIUM``, else ``chromium`` or
``chromium-browser`` on PATH). Without one the browser tests skip, and the
end of the run says so and how to install one; under CI they fail instead.
Screenshots go to ``$NEWSVAULT_SCREENSHOTS`` when it is set (docs/web.md's
pictures are made that way).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

INSTALL_HINT = ("install Debian's Chromium (`apt-get install chromium`) or point $NEWSVAULT_CHROMIUM at a "
                "Chromium or Chrome binary")
_SKIP_MESSAGE = "browser tests need a browser"


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def chromium_path() -> str | None:
    given = os.environ.get("NEWSVAULT_CHROMIUM")
    if given:
        return given if Path(given).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _unavailable(reason: str) -> None:
    message = f"{_SKIP_MESSAGE}: {reason}; {INSTALL_HINT}"
    if _ci():
        pytest.fail(message + " (CI is set, so they fail instead of skipping)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A launched headless Chromium (a Playwright Browser) for the whole session."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed (pip install -e '.[dev]')")
    path = chromium_path()
    if path is None:
        _unavailable("no Chromium found")
    args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []  # root cannot use its sandbox
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=args)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Any, name: str) -> Path | None:
    """Save a full-page screenshot as ``$NEWSVAULT_SCREENSHOTS/<name>.png`` when that is set."""
    folder = os.environ.get("NEWSVAULT_SCREENSHOTS")
    if not folder:
        return None
    path = Path(folder) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def pytest_terminal_summary(terminalreporter: Any) -> None:
    # Read from the skip reports, not from this process's state: under pytest-xdist the
    # skips happen in the workers and this summary is written by the controller.
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if _SKIP_MESSAGE in reason:
            terminalreporter.write_line(f"SKIPPED: {reason.split(': ', 1)[-1]}", yellow=True, bold=True)
            return

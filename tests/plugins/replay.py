"""Replaying WARCs in pywb from tests: pywb runs in its own virtualenv, in a child process.

``make test`` installs pywb into ``.venv/pywb`` (it pins libraries, and one of
its dependencies shadows the ``brotli`` module Scrapy uses, so it never shares
the project's environment). ``NEWSVAULT_TEST_PYWB_PYTHON`` points elsewhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CHILD = Path(__file__).with_name("pywb_child.py")


def pywb_python() -> str:
    """The interpreter with pywb; fails under CI (which must have it), skips elsewhere."""
    candidate = os.environ.get("NEWSVAULT_TEST_PYWB_PYTHON") or str(Path(sys.prefix) / "pywb" / "bin" / "python")
    if not Path(candidate).exists():
        message = f"pywb's interpreter {candidate} is missing (make test installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return candidate


def replay(warcs: list[Path], requests: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """What pywb serves for each (url, 14-digit timestamp) from ``warcs``: status, headers, body start."""
    arg = json.dumps({"warcs": [str(p) for p in warcs], "requests": requests})
    proc = subprocess.run([pywb_python(), "-W", "ignore", str(CHILD), arg], capture_output=True, text=True,
                          timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])  # type: ignore[no-any-return]

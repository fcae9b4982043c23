"""Opening a PostgreSQL database while another session writes to its tables never deadlocks on the schema."""

from __future__ import annotations

import threading
import time
from typing import Any

from newsvault.sqldb import PostgresDatabase

# An index on x, then one on y: the order a schema is run in.
SCHEMA = """
CREATE TABLE IF NOT EXISTS x (a INTEGER);
CREATE INDEX IF NOT EXISTS x_a ON x (a);
CREATE TABLE IF NOT EXISTS y (a INTEGER);
CREATE INDEX IF NOT EXISTS y_a ON y (a);
"""


def _waiting_locks(url: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()
        return int(row[0]) if row else 0


def test_schema_run_beside_a_writer_that_holds_the_tables_does_not_deadlock(postgres_url: str) -> None:
    import psycopg

    PostgresDatabase(postgres_url, schema=SCHEMA, schema_lock="t").conn.close()
    writer = psycopg.connect(postgres_url)  # one transaction, like a crawl's batch of writes
    writer.execute("INSERT INTO y VALUES (1)")
    outcome: dict[str, Any] = {}

    def open_second() -> None:
        try:
            PostgresDatabase(postgres_url, schema=SCHEMA, schema_lock="t").conn.close()
            outcome["ok"] = True
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = exc

    opener = threading.Thread(target=open_second)
    opener.start()
    # Readiness: the opener waits for the writer's lock on y (its index statement).
    deadline = time.monotonic() + 20
    while _waiting_locks(postgres_url) == 0 and opener.is_alive():
        assert time.monotonic() < deadline, "the second session never waited on the writer"
        time.sleep(0.05)
    writer.execute("INSERT INTO x VALUES (1)")  # a schema transaction holding x would deadlock here
    writer.commit()
    writer.close()
    opener.join(timeout=30)
    assert outcome == {"ok": True}

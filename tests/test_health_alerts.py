"""Run health end to end: real runs of the job runner (child crawls of the sample site), real receivers.

The site's switches (redesign, ban, empty listings) break a job that keeps
"succeeding"; the run history, ``newsvault health``, ``/metrics`` and the
alerts (a local webhook receiver and an aiosmtpd SMTP server on loopback)
must say so: one alert when a job turns degraded, one when it recovers.
"""

from __future__ import annotations

import email
import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from samplesite.model import SampleSite
from samplesite.server import SiteServer
from scheduler.history import open_history
from scheduler.jobs import run_job
from scheduler.metrics import HistoryCollector
from tests.plugins.cli import FAST_CRAWL_ENV, REPO_ROOT, NewsvaultRunner

TOKEN = "hook-token-0123456789"


@dataclass
class Receivers:
    posts: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    mails: list[email.message.Message] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def receivers() -> Iterator[tuple[Receivers, str, int]]:
    got = Receivers()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            got.posts.append(json.loads(self.rfile.read(length)))
            got.headers.append(dict(self.headers))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    class Mailbox:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            got.mails.append(email.message_from_bytes(envelope.content))
            return "250 OK"

    http = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    smtp_port = _free_port()
    smtp = Controller(Mailbox(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    try:
        yield got, f"http://127.0.0.1:{http.server_address[1]}/hook?key=secret-in-url", smtp_port
    finally:
        smtp.stop()
        http.shutdown()
        http.server_close()


@dataclass
class Job:
    """Runs of the sample site's articles job through the daemon's job runner, one state dir."""

    root: Path
    url: str
    config: Path

    def run(self) -> dict[str, Any]:
        row = run_job("sample", "articles", config_file=str(self.config), state_dir=str(self.root / "state"),
                      archive_url=str(self.root / "archive"), crawl_timeout=120, start_urls=[self.url],
                      trigger="manual")
        assert row is not None
        return row


@pytest.fixture
def job(tmp_path: Path, receivers: tuple[Receivers, str, int], monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Job, SampleSite, Receivers]]:
    got, hook_url, smtp_port = receivers
    for name, value in FAST_CRAWL_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("NEWSVAULT_ALERT_WEBHOOK_TOKEN", TOKEN)
    config = tmp_path / "newsvault.toml"
    config.write_text(
        f'[alerts]\nwebhook_url = "{hook_url}"\nwebhook_retries = 1\nsmtp_host = "127.0.0.1"\n'
        f'smtp_port = {smtp_port}\nmail_to = ["archivist@example.org"]\n', "utf-8")
    site = SampleSite(articles=60)
    with SiteServer(site) as server:
        yield Job(tmp_path, server.base_url + "/", config), site, got


def test_redesign_is_degraded_once_alerted_then_recovers(job: tuple[Job, SampleSite, Receivers], tmp_path: Path) -> None:
    runner, site, got = job
    normal = [runner.run() for _ in range(5)]
    assert [r["status"] for r in normal] == ["ok"] * 5 and not got.posts and not got.mails
    site.redesign_from_tick = site.tick
    degraded = runner.run()
    assert degraded["status"] == "degraded", degraded
    reasons = degraded["health"]["reasons"]
    assert any(r.startswith("body from selectors 100% -> 0%") and "(median of 5 runs)" in r for r in reasons), reasons
    assert any(r.startswith("authors coverage 100% -> 0%") for r in reasons), reasons
    assert len(got.posts) == 1 and len(got.mails) == 1
    alert = got.posts[0]
    assert alert["event"] == "degraded" and alert["job_id"] == "sample:articles" and alert["reasons"] == reasons
    assert got.headers[0]["Authorization"] == f"Bearer {TOKEN}"
    assert "degraded" in got.mails[0]["Subject"] and got.mails[0]["To"] == "archivist@example.org"
    still = runner.run()  # degraded again: no second alert
    assert still["status"] == "degraded" and len(got.posts) == 1 and len(got.mails) == 1
    site.redesign_from_tick = None
    recovered = runner.run()
    assert recovered["status"] == "ok" and not recovered["health"]["reasons"]
    assert [p["event"] for p in got.posts] == ["degraded", "recovered"] and len(got.mails) == 2

    # Where it shows: runs, health, /metrics.
    cli = NewsvaultRunner(tmp_path, env={"NEWSVAULT_STATE_DIR": str(tmp_path / "state")})
    listed = cli("runs", "--limit", "3")
    assert "degraded" in listed.stdout and "body from selectors 100% -> 0%" in listed.stdout
    manifest = json.loads(cli("show", degraded["snapshot_id"], "--archive", str(tmp_path / "archive")).stdout)
    in_manifest = manifest["crawl_stats"]["newsvault/health"]
    assert in_manifest["body_from/selectors"] == 0.0 and in_manifest["articles"] > 0 and in_manifest["coverage/body"] > 0
    health = json.loads(cli("health", "sample", "--json").stdout)
    assert health["status"] == "ok" and health["baseline_runs"] == 6
    assert health["figures"]["body_from/selectors"] == 1.0 and health["baseline"]["coverage/authors"] == 1.0
    history = open_history(tmp_path / "state")
    try:
        samples = {(m.name, tuple(sorted(s.labels.items()))): s.value
                   for m in HistoryCollector(history).collect() for s in m.samples}
    finally:
        history.close()
    assert samples[("newsvault_degraded_runs", (("job", "sample:articles"), ("reason", "body_from/selectors")))] == 2
    assert samples[("newsvault_run_health", (("figure", "coverage/body"), ("job", "sample:articles")))] == 1.0
    # The webhook URL's secret query and the token never reach the kept logs.
    logs = "".join(p.read_text("utf-8", "replace") for p in (tmp_path / "state" / "logs").rglob("*.log"))
    assert TOKEN not in logs and "secret-in-url" not in logs


def test_ban_and_empty_listings_are_degraded_with_their_own_reasons(job: tuple[Job, SampleSite, Receivers]) -> None:
    runner, site, got = job
    assert [runner.run()["status"] for _ in range(3)] == ["ok"] * 3
    site.ban_from_tick = site.tick
    banned = runner.run()
    assert banned["status"] == "degraded"
    assert any(r.startswith(("403 responses 0% ->", "429 responses 0% ->")) for r in banned["health"]["reasons"])
    site.ban_from_tick = None
    assert runner.run()["status"] == "ok"
    site.empty_from_tick = site.tick
    empty = runner.run()
    assert empty["status"] == "degraded"
    assert any(r.startswith("articles ") and "(median of" in r for r in empty["health"]["reasons"]), empty["health"]
    assert not any("responses" in r for r in empty["health"]["reasons"])
    assert [p["event"] for p in got.posts] == ["degraded", "recovered", "degraded"]


def test_normal_runs_across_ticks_raise_no_alarm(job: tuple[Job, SampleSite, Receivers]) -> None:
    runner, site, got = job
    statuses = []
    for tick in range(6):  # edits, removals, new articles, moving threads
        site.set_tick(tick)
        statuses.append(runner.run()["status"])
    assert statuses == ["ok"] * 6 and not got.posts and not got.mails


def test_a_failing_or_redirecting_webhook_is_logged_by_host_only_and_never_followed(
        caplog: pytest.LogCaptureFixture) -> None:
    from newsvault.config import AlertsConfig
    from scheduler import alerts

    seen: list[dict[str, str]] = []

    class Target(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            self.send_response(200)
            self.end_headers()

        do_POST = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    target = ThreadingHTTPServer(("127.0.0.1", 0), Target)

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{target.server_address[1]}/elsewhere")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    redirect = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    for server in (target, redirect):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    alert = alerts.Alert(event="degraded", job_id="sample:articles", site="sample", kind="articles",
                         run_id="r1", status="degraded", reasons=["x"])
    try:
        moved = AlertsConfig(webhook_url=f"http://127.0.0.1:{redirect.server_address[1]}/hook?key=secret-in-url",
                             webhook_retries=0)
        assert alerts.deliver(alert, moved, env={alerts.WEBHOOK_TOKEN_ENV: TOKEN}).webhook is False
        assert seen == []  # the token never went to the redirect's target
        dead = AlertsConfig(webhook_url=f"http://127.0.0.1:{_free_port()}/hook?key=secret-in-url",
                            webhook_retries=1, webhook_timeout_seconds=2)
        with caplog.at_level("WARNING", logger="scheduler.alerts"):
            outcome = alerts.deliver(alert, dead, env={alerts.WEBHOOK_TOKEN_ENV: TOKEN})
    finally:
        for server in (target, redirect):
            server.shutdown()
            server.server_close()
    assert outcome.webhook is False and outcome.attempts == 2
    logged = caplog.text
    assert "not delivered after 2 attempts" in logged and "http://127.0.0.1:" in logged
    assert "secret-in-url" not in logged and TOKEN not in logged

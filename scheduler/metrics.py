"""Health and Prometheus metrics over HTTP for the daemon.

``/healthz`` answers JSON (ok, scheduler state, jobs with their next run, the
last run of each job); ``/metrics`` is the Prometheus text format. Metrics are
computed from the run history on each scrape, so they survive restarts and
never drift from what ``newsvault runs`` shows; they use their own registry.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from scheduler.health import ArchiveHealth
from scheduler.history import RunHistory, parse_iso

log = logging.getLogger(__name__)

DURATION_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)


class HistoryCollector:
    """A Prometheus collector that reads the run history (and the archive's backlog) at scrape time."""

    def __init__(self, history: RunHistory, running_crawls: Callable[[], int] | None = None,
                 scheduler_running: Callable[[], bool] | None = None,
                 archive: ArchiveHealth | None = None) -> None:
        self.history = history
        self.running_crawls = running_crawls
        self.scheduler_running = scheduler_running
        self.archive = archive

    def collect(self) -> Iterator[Metric]:
        runs = CounterMetricFamily("newsvault_runs", "Runs by job and status", labels=["job", "status"])
        for (job, status), n in sorted(self.history.status_counts().items()):
            runs.add_metric([job, status], n)
        yield runs

        last_ok = GaugeMetricFamily("newsvault_last_success_timestamp_seconds",
                                    "When the last successful run of a job finished", labels=["job"])
        items = CounterMetricFamily("newsvault_items_archived", "Items in snapshots the archive has committed",
                                    labels=["job"])
        size = CounterMetricFamily("newsvault_bytes_archived", "Bytes of snapshots the archive has committed",
                                   labels=["job"])
        duration = HistogramMetricFamily("newsvault_run_duration_seconds", "Run duration",
                                         labels=["job"])
        per_job: dict[str, dict[str, Any]] = {}
        for run in self.history.finished_runs():
            acc = per_job.setdefault(run.job_id, {"last": 0.0, "items": 0, "bytes": 0, "durations": []})
            seconds = run.duration_seconds
            if seconds is not None:
                acc["durations"].append(seconds)
            if run.status == "ok":
                finished = parse_iso(run.finished_at)
                if finished:
                    acc["last"] = max(acc["last"], finished.timestamp())
            # Only what the store confirmed: a spooled snapshot counts once a push commits it.
            if run.snapshot_state == "committed":
                acc["items"] += int(run.counts.get("items", 0))
                acc["bytes"] += int(run.counts.get("bytes", 0))
        for job, acc in sorted(per_job.items()):
            if acc["last"]:
                last_ok.add_metric([job], acc["last"])
            items.add_metric([job], acc["items"])
            size.add_metric([job], acc["bytes"])
            durations: list[float] = acc["durations"]
            buckets = [(str(b), sum(1 for d in durations if d <= b)) for b in DURATION_BUCKETS]
            buckets.append(("+Inf", len(durations)))
            duration.add_metric([job], buckets, sum(durations))
        yield from (last_ok, items, size, duration)

        # Run health: the latest judged run's figures, and degraded runs by the figure that failed.
        figures = GaugeMetricFamily("newsvault_run_health", "Health figures of the latest judged run of a job",
                                    labels=["job", "figure"])
        for job, run in sorted(self.history.last_judged_runs().items()):
            for name, value in sorted(((run.health or {}).get("figures") or {}).items()):
                figures.add_metric([job, name], float(value))
        yield figures
        degraded = CounterMetricFamily("newsvault_degraded_runs", "Degraded runs by job and failed check",
                                       labels=["job", "reason"])
        for (job, reason), n in sorted(self.history.degraded_counts().items()):
            degraded.add_metric([job, reason], n)
        yield degraded

        if self.running_crawls is not None:
            yield GaugeMetricFamily("newsvault_running_crawls", "Crawl processes running now",
                                    value=self.running_crawls())
        if self.scheduler_running is not None:
            yield GaugeMetricFamily("newsvault_scheduler_running", "1 while the scheduler runs",
                                    value=1 if self.scheduler_running() else 0)
        if self.archive is not None:
            report = self.archive.report()
            spool = report["spool"]
            yield GaugeMetricFamily("newsvault_spool_entries", "Finished snapshots waiting in the spool",
                                    value=spool["entries"])
            yield GaugeMetricFamily("newsvault_spool_unfinished", "Snapshot dirs of crawls that died, waiting for salvage",
                                    value=spool["unfinished"])
            yield GaugeMetricFamily("newsvault_spool_bytes", "Bytes waiting in the spool", value=spool["bytes"])
            yield GaugeMetricFamily("newsvault_spool_oldest_age_seconds", "Age of the oldest snapshot in the spool",
                                    value=spool["oldest_age_seconds"] or 0)
            push = report["push"]
            yield CounterMetricFamily("newsvault_push_failures", "Pushes to the archive that failed",
                                      value=push["failures_total"])
            yield GaugeMetricFamily("newsvault_push_consecutive_failures", "Failed pushes since the last good one",
                                    value=push["consecutive_failures"])


def build_registry(collector: HistoryCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


class MetricsServer:
    """A small HTTP server on its own thread serving /healthz and /metrics."""

    def __init__(self, host: str, port: int, *, registry: CollectorRegistry,
                 health: Callable[[], dict[str, Any]]) -> None:
        handler = _make_handler(registry, health)
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="metrics", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()
        log.info("health and metrics on http://%s:%s/healthz and /metrics", *self.address)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _make_handler(registry: CollectorRegistry,
                  health: Callable[[], dict[str, Any]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                data = health()
                body = json.dumps(data, default=str).encode()
                self._send(200 if data.get("ok") else 503, "application/json", body)
            elif path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            else:
                self._send(404, "text/plain", b"not found\n")

        def _send(self, code: int, ctype: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("metrics: " + format, *args)

    return Handler

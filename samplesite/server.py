"""The sample site's HTTP server: a threaded stdlib server on loopback.

``SiteServer(site).start()`` serves in a background thread (tests, benchmarks);
``python -m samplesite`` runs one in the foreground. The control endpoint
``POST /_control/tick?value=N`` lets a test advance a server in another process.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qs, urlsplit

from samplesite.model import SampleSite
from samplesite.render import Response, date_header, render

logger = logging.getLogger(__name__)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive: Scrapy reuses them, and a fresh TCP
    # connection per page would make the site the bottleneck.
    protocol_version = "HTTP/1.1"
    server_version = "SampleNews/1.0"
    sys_version = ""
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without NODELAY the
        # second one waits for a delayed ACK (~40 ms) on every response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def version_string(self) -> str:
        return self.server_version

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header carries the simulated clock, not the wall clock.
        return date_header(self.server.site)

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if parts.path != "/_control/tick":
            self._send(Response(404, [("Content-Type", "text/plain")], b"not found\n"), head=False)
            return
        values = parse_qs(parts.query).get("value")
        try:
            tick = int(values[-1]) if values else self.server.site.tick + 1
            self.server.site.set_tick(tick)
        except ValueError as exc:
            body = json.dumps({"error": str(exc)}).encode()
            self._send(Response(400, [("Content-Type", "application/json")], body), head=False)
            return
        logger.info("sample site advanced to tick %s", tick)
        self._send(Response(200, [("Content-Type", "application/json")], self._state()), head=False)

    def _state(self) -> bytes:
        site = self.server.site
        return json.dumps({"tick": site.tick, "now": site.now().isoformat()}).encode()

    def _serve(self, head: bool) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/_control/state":
            response = Response(200, [("Content-Type", "application/json")], self._state())
        else:
            response = render(self.server.site, parts.path, parts.query)
        if response.delay:
            time.sleep(response.delay)
        self._send(response, head)

    def _send(self, response: Response, head: bool) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        body = response.body
        length = len(body) if isinstance(body, bytes) else response.length
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        if head:
            return
        try:
            if isinstance(body, bytes):
                self.wfile.write(body)
            else:
                for chunk in body:
                    self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            # Crawlers hang up on oversize pages on purpose; not an error here.
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], site: SampleSite) -> None:
        self.site = site
        super().__init__(address, _Handler)


class SiteServer:
    """A running sample site: ``.base_url``, ``.site``, ``.set_tick()``, ``.stop()``."""

    def __init__(self, site: SampleSite, host: str = "127.0.0.1", port: int = 0) -> None:
        self.site = site
        self._httpd = _Server((host, port), site)
        bound_host, bound_port = self._httpd.server_address[:2]
        self.base_url = f"http://{bound_host!s}:{bound_port}"
        # Canonical URLs and ground truth are absolute, so the model learns where it lives.
        site.base_url = self.base_url
        self._thread: threading.Thread | None = None
        self._ticker: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
            name="samplesite", daemon=True,
        )
        self._thread.start()
        return self

    def tick_every(self, seconds: float) -> None:
        """Advance the tick every ``seconds`` in a background thread (live demos)."""

        def run() -> None:
            while not self._stopping.wait(seconds):
                self.site.set_tick(self.site.tick + 1)
                logger.info("sample site advanced to tick %s", self.site.tick)

        self._ticker = threading.Thread(target=run, name="samplesite-ticker", daemon=True)
        self._ticker.start()

    def set_tick(self, tick: int) -> None:
        self.site.set_tick(tick)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            # shutdown() waits for serve_forever to notice; only valid once it runs.
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

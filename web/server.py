"""Serving the web view with uvicorn: in the foreground (``newsvault web``) or in a thread of the daemon."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator

import uvicorn

from newsvault.config import Config
from web.app import create_app
from web.data import WebContext
from web.security import check_binding

log = logging.getLogger(__name__)
START_TIMEOUT_SECONDS = 15.0


class _Server(uvicorn.Server):
    """uvicorn without its signal handling: the caller (the CLI or the daemon) decides when it stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebServer:
    """One uvicorn server of the web view on (host, port); port 0 picks a free one (see :attr:`address`)."""

    def __init__(self, config: Config, *, host: str | None = None, port: int | None = None,
                 next_runs: Callable[[], dict[str, str | None]] | None = None,
                 daemon_running: Callable[[], bool] | None = None) -> None:
        self.host = host or config.web.host
        self.port = config.web.port if port is None else port
        token = config.web.token_value
        check_binding(self.host, token)  # before anything listens
        self.context = WebContext(config, next_runs=next_runs, is_daemon_running=daemon_running)
        app = create_app(self.context, token)
        # The socket is bound here, so a busy port fails now and port 0 is known at once.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((self.host, self.port))
            # Listening now: a client told the address at once queues instead of being refused.
            self.socket.listen(128)
        except OSError:
            self.socket.close()
            self.context.close()
            raise
        self.server = _Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off",
                                                    timeout_graceful_shutdown=5))
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.socket.getsockname()[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def _serve(self) -> None:
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self.context.close()

    def serve_forever(self) -> None:
        """Serve in the foreground until SIGINT or SIGTERM, then finish the requests under way."""
        def stop(signum: int, _frame: object) -> None:
            log.info("web view: %s, stopping", signal.Signals(signum).name)
            self.server.should_exit = True

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, stop)
        log.info("web view on %s", self.url)
        self._serve()

    def start(self) -> WebServer:
        """Serve in a background thread (the daemon's); returns once it accepts connections."""
        self._thread = threading.Thread(target=self._serve, name="web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self.server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.server.started:
            raise RuntimeError("the web view did not start")
        log.info("web view on %s", self.url)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

"""pytest fixture: a tiny site of fixed pages on loopback, for cases the sample site does not have.

``page_site({path: body | (status, body, location)})`` serves them and returns
the base URL; every path not listed is a 404.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

Page = str | tuple[int, str, str | None]
PageSite = Callable[[Mapping[str, Page]], str]


def _handler(pages: Mapping[str, Page]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            page = pages.get(self.path)
            status, body, location = (200, page, None) if isinstance(page, str) else page or (404, "not found", None)
            data = body.encode()
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def page_site() -> Iterator[PageSite]:
    servers: list[ThreadingHTTPServer] = []

    def start(pages: Mapping[str, Page]) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(pages))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()

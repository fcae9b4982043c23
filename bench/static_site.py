"""Serve a folder of gzipped HTML pages as a static site on loopback, for benchmarks."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def _handler_for(pages: dict[str, bytes]) -> type[BaseHTTPRequestHandler]:
    index = "".join(f'<li><a href="/pages/{name}.html">{name}</a></li>' for name in sorted(pages))
    index_page = f"<html><head><title>Index</title></head><body><ul>{index}</ul></body></html>".encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/":
                body = index_page
            elif self.path.startswith("/pages/") and self.path.endswith(".html"):
                body = pages.get(self.path[len("/pages/") : -len(".html")], b"")
            else:
                body = b""
            if not body:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

    return Handler


def load_pages(html_dir: Path) -> dict[str, bytes]:
    """Page id -> raw HTML bytes, from ``<id>.html.gz`` files."""
    return {
        path.name.removesuffix(".html.gz"): gzip.decompress(path.read_bytes())
        for path in sorted(html_dir.glob("*.html.gz"))
    }


@contextmanager
def serve_pages(pages: dict[str, bytes]) -> Iterator[str]:
    """Serve ``pages`` at /pages/<id>.html with an index at /; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(pages))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()

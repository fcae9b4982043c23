"""Redirect loops and redirects off the site are counted in "pages not used", like every other reason."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.plugins.cli import NewsvaultRunner

ARTICLE = """<html><head><title>Grain and diplomacy</title></head><body><article><h1>Grain and diplomacy</h1>
<p>The talks in Minsk went on through the night and ended with a short statement from both delegations.</p>
<p>Both sides said the next round would come in the spring, after the harvest figures are known.</p>
</article></body></html>"""


class _Pages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/":
            body = ('<a href="/news/1-loop.html">loop</a> <a href="/news/2-away.html">away</a> '
                    '<a href="/news/3-grain.html">article</a>')
            return self._send(200, body)
        if self.path.startswith("/news/1-loop"):
            return self._send(302, "", location="/news/1-loop.html?again")  # never ends
        if self.path == "/news/2-away.html":
            return self._send(301, "", location="http://elsewhere.invalid/news/2-away.html")
        if self.path == "/news/3-grain.html":
            return self._send(200, ARTICLE)
        return self._send(404, "not found")

    def _send(self, status: int, body: str, location: str | None = None) -> None:
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


@pytest.fixture
def redirecting_site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_redirect_loops_and_offsite_redirects_are_pages_not_used(
    newsvault_cli: NewsvaultRunner, redirecting_site: str, tmp_path: Path
) -> None:
    sites = tmp_path / "sites"
    sites.mkdir()
    (sites / "hops.toml").write_text(
        f'name = "hops"\n[start_urls]\nfront = ["{redirecting_site}/"]\n[articles]\nurl_patterns = "/news/"\n',
        encoding="utf-8")
    summary_path = tmp_path / "summary.json"
    result = newsvault_cli("crawl", "hops", "--json-summary", str(summary_path),
                           env={"NEWSVAULT_SITES_DIR": str(sites), "NEWSVAULT_CRAWL_OBEY_ROBOTS": "false"})
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    stats = json.loads(summary_path.read_text(encoding="utf-8"))["stats"]
    assert stats.get("newsvault/pages/redirect_loop") == 1
    assert stats.get("newsvault/pages/offsite_redirect") == 1
    assert "redirect_loop 1" in result.stdout and "offsite_redirect 1" in result.stdout
    assert stats.get("item_scraped_count") == 1  # the real article still made it

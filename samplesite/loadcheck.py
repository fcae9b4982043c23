"""Measure how many pages per second a sample site sustains, from a separate process.

Starts ``python -m samplesite`` as a child process (so client and server do not
share a GIL), then hammers it with keep-alive ``http.client`` connections from
threads for a bounded time, requesting a mix like a crawl's: mostly article
pages, some listings and discussion pages.

    python -m samplesite.loadcheck --seconds 5 --clients 8 --articles 300
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

from samplesite.model import SampleSite


def _paths(articles: int, count: int) -> list[str]:
    # Build the URL mix from a local copy of the model (same seed, same slugs).
    site = SampleSite(articles)
    paths: list[str] = []
    for n in range(count):
        if n % 10 == 0:
            paths.append(f"/?page={n // 10 % site.page_count() + 1}")
        elif n % 10 == 5:
            paths.append("/discussions/")
        else:
            article_id = articles - (n * 7919) % (articles - 40)
            if article_id not in site.specials.ids():
                paths.append(site.article_path(article_id))
    return paths


def run(base_url: str, paths: list[str], seconds: float, clients: int) -> dict[str, float]:
    parts = urlsplit(base_url)
    host = parts.hostname or "127.0.0.1"
    deadline = time.monotonic() + seconds
    counts = [0] * clients
    body_bytes = [0] * clients
    errors = [0] * clients

    def client(index: int) -> None:
        conn = http.client.HTTPConnection(host, parts.port, timeout=30)
        position = index
        while time.monotonic() < deadline:
            try:
                conn.request("GET", paths[position % len(paths)])
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                conn.close()
                conn = http.client.HTTPConnection(host, parts.port, timeout=30)
                continue
            if response.status != 200:
                errors[index] += 1
            counts[index] += 1
            body_bytes[index] += len(body)
            position += clients
        conn.close()

    started = time.monotonic()
    workers = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    return {
        "seconds": round(elapsed, 2),
        "clients": clients,
        "pages": sum(counts),
        "pages_per_second": round(sum(counts) / elapsed, 1),
        "mb_per_second": round(sum(body_bytes) / elapsed / 1e6, 2),
        "errors": sum(errors),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samplesite.loadcheck", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to load (max 60)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent keep-alive clients")
    parser.add_argument("--articles", type=int, default=300)
    parser.add_argument("--base-url", default=None,
                        help="load an already running site instead of starting one "
                             "(it must use --articles and seed 0)")
    args = parser.parse_args(argv)
    seconds = min(args.seconds, 60.0)
    paths = _paths(args.articles, 2000)
    proc = None
    base_url = args.base_url
    if base_url is None:
        proc = subprocess.Popen(
            [sys.executable, "-m", "samplesite", "--port", "0", "--articles", str(args.articles)],
            stdout=subprocess.PIPE, text=True,
        )
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
    try:
        result = run(base_url, paths, seconds, args.clients)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

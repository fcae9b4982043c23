"""A revisit stands for its own response: redirects keep their status and Location through a self-contained restore.

The sample site's ``/go/N`` (301) and ``/r/N`` (302) have empty bodies, so
they share one payload digest and the second snapshot's revisit for one points
at the other's record. Before, the restore rebuilt ``/r/N`` as the 301 of
``/go/N`` with ``Location: /r/N`` (pywb: 400 "Self Redirect").
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from warcio.archiveiterator import ArchiveIterator

from tests.plugins.cli import NewsvaultRunner
from tests.plugins.replay import replay


def _responses(warcs: list[Path]) -> dict[str, tuple[str, int, str | None]]:
    """URI -> (record type, status, Location) of every response or revisit."""
    found: dict[str, tuple[str, int, str | None]] = {}
    for warc in warcs:
        with open(warc, "rb") as fh:
            for record in ArchiveIterator(fh):
                if record.rec_type in ("response", "revisit") and record.http_headers is not None:
                    found[record.rec_headers.get_header("WARC-Target-URI")] = (
                        record.rec_type, int(record.http_headers.get_statuscode()),
                        record.http_headers.get_header("Location"))
    return found


def _warc_timestamp(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%Y%m%d%H%M%S")


def test_redirects_replay_with_their_own_status_and_location(newsvault_cli: NewsvaultRunner, sample_site_factory: Any) -> None:
    site = sample_site_factory(articles=60)
    first = newsvault_cli.crawl_summary("sample", "--start-url", site.base_url + "/")
    second = newsvault_cli.crawl_summary("sample", "--start-url", site.base_url + "/")
    assert second["stats"]["newsvault/snapshot_status"] == "complete"
    restored = {}
    for label, summary, extra in (("first", first, []), ("second", second, ["--self-contained"])):
        target = newsvault_cli.root / label
        result = newsvault_cli("restore", summary["snapshot_id"], "--to", str(target), *extra)
        assert result.returncode == 0, result.stderr
        restored[label] = sorted(target.glob("pages-*.warc.gz"))

    truth = {uri: (status, location) for uri, (_t, status, location) in _responses(restored["first"]).items()
             if 300 <= status < 400}
    sp = site.site.specials
    assert truth[f"{site.base_url}/go/{sp.redirect}"] == (301, f"/r/{sp.redirect}")
    assert truth[f"{site.base_url}/r/{sp.redirect}"] == (302, site.site.article_path(sp.redirect))

    rebuilt = _responses(restored["second"])
    assert {uri for uri, (kind, _s, _l) in rebuilt.items() if kind == "revisit"} == set()  # stands alone
    for uri, expected in truth.items():
        _kind, status, location = rebuilt[uri]
        assert (status, location) == expected, uri
        assert location != uri.removeprefix(site.base_url)  # never a redirect to itself

    # And pywb serves each redirect of the self-contained second snapshot as captured.
    stamp = _warc_timestamp(second["stats"]["start_time"])
    served = replay(restored["second"], [(uri, stamp) for uri in truth])
    assert {r["url"]: (r["status"], r["headers"].get("location")) for r in served} == truth

"""Pages with broken markup that real sites serve: each costs at most a field, never an article."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.plugins.cli import NewsvaultRunner
from tests.plugins.pages import PageSite

ARTICLE = """<html><head><title>{title} | Broken Site</title>
<link rel="canonical" href="/">{extra}</head>
<body><article><h1>{title}</h1><time datetime="2026-11-20T10:00:00+03:00">20.11.2026</time>
<p>{title}: the first paragraph of a story long enough to be taken as the article text by the
generic extraction, with several sentences about what happened and when.</p>
<p>A second paragraph adds the reactions and the background so the page reads like news.</p>
</article></body></html>"""

PAGES = {
    "/": '<html><body><a href="/a/1.html">1</a> <a href="/a/2.html">2</a> <a href="/a/3.html">3</a></body></html>',
    # Every page claims the front page as its canonical address, a common CMS fault.
    "/a/1.html": ARTICLE.format(title="Storm closes the harbour", extra=""),
    "/a/2.html": ARTICLE.format(title="Council approves the budget", extra='<meta property="og:image" content="http://[bad">'),
    "/a/3.html": ARTICLE.format(title="Rail strike ends", extra='<link rel="alternate" href="http://[::1">'),
}


@pytest.fixture()
def broken_site(page_site: PageSite) -> str:
    return page_site(PAGES)


def test_bad_canonical_and_bad_links_lose_no_article(broken_site: str, tmp_path: Path) -> None:
    sites = tmp_path / "sites"
    sites.mkdir()
    (sites / "broken.toml").write_text(
        f'name = "broken"\n[start_urls]\nfront = ["{broken_site}/"]\n[articles]\nurl_patterns = \'/a/\\d+\\.html\'\n',
        encoding="utf-8",
    )
    runner = NewsvaultRunner(tmp_path, env={"NEWSVAULT_SITES_DIR": str(sites)})
    output = tmp_path / "items.jsonl"
    stats = runner.crawl_summary("broken", "--no-archive", "--output", str(output))["stats"]
    items = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert sorted(i["title"] for i in items) == ["Council approves the budget", "Rail strike ends", "Storm closes the harbour"]
    # The bogus canonical is ignored: each article keeps its own address.
    assert sorted(i["canonical_url"] for i in items) == [f"{broken_site}/a/{n}.html" for n in (1, 2, 3)]
    assert stats.get("newsvault/pages/canonical_ignored") == 3


def test_gzip_bomb_is_counted_as_too_large(tmp_path: Path) -> None:
    from samplesite.model import SampleSite
    from samplesite.server import SiteServer

    runner = NewsvaultRunner(tmp_path)
    with SiteServer(SampleSite(articles=50)).start() as server:
        stats = runner.crawl_summary("sample", "--no-archive", "--start-url", server.base_url + "/faults/gzip-bomb",
                                     "--start-url", server.base_url + "/")["stats"]
    # The bomb and the linked oversize page, both refused at the size limit.
    assert stats.get("newsvault/pages/too_large") == 2
    assert "newsvault/pages/ignored" not in stats


def test_a_start_page_that_leads_nowhere_is_counted(tmp_path: Path) -> None:
    from samplesite.model import SampleSite
    from samplesite.server import SiteServer

    runner = NewsvaultRunner(tmp_path)
    with SiteServer(SampleSite(articles=50)).start() as server:
        # 10 MB of text with no links, just under the default size limit.
        stats = runner.crawl_summary("sample", "--no-archive", "--start-url", server.base_url + "/faults/big-10mb.html")["stats"]
    assert stats.get("newsvault/pages/nothing_new") == 1
    assert stats.get("item_scraped_count", 0) == 0

"""Redirect loops and redirects off the site are counted in "pages not used", like every other reason."""

from __future__ import annotations

import json
from pathlib import Path

from tests.plugins.cli import NewsvaultRunner
from tests.plugins.pages import PageSite

ARTICLE = """<html><head><title>Grain and diplomacy</title></head><body><article><h1>Grain and diplomacy</h1>
<p>The talks in Minsk went on through the night and ended with a short statement from both delegations.</p>
<p>Both sides said the next round would come in the spring, after the harvest figures are known.</p>
</article></body></html>"""


PAGES = {
    "/": ('<a href="/news/1-loop.html">loop</a> <a href="/news/2-away.html">away</a> '
          '<a href="/news/3-grain.html">article</a>'),
    "/news/1-loop.html": (302, "", "/news/1-loop.html?again"),
    "/news/1-loop.html?again": (302, "", "/news/1-loop.html?again"),  # never ends
    "/news/2-away.html": (301, "", "http://elsewhere.invalid/news/2-away.html"),
    "/news/3-grain.html": ARTICLE,
}


def test_redirect_loops_and_offsite_redirects_are_pages_not_used(
    newsvault_cli: NewsvaultRunner, page_site: PageSite, tmp_path: Path
) -> None:
    redirecting_site = page_site(PAGES)
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

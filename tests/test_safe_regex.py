"""Profile regexes cannot stall a crawl: RE2 matching, refused patterns named at load.

The two patterns below took a crawl to 100% CPU for 12 minutes (only SIGKILL
stopped it) with Python's backtracking engine, one in the spider and one in
the item stages. The crawl here runs in a child process with a generous
timeout: a stall fails the test, and no speed is asserted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from newsvault.errors import ProfileError
from newsvault.regex import compile_safe
from spiders.profile import load_profile
from tests.plugins.cli import NewsvaultRunner
from tests.plugins.pages import PageSite

HOSTILE = "a" * 40 + "!"
ARTICLE = f"""<html><head><title>Grain and diplomacy</title></head><body><article>
<h1>Grain and diplomacy</h1>
<p>The talks in Minsk went on through the night and ended with a short statement.</p>
<p>{HOSTILE}</p>
<p>Both sides said the next round would come in the spring, after the harvest figures.</p>
<p>Observers noted that the statement left the question of transit open.</p>
</article></body></html>"""
FRONT = f"""<html><body><a href="/news/10-{HOSTILE}.html">hostile</a>
<a href="/news/11-grain-and-diplomacy.html">article</a></body></html>"""


@pytest.fixture
def hostile_site(page_site: PageSite) -> str:
    return page_site({"/": FRONT, "/news/11-grain-and-diplomacy.html": ARTICLE})


def _profile(sites: Path, base_url: str) -> None:
    sites.mkdir()
    (sites / "careless.toml").write_text(
        f'name = "careless"\n[start_urls]\nfront = ["{base_url}/"]\n'
        "[articles]\nurl_patterns = ['/news/\\d+-(a+)+\\.html', '/news/\\d+-[a-z-]+\\.html']\n"
        "[furniture]\nstrip_patterns = ['^(a+)+$']\n",
        encoding="utf-8",
    )


def test_catastrophic_patterns_do_not_stall_the_crawl(newsvault_cli: NewsvaultRunner, hostile_site: str, tmp_path: Path) -> None:
    _profile(tmp_path / "sites", hostile_site)
    output = tmp_path / "items.jsonl"
    result = newsvault_cli("crawl", "careless", "--output", str(output), timeout=120,
                           env={"NEWSVAULT_SITES_DIR": str(tmp_path / "sites"), "NEWSVAULT_CRAWL_OBEY_ROBOTS": "false"})
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    items = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    (article,) = [item for item in items if item.get("type") == "article"]
    assert "Minsk" in article["body"]
    # The strip pattern ran on the line and, as Python's engine would after minutes, did not match it.
    assert HOSTILE in article["body"]


def test_the_same_patterns_match_as_written() -> None:
    assert compile_safe(r"/news/\d+-(a+)+\.html").search("/news/10-aaaa.html")
    assert not compile_safe(r"/news/\d+-(a+)+\.html").search(f"/news/10-{HOSTILE}.html")
    assert compile_safe("^(a+)+$", ignore_case=True, multiline=True).sub("", "keep\nAAAA\nkeep") == "keep\n\nkeep"


@pytest.mark.parametrize(("pattern", "reason"), [(r"(\w)\1", "escape"), (r"^(?=x)", "perl operator"), ("[", "missing ]")])
def test_patterns_re2_cannot_take_are_refused_at_load_naming_file_and_key(tmp_path: Path, pattern: str, reason: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f"name = \"bad\"\n[start_urls]\nfront = [\"http://x.test/\"]\n[articles]\nurl_patterns = ['{pattern}']\n",
                    encoding="utf-8")
    with pytest.raises(ProfileError) as excinfo:
        load_profile(path)
    message = str(excinfo.value)
    assert message.startswith(f"{path}: articles.url_patterns: bad regex") and reason in message
    assert "\n" not in message

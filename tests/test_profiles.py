"""Site profiles: loading, validation errors naming file and key, the bundled profiles, `newsvault sites`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from newsvault.errors import ProfileError, UnknownSiteError
from spiders.profile import find_profile, list_profiles, load_profile

MINIMAL = """
name = "mini"
[start_urls]
front = ["http://127.0.0.1:8000/"]
[articles]
url_patterns = '/news/\\d+'
"""

# (case id, profile text, dotted key the message must name, words the problem must contain)
BAD_PROFILES = [
    ("missing-name", MINIMAL.replace('name = "mini"', ""), "name", "missing key"),
    ("missing-articles", MINIMAL.split("[articles]")[0], "articles", "missing key"),
    ("no-start-url", MINIMAL.replace('front = ["http://127.0.0.1:8000/"]', ""), "start_urls", "no start URL"),
    ("bad-regex", MINIMAL.replace("'/news/\\d+'", "'/news/(\\d+'"), "articles.url_patterns", "bad regex"),
    (
        "unknown-selector-kind",
        MINIMAL + '[articles.fields]\ntitle = [{css = "h1"}, {jq = ".title"}]\n',
        "articles.fields.title",
        "unknown selector kind 'jq'",
    ),
    ("bad-css", MINIMAL + '[articles.fields]\ntitle = {css = "h1[["}\n', "articles.fields.title", "bad selector"),
    ("bad-timezone", 'timezone = "Mars/Olympus"\n' + MINIMAL, "timezone", "unknown timezone"),
    ("toml-syntax", MINIMAL + "[limits\nmax_pages = 3\n", "-", "not valid TOML"),
    ("unknown-key", MINIMAL + "[limits]\nmax_page = 3\n", "limits.max_page", "unknown key"),
    (
        "bad-schedule",
        MINIMAL + "[schedule.articles]\ninterval_seconds = -5\n",
        "schedule.articles.interval_seconds",
        "greater than 0",
    ),
    ("bad-strip-pattern", MINIMAL + "[furniture]\nstrip_patterns = ['(unclosed']\n", "furniture.strip_patterns", "bad regex"),
]


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_minimal_profile_loads_with_defaults(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, "mini", MINIMAL))
    assert profile.name == "mini"
    assert profile.domains() == ["127.0.0.1"]
    assert profile.kinds == ["articles"]
    assert profile.is_article_url("http://127.0.0.1:8000/news/12-x.html")
    assert not profile.is_article_url("http://127.0.0.1:8000/section/x/")
    assert profile.timezone == "UTC"


@pytest.mark.parametrize(("case", "text", "key", "problem"), BAD_PROFILES, ids=[c[0] for c in BAD_PROFILES])
def test_bad_profile_is_refused_naming_file_and_key(tmp_path: Path, case: str, text: str, key: str, problem: str) -> None:
    path = write(tmp_path, "bad", text)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {key}: "), message
    assert problem in message


def test_bundled_profiles_load() -> None:
    import sites

    profiles = {p.name: p for p in list_profiles(Path(sites.__file__).parent)}
    assert {"sample", "generic-sample"} <= set(profiles)
    sample = profiles["sample"]
    assert sample.timezone == "Europe/Moscow"
    assert sample.kinds == ["articles", "discussions"]
    assert sample.schedule.articles is not None and sample.schedule.articles.interval_seconds == 300
    assert sample.schedule.discussions is not None and sample.schedule.discussions.interval_seconds == 60
    # Any port on loopback is in scope: tests run the sample site on a free port.
    assert "127.0.0.1" in sample.domains()
    generic = profiles["generic-sample"]
    assert generic.articles.fields == {} and generic.discussions is None


def test_find_profile_by_file_or_declared_name(tmp_path: Path) -> None:
    write(tmp_path, "other-file", MINIMAL)
    write(tmp_path, "broken", "name = ")
    assert find_profile("mini", tmp_path).name == "mini"
    with pytest.raises(UnknownSiteError) as info:
        find_profile("nope", tmp_path)
    assert "mini" in str(info.value)


def test_cli_refuses_each_bad_profile(tmp_path: Path, newsvault_cli) -> None:
    """Every bad case through `newsvault crawl`: exit 2 and one stderr line naming file and key."""
    for case, text, key, problem in BAD_PROFILES:
        sites_dir = tmp_path / case
        sites_dir.mkdir()
        path = write(sites_dir, "bad", text)
        result = newsvault_cli("crawl", "bad", "--no-archive", env={"NEWSVAULT_SITES_DIR": str(sites_dir)})
        assert result.returncode == 2, (case, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, (case, result.stderr)
        assert f"{path}: {key}: " in lines[0] and problem in lines[0], (case, lines[0])


def test_cli_unknown_site_and_sites_table(tmp_path: Path, newsvault_cli) -> None:
    result = newsvault_cli("crawl", "no-such-site", "--no-archive")
    assert result.returncode == 2
    assert "unknown site 'no-such-site'" in result.stderr

    listing = newsvault_cli("sites")
    assert listing.returncode == 0, listing.stderr
    rows = {line.split()[0]: line for line in listing.stdout.splitlines()[1:] if line.strip()}
    assert "articles, discussions" in rows["sample"] and "every 300s" in rows["sample"]
    assert "every 60s" in rows["sample"]
    assert rows["generic-sample"].split()[1] == "127.0.0.1"

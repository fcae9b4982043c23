"""The catalog against the sample site's ground truth: versions, diffs, search, threads, changes, rebuild, exports.

Three archived crawls (ticks 0, 1, 2) of a 60-article sample site, articles
and discussions, into a local archive and into S3 (SeaweedFS). Every
assertion compares with the site's own model of what changed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from catalog.diff import body_diff
from tests.plugins.cli import NewsvaultRunner
from tests.plugins.replay import replay

ARTICLES = 60
TICKS = (0, 1, 2)


@dataclass
class Archived:
    cli: NewsvaultRunner
    site: Any
    summaries: dict[tuple[int, str], dict[str, Any]]

    def json(self, *args: str) -> Any:
        result = self.cli(*args, "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads(result.stdout)


def _crawl_ticks(cli: NewsvaultRunner, site: Any) -> Archived:
    # Every known article revisited each run: the ticks are 6 simulated hours apart
    # but seconds apart in time, so under the tiers no removal would be due yet.
    cli.env.setdefault("NEWSVAULT_REVISIT_MODE", "all")
    summaries = {}
    for tick in TICKS:
        site.set_tick(tick)
        summaries[(tick, "articles")] = cli.crawl_summary("sample", "--start-url", site.base_url + "/sitemap.xml")
        summaries[(tick, "discussions")] = cli.crawl_summary("sample", "--kind", "discussions",
                                                             "--start-url", site.base_url + "/discussions/")
    return Archived(cli, site, summaries)


@pytest.fixture(scope="module")
def local_archive(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from samplesite import SampleSite, SiteServer

    server = SiteServer(SampleSite(ARTICLES)).start()
    root = tmp_path_factory.mktemp("catalog-local")
    try:
        yield _crawl_ticks(NewsvaultRunner(root), server)
    finally:
        server.stop()


def _edited(site: Any, before: int, after: int) -> dict[str, tuple[Any, Any]]:
    """canonical URL -> (article at ``before``, at ``after``) for articles edited between the ticks."""
    model = site.site
    out = {}
    for article_id in model.live_ids(after):
        if model.is_live(article_id, before):
            old, new = model.article(article_id, before), model.article(article_id, after)
            if (old.title, old.paragraphs) != (new.title, new.paragraphs):
                out[model.canonical_url(article_id)] = (old, new)
    return out


def _reported_ops(diff: dict[str, Any]) -> set[tuple[str | int, ...]]:
    """A diff's changes in the sample site's ground-truth terms (see Article.edit_ops)."""
    ops: set[tuple[str | int, ...]] = {(change["field"],) for change in diff["fields"]}
    for op in diff["body"]["operations"]:
        if op["op"] == "replace":
            ops.add(("replace", op["old_index"], op["new_index"]))
        elif op["op"] == "insert":
            ops.add(("insert", op["new_index"]))
        elif op["op"] == "delete":
            ops.add(("delete", op["old_index"]))
    return ops


def test_every_edit_is_a_version_and_the_diff_reports_exactly_it(local_archive: Archived) -> None:
    site = local_archive.site
    edited = _edited(site, 0, 2)
    assert edited, "the ticks edited nothing"
    for url, (old, new) in edited.items():
        history = local_archive.json("history", url)
        assert len(history["versions"]) == 1 + new.version - old.version, url
        diff = json.loads(local_archive.cli("diff", url, "--from", "-2", "--to", "-1", "--format", "json").stdout)
        assert diff["kind"] == "substantive"
        if new.version == old.version + 1:  # one edit: the diff is exactly its ground truth
            # Every edit also moves the page's modified date.
            assert _reported_ops(diff) == set(new.edit_ops) | {("modified_at",)}, url
            fields = {change["field"]: change for change in diff["fields"]}
            if "title" in fields:
                assert (fields["title"]["from"], fields["title"]["to"]) == (old.title, new.title)
            if "authors" in fields:
                assert (fields["authors"]["from"], fields["authors"]["to"]) == (list(old.authors), list(new.authors))


def test_the_diff_reports_every_kind_of_edit_exactly() -> None:
    """Over many ticks of the model: headline, byline, replaced, inserted and removed paragraphs."""
    from samplesite import SampleSite

    model = SampleSite(articles=400, seed=3)
    seen: set[str] = set()
    for tick in range(1, 150):
        article_id = model.edited_at(tick)
        if not (model.is_live(article_id, tick - 1) and model.is_live(article_id, tick)):
            continue
        old, new = model.article(article_id, tick - 1), model.article(article_id, tick)
        body = {op for op in new.edit_ops if op[0] not in ("title", "authors")}
        reported = set()
        for op in body_diff(old.body, new.body):
            if op["op"] == "replace":
                reported.add(("replace", op["old_index"], op["new_index"]))
            elif op["op"] in ("insert", "delete"):
                reported.add((op["op"], op["new_index" if op["op"] == "insert" else "old_index"]))
        assert reported == body, (tick, article_id)
        assert (old.title != new.title) == (("title",) in new.edit_ops)
        assert (old.authors != new.authors) == (("authors",) in new.edit_ops)
        seen.update(str(op[0]) for op in new.edit_ops)
    assert seen == {"title", "authors", "replace", "insert", "delete"}


def test_counters_alone_never_make_a_version(local_archive: Archived) -> None:
    site = local_archive.site.site
    untouched = [site.canonical_url(i) for i in site.live_ids(2)
                 if site.is_live(i, 0) and site.canonical_url(i) not in _edited(local_archive.site, 0, 2)]
    assert untouched
    for url in untouched[:10]:
        history = local_archive.json("history", url)
        assert len(history["versions"]) == 1, url  # the views counter moved every tick
        assert len(history["versions"][0]["snapshots"]) == len(TICKS)


def test_a_phrase_edited_away_is_still_found(local_archive: Archived) -> None:
    edited = _edited(local_archive.site, 0, 2)
    url, old, new = next((u, o, n) for u, (o, n) in edited.items()
                         if any(a != b for a, b in zip(o.paragraphs, n.paragraphs, strict=False)))
    gone = next(a for a, b in zip(old.paragraphs, new.paragraphs, strict=False) if a != b)
    # Compared as the full-text index sees text: case-folded words, punctuation ignored.
    words = re.findall(r"\w+", gone.casefold())
    later = " ".join(re.findall(r"\w+", " ".join(new.paragraphs).casefold()))
    phrase = next(" ".join(words[i:i + 5]) for i in range(len(words) - 5)
                  if f" {' '.join(words[i:i + 5])} " not in f" {later} ")
    found = local_archive.json("search", f'"{phrase}"', "--site", "sample")
    hit = next(h for h in found["hits"] if h["canonical_url"] == url)
    assert 1 in hit["versions"] and hit["only_in_earlier_versions"]


def test_threads_and_changes_follow_the_site(local_archive: Archived) -> None:
    model = local_archive.site.site
    truth = model.changes(0, 1)
    moved = truth["threads_moved"][0]
    thread = local_archive.json("thread", moved)
    counts = [o["comment_count"] for o in thread["observations"]]
    assert len(counts) == len(TICKS) and counts[0] != counts[1]
    since = local_archive.summaries[(1, "articles")]["stats"]["start_time"]
    until = local_archive.summaries[(2, "articles")]["stats"]["start_time"]
    window = local_archive.json("changes", "sample", "--since", since, "--until", until)
    assert window["articles"]["new"] == sorted(truth["new"])
    assert window["articles"]["updated"] == sorted(truth["updated"])
    assert window["articles"]["removed"] == sorted(truth["removed"])
    assert set(truth["threads_moved"]) <= set(window["threads"]["updated"]) | set(window["threads"]["new"])


def _answers(archived: Archived) -> list[str]:
    """Everything the catalog answers, as the CLI prints it (compared byte for byte)."""
    site = archived.site
    urls = sorted(_edited(site, 0, 2))[:3] + [site.site.canonical_url(site.site.live_ids(2)[-1])]
    out = []
    for url in urls:
        out.append(archived.cli("history", url, "--json").stdout)
        out.append(archived.cli("diff", url, "--format", "json").stdout)
    for query in ("border", "\"gas supplies\"", "Минск*"):
        out.append(archived.cli("search", query, "--json").stdout)
    thread_url = site.site.changes(0, 1)["threads_moved"][0]
    out.append(archived.cli("thread", thread_url, "--json").stdout)
    out.append(archived.cli("changes", "sample", "--since", "2000-01-01T00:00:00Z", "--json").stdout)
    assert all(text.strip() for text in out)
    return out


def _rebuilt_answers(archived: Archived) -> list[str]:
    before = _answers(archived)
    shutil.rmtree(archived.cli.state_dir)  # everything but the archive is gone
    rebuilt = archived.cli("catalog", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert f"{2 * len(TICKS)} snapshot(s) added" in rebuilt.stdout
    return [before, _answers(archived)]  # type: ignore[list-item]


def test_each_crawl_indexed_its_new_versions_ahead_and_left_nothing_behind(local_archive: Archived) -> None:
    from catalog.db import Catalog

    with Catalog(local_archive.cli.state_dir / "catalog.sqlite", str(local_archive.cli.archive_dir)) as catalog:
        db = catalog.db
        for tick in TICKS:
            summary = local_archive.summaries[(tick, "articles")]
            first_seen_here = db.execute(
                "SELECT COUNT(*) FROM (SELECT version_id, MIN(snapshot_id) AS first FROM sightings GROUP BY version_id)"
                " WHERE first = ?", (summary["snapshot_id"],)).fetchone()[0]
            assert summary["stats"]["newsvault/catalog/prepared"] == first_seen_here, tick
        assert local_archive.summaries[(0, "articles")]["stats"]["newsvault/catalog/prepared"] >= ARTICLES // 2
        assert db.execute("SELECT COUNT(*) FROM prepared_versions").fetchone()[0] == 0
        db.execute("INSERT INTO versions_fts (versions_fts, rank) VALUES ('integrity-check', 1)")


def test_a_rebuilt_catalog_answers_byte_for_byte_as_the_incremental_one(local_archive: Archived) -> None:
    before, after = _rebuilt_answers(local_archive)
    assert before == after


def test_rebuild_from_s3_too(s3_server: Any, sample_site_factory: Any, tmp_path: Path) -> None:
    cli = NewsvaultRunner(tmp_path)
    cli.env.update({**s3_server.env(), "NEWSVAULT_ARCHIVE": s3_server.archive_url(f"catalog-{uuid.uuid4().hex[:8]}")})
    archived = _crawl_ticks(cli, sample_site_factory(articles=ARTICLES))
    before, after = _rebuilt_answers(archived)
    assert before == after


def test_a_snapshot_failing_verification_is_skipped_and_named(local_archive: Archived, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    shutil.copytree(local_archive.cli.archive_dir, archive)
    damaged = local_archive.summaries[(1, "discussions")]["snapshot_id"]
    (items,) = archive.glob(f"snapshots/sample/discussions/{damaged}/items.jsonl.gz")
    items.write_bytes(items.read_bytes()[:-1] + b"x")
    result = local_archive.cli("catalog", "rebuild", "--archive", str(archive), "--catalog", str(tmp_path / "c.sqlite"))
    assert result.returncode == 1
    assert f"skipped {damaged}: " in result.stderr
    assert f"{2 * len(TICKS) - 1} snapshot(s) added" in result.stdout


def test_errors_are_one_line(local_archive: Archived) -> None:
    for args, text in ((["history", "http://nowhere.invalid/x"], "no archived article"),
                       (["search", '"unbalanced'], "bad search query"),
                       (["changes", "sample", "--since", "yesterday"], "not an ISO 8601 time"),
                       (["diff", local_archive.site.site.canonical_url(1), "--to", "9"], "no version 9")):
        result = local_archive.cli(*args)
        assert result.returncode == 1, args
        assert result.stderr.strip().splitlines()[-1].startswith("newsvault: error:") and text in result.stderr
        assert "Traceback" not in result.stderr


def test_exports_hold_every_version_with_utc_times(local_archive: Archived, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    cli = local_archive.cli
    for what, fmt in (("versions", "jsonl"), ("articles", "csv"), ("versions", "parquet"), ("observations", "parquet")):
        target = tmp_path / f"{what}.{fmt}"
        result = cli("export", what, "--format", fmt, "--to", str(target))
        assert result.returncode == 0, result.stderr
    versions = [json.loads(line) for line in (tmp_path / "versions.jsonl").read_text(encoding="utf-8").splitlines()]
    model = local_archive.site.site
    multi = {model.canonical_url(i) for i in model.live_ids(2)
             if len({(a.title, a.paragraphs) for a in (model.article(i, t) for t in TICKS if model.is_live(i, t))}) > 1}
    assert {v["canonical_url"] for v in versions if v["version"] > 1} == multi
    table = pq.read_table(tmp_path / "versions.parquet")
    assert table.num_rows == len(versions)
    assert str(table.schema.field("first_seen").type) == "timestamp[us, tz=UTC]"
    assert pq.read_table(tmp_path / "observations.parquet").num_rows > 0
    header = (tmp_path / "articles.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("site,canonical_url,version,versions,first_seen")


def test_a_wacz_export_validates_and_replays(local_archive: Archived, tmp_path: Path) -> None:
    snapshot_id = local_archive.summaries[(2, "articles")]["snapshot_id"]  # revisits resolved into it
    target = tmp_path / "snapshot.wacz"
    result = local_archive.cli("export", snapshot_id, "--format", "wacz", "--to", str(target))
    assert result.returncode == 0, result.stdout + result.stderr
    validated = subprocess.run([sys.executable, "-m", "wacz", "validate", "-f", str(target)],
                               capture_output=True, text=True, timeout=120, check=False)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    with zipfile.ZipFile(target) as wacz:
        names = wacz.namelist()
        assert "datapackage.json" in names and "pages/pages.jsonl" in names
        assert any(name.startswith("indexes/") for name in names)
        pages = [json.loads(line) for line in wacz.read("pages/pages.jsonl").decode().splitlines()[1:]]
        warcs = [name for name in names if name.startswith("archive/")]
        wacz.extractall(tmp_path / "unpacked", members=warcs)
    assert len(pages) == local_archive.summaries[(2, "articles")]["items"]
    stamp = pages[0]["ts"].replace("-", "").replace(":", "").replace("T", "")[:14]
    served = replay(sorted((tmp_path / "unpacked").rglob("*.warc.gz")), [(p["url"], stamp) for p in pages])
    assert {r["url"]: r["status"] for r in served} == {p["url"]: 200 for p in pages}

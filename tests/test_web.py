"""The web view, end to end: a real daemon serving it (``--web-port``), real crawls of the hostile
sample site, and a real headless Chromium reading the pages against the run history and the catalog.

One archive is built for the module (four crawls and a failed run, through the
daemon), then every test reads it; the trigger test adds a run of its own.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from archive.verify_log import VerifyLog
from catalog import query
from catalog.db import Catalog
from catalog.diff import diff, paragraphs
from samplesite import SampleSite, SiteServer
from scheduler.history import RunRecord, open_history
from tests.plugins.browser import screenshot
from tests.plugins.cli import FAST_CRAWL_ENV, child_env, run_newsvault

TOKEN = "web-token-for-the-tests-0123456789"
ARTICLES = 60
HOOK = "window.__nvHostile"


@dataclass
class WebArchive:
    root: Path
    site: SiteServer
    url: str  # the web view's base URL
    daemon: subprocess.Popen[str]

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def config(self) -> Path:
        return self.root / "newsvault.toml"

    def env(self) -> dict[str, str]:
        return {**FAST_CRAWL_ENV, "NEWSVAULT_WEB_TOKEN": TOKEN}

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return run_newsvault(*args, "--config", str(self.config), env=self.env(), cwd=self.root, timeout=timeout)

    def trigger(self, kind: str, *extra: str) -> None:
        out = self.cli("trigger", "sample", "--kind", kind, *extra)
        assert "run " in out.stdout, out.stdout + out.stderr + self.daemon_log()

    def runs(self) -> list[RunRecord]:
        history = open_history(self.state_dir)
        try:
            return history.list_runs(limit=None)
        finally:
            history.close()

    def catalog(self) -> Catalog:
        return Catalog(self.state_dir / "catalog.sqlite", str(self.root / "archive"), create=False)

    def daemon_log(self) -> str:
        path = self.root / "daemon.log"
        return path.read_text(encoding="utf-8")[-3000:] if path.exists() else ""


def _write_config(root: Path) -> Path:
    config = root / "newsvault.toml"
    config.write_text(
        f'[archive]\nurl = "{root / "archive"}"\n\n[state]\ndir = "{root / "state"}"\n\n'
        "[daemon]\ncrawl_timeout_seconds = 120\n\n"
        # Hours apart: the tests' runs are the ones they trigger.
        "[schedules.sample.articles]\ninterval_seconds = 36000\n\n"
        "[schedules.sample.discussions]\ninterval_seconds = 36000\n", encoding="utf-8")
    return config


@pytest.fixture(scope="module")
def web_archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebArchive]:
    root = tmp_path_factory.mktemp("web")
    site = SiteServer(SampleSite(ARTICLES, seed=0, tick=0, hostile=True)).start()
    config = _write_config(root)
    log = open(root / "daemon.log", "a", encoding="utf-8")  # noqa: SIM115
    daemon = subprocess.Popen(
        [sys.executable, "-m", "scheduler", "daemon", "--config", str(config), "--web-port", "0",
         "--start-url", f"sample:articles={site.base_url}/",
         "--start-url", f"sample:discussions={site.base_url}/discussions/"],
        stdout=log, stderr=subprocess.STDOUT, text=True, cwd=root,
        env=child_env({**FAST_CRAWL_ENV, "NEWSVAULT_WEB_TOKEN": TOKEN}))
    log.close()
    addr = root / "state" / "web.addr"
    deadline = time.monotonic() + 60
    while not addr.exists() and daemon.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    harness = WebArchive(root, site, "", daemon)
    if not addr.exists():
        daemon.kill()
        site.stop()
        pytest.fail("the daemon did not start its web view\n" + harness.daemon_log())
    harness.url = "http://" + addr.read_text(encoding="ascii").strip()
    try:
        # Two crawls of each kind, the site moving on between them (edits, new comments),
        # and one run that fails, for the dashboard to flag.
        harness.trigger("articles")
        harness.trigger("discussions")
        site.set_tick(4)
        harness.trigger("articles")
        harness.trigger("discussions")
        harness.trigger("articles", "--start-url", "http://127.0.0.1:9/")
        yield harness
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
        site.stop()


def _get(url: str, *, headers: dict[str, str] | None = None, data: bytes | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode("utf-8", "replace")


def _updated_article(cat: Catalog) -> str:
    row = cat.db.execute(
        "SELECT canonical_url FROM versions GROUP BY canonical_url HAVING COUNT(*) > 1 ORDER BY canonical_url LIMIT 1"
    ).fetchone()
    assert row, "the second crawl found no edited article"
    return str(row[0])


# -- HTTP level: no browser needed ------------------------------------------------------
def test_pages_carry_a_no_script_policy_and_archived_pages_a_sandbox(web_archive: WebArchive) -> None:
    status, headers, body = _get(web_archive.url + "/")
    assert status == 200
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp  # nothing allows script
    assert "<script" not in body.lower()
    with web_archive.catalog() as cat:
        version = query.versions(cat, _updated_article(cat))[0]
    raw = f"{web_archive.url}/capture/{version.snapshots[0]}/raw?url={urllib.parse.quote(version.fields['url'])}"
    status, headers, body = _get(raw)
    assert status == 200, body
    assert headers["content-security-policy"].startswith("sandbox;")
    assert "default-src 'none'" in headers["content-security-policy"]
    assert version.fields["title"].split()[0] in body  # the page as the site served it


def test_writes_are_refused_without_the_token_and_a_bearer_token_is_checked(web_archive: WebArchive) -> None:
    form = urllib.parse.urlencode({"site": "sample", "kind": "articles"}).encode()
    before = len(web_archive.runs())
    status, _, body = _get(web_archive.url + "/trigger", data=form)
    assert status == 403 and "CSRF" in body
    status, _, body = _get(web_archive.url + "/trigger", data=form, headers={"Authorization": "Bearer wrong-token-xxxxxxxx"})
    assert status == 403 and "wrong token" in body
    with web_archive.catalog() as cat:
        snapshot_id = min(cat.snapshot_ids())
    status, _, _ = _get(f"{web_archive.url}/snapshots/{snapshot_id}/verify", data=b"")
    assert status == 403
    time.sleep(1.0)  # a request that slipped through would be a run by now
    assert len(web_archive.runs()) == before
    assert not list((web_archive.state_dir / "triggers").glob("*.json"))


def test_bearer_verify_records_the_outcome(web_archive: WebArchive) -> None:
    with web_archive.catalog() as cat:
        snapshot_id = min(cat.snapshot_ids())
    status, _, body = _get(f"{web_archive.url}/snapshots/{snapshot_id}/verify", data=b"",
                           headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and "every file matches its checksum" in body, body
    check = VerifyLog.in_state_dir(web_archive.state_dir, str(web_archive.root / "archive")).last()[snapshot_id]
    assert check.status == "ok"


def test_a_link_cannot_make_a_snapshot_page_claim_a_check(web_archive: WebArchive) -> None:
    with web_archive.catalog() as cat:
        snapshot_id = sorted(cat.snapshot_ids())[1]  # no test verifies this one
    for query_string in ("message=verified%3A+every+file+matches+its+checksum", "checked=1"):
        status, _, body = _get(f"{web_archive.url}/snapshots/{snapshot_id}?{query_string}")
        assert status == 200
        assert "every file matches" not in body and 'data-verify="never"' in body


def test_serving_beyond_loopback_without_a_token_is_refused(tmp_path: Path) -> None:
    config = _write_config(tmp_path)
    out = run_newsvault("web", "--config", str(config), "--host", "0.0.0.0", "--port", "0", timeout=60)
    assert out.returncode == 1
    assert "refusing to serve the web view on 0.0.0.0 without a token" in out.stderr


# -- in a real browser -------------------------------------------------------------------
@pytest.fixture
def page(chromium: Any, web_archive: WebArchive) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, base_url=web_archive.url)
    tab = context.new_page()
    tab.dialogs = []
    tab.errors = []
    tab.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
    tab.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    tab.on("console", lambda msg: msg.type == "error" and tab.errors.append(msg.text))
    yield tab
    context.close()


def _runs_shown(page: Any, table: str) -> list[tuple[str, str]]:
    rows = page.locator(f"{table} tr.run")
    return [(rows.nth(i).get_attribute("data-run-id"), rows.nth(i).locator("[data-status]").get_attribute("data-status"))
            for i in range(rows.count())]


def test_dashboard_shows_the_run_history_and_flags_the_failed_run(page: Any, web_archive: WebArchive) -> None:
    page.goto("/")
    runs = web_archive.runs()
    assert _runs_shown(page, ".recent") == [(r.run_id, r.status) for r in runs[:20]]
    failed = [r for r in runs if r.status == "failed"]
    assert failed and _runs_shown(page, ".problems") == [(r.run_id, r.status) for r in failed]
    assert "every start URL failed" in page.locator(".problems .why").first.inner_text()
    assert page.locator("[data-job]").evaluate_all("rows => rows.map(r => r.dataset.job)") == [
        "sample:articles", "sample:discussions"]
    assert page.locator("[data-daemon]").get_attribute("data-daemon") == "running"
    with web_archive.catalog() as cat:
        assert page.locator("[data-archive-snapshots]").get_attribute("data-archive-snapshots") == str(
            len(cat.snapshot_ids()))
    screenshot(page, "web-dashboard")
    assert not page.errors


def test_a_run_leads_to_its_snapshot(page: Any, web_archive: WebArchive) -> None:
    run = next(r for r in web_archive.runs() if r.status == "ok" and r.kind == "articles")
    page.goto("/")
    page.locator(f".recent tr[data-run-id='{run.run_id}'] a").first.click()
    assert page.locator("h1 [data-run-id]").inner_text() == run.run_id
    page.locator("a.snapshot-link").click()
    assert page.locator("[data-snapshot-id]").inner_text() == run.snapshot_id
    with web_archive.catalog() as cat:
        row = cat.db.execute("SELECT items, status FROM snapshots WHERE snapshot_id=?", (run.snapshot_id,)).fetchone()
        titles = {r[0] for r in cat.db.execute(
            "SELECT v.title FROM sightings s JOIN versions v ON v.id=s.version_id WHERE s.snapshot_id=?",
            (run.snapshot_id,))}
    assert page.locator("[data-items]").inner_text() == str(row["items"])
    assert page.locator("[data-snapshot-status]").inner_text() == row["status"]
    shown = set(page.locator("table.articles td:first-child a").all_inner_texts())
    assert shown == titles
    screenshot(page, "web-snapshot")
    assert not page.errors


def test_an_updated_article_leads_to_its_diff(page: Any, web_archive: WebArchive) -> None:
    with web_archive.catalog() as cat:
        url = _updated_article(cat)
        found = query.versions(cat, url)
        expected = diff(found[-2], found[-1])
    # Since the second crawl began: what it found changed.
    second = sorted((r for r in web_archive.runs() if r.kind == "articles" and r.status == "ok"),
                    key=lambda r: r.started_at or "")[1]
    page.goto(f"/sites/sample?since={urllib.parse.quote(second.started_at or '')}")
    page.locator(f".changes-updated a[href='/article?url={urllib.parse.quote(url, safe='')}']").click()
    assert page.locator("table.timeline tr[data-version]").count() == len(found)
    section = page.locator("section.diff")
    assert section.get_attribute("data-from") == str(found[-2].number)
    assert section.get_attribute("data-to") == str(found[-1].number)
    assert section.get_attribute("data-diff-kind") == expected["kind"]
    assert page.locator("table.fields tr[data-field]").evaluate_all(
        "rows => rows.map(r => r.dataset.field)") == [f["field"] for f in expected["fields"]]
    changed = [op for op in expected["body"]["operations"] if op["op"] != "equal"]
    assert page.locator(".inline-diff p:not(.op-equal)").count() == len(changed)
    unchanged = [paragraphs(found[-1].fields["body"])[op["new_index"]]
                 for op in expected["body"]["operations"] if op["op"] == "equal"]
    assert [" ".join(t.split()) for t in page.locator(".inline-diff p.op-equal").all_inner_texts()] == [
        " ".join(t.split()) for t in unchanged]
    screenshot(page, "web-article-diff")
    page.select_option("select[name=view]", "side")
    page.locator("form.filters button").click()
    assert page.locator("table.side-by-side tbody tr").count() == len(expected["body"]["operations"])
    assert not page.errors


def test_a_thread_leads_to_its_chart(page: Any, web_archive: WebArchive) -> None:
    # Since the second discussions crawl began: the threads that moved come first.
    second = sorted((r for r in web_archive.runs() if r.kind == "discussions" and r.status == "ok"),
                    key=lambda r: r.started_at or "")[1]
    page.goto(f"/sites/sample?since={urllib.parse.quote(second.started_at or '')}")
    links = page.locator(".changes-threads a")
    assert links.count() > 0
    href = links.first.get_attribute("href")
    links.first.click()
    url = urllib.parse.parse_qs(urllib.parse.urlsplit(href).query)["url"][0]
    with web_archive.catalog() as cat:
        observations = query.thread(cat, url)["observations"]
    points = page.locator("figure.chart-comments circle.point")
    assert points.evaluate_all("cs => cs.map(c => [c.dataset.at, c.dataset.value])") == [
        [o["observed_at"], str(o["comment_count"])] for o in observations]
    assert page.locator("table.observations tbody tr").count() == len(observations)
    screenshot(page, "web-thread")
    assert not page.errors


def test_search_finds_what_the_catalog_finds(page: Any, web_archive: WebArchive) -> None:
    with web_archive.catalog() as cat:
        expected = [hit["canonical_url"] for hit in query.search(cat, "gas", limit=50)["hits"]]
    page.goto("/search")
    page.fill("input[name=q]", "gas")
    page.locator("form.filters button").click()
    assert page.locator("ol.hits li").evaluate_all("items => items.map(i => i.dataset.url)") == expected
    assert not page.errors


def _hostile_article_url(web_archive: WebArchive) -> tuple[str, str]:
    site = web_archive.site.site
    article_id = site.specials.hostile[0]
    return site.canonical_url(article_id), site.title_at(article_id)


def test_hostile_articles_and_threads_render_as_text_and_run_nothing(page: Any, web_archive: WebArchive) -> None:
    url, title = _hostile_article_url(web_archive)
    assert "<script>" in title
    page.goto(f"/article?url={urllib.parse.quote(url, safe='')}")
    assert page.locator("[data-article-title]").inner_text() == title  # the markup shown as text
    assert page.evaluate(HOOK) is None
    screenshot(page, "web-hostile-article")
    # As captured: the page's own script, handlers and javascript: link are there, sandboxed.
    page.locator("a.capture-link").first.click()
    frame_element = page.locator("iframe.capture")
    assert frame_element.get_attribute("sandbox") == ""
    frame = frame_element.element_handle().content_frame()
    frame.wait_for_load_state()
    assert "<script>window.__nvHostile=1</script>" in _get(web_archive.url + frame_element.get_attribute("src"))[2]
    page.mouse.move(300, 500)
    page.wait_for_timeout(300)
    assert page.evaluate(HOOK) is None
    screenshot(page, "web-capture")
    thread_id = min(web_archive.site.site.hostile_thread_ids())
    page.goto(f"/thread?url={urllib.parse.quote(web_archive.site.site.thread_url(thread_id), safe='')}")
    assert "<script>" in page.locator("[data-thread-title]").inner_text()
    page.goto("/search?q=%22nvHostile%22")
    assert page.locator("ol.hits li").count() >= 1
    page.goto("/sites/sample?since=2000-01-01T00:00:00Z")
    for link in page.locator("a").all()[:40]:
        link.hover()
    assert page.evaluate(HOOK) is None
    assert page.dialogs == []
    # The browser reports what the sandbox and the policy blocked (scripts, the live site's images);
    # nothing else may appear, and nothing ran.
    assert [e for e in page.errors if not re.search(r"Blocked script execution|sandboxed|Content Security Policy|Refused to", e)] == []


def test_trigger_needs_the_token_then_starts_a_run_the_dashboard_shows(page: Any, web_archive: WebArchive) -> None:
    page.goto("/")
    assert page.locator("[data-trigger]").count() == 2
    # Not signed in: refused.
    response = page.request.post("/trigger", form={"site": "sample", "kind": "discussions",
                                                    "csrf": page.locator("input[name=csrf]").first.input_value()})
    assert response.status == 403
    page.locator("[data-trigger='sample:discussions']").click()
    assert "sign in with the web token first" in page.locator("[data-problem]").inner_text()
    # A wrong token is refused too.
    page.goto("/")
    page.fill("input[name=token]", "not-the-token-at-all")
    page.locator("form.inline button").click()
    assert page.locator("[data-problem]").inner_text() == "wrong token"
    page.errors.clear()  # the browser logs each refusal above as a failed (403) load, as it should
    # Signed in, the button starts a run through the daemon.
    page.goto("/")
    before = {r.run_id for r in web_archive.runs()}
    page.fill("input[name=token]", TOKEN)
    page.locator("form.inline button").click()
    page.locator("[data-trigger='sample:discussions']").click()
    run_id = page.locator("h1 [data-run-id]").inner_text()
    assert run_id not in before
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        record = next((r for r in web_archive.runs() if r.run_id == run_id), None)
        if record is not None and record.status != "running":
            break
        time.sleep(0.5)
    else:
        pytest.fail("the triggered run did not finish\n" + web_archive.daemon_log())
    assert record.trigger == "manual" and record.status == "ok", record
    page.goto("/")
    assert (run_id, "ok") in _runs_shown(page, ".recent")
    assert not page.errors


def test_verify_now_from_the_snapshot_page(page: Any, web_archive: WebArchive) -> None:
    with web_archive.catalog() as cat:
        snapshot_id = max(cat.snapshot_ids())
    page.goto(f"/snapshots/{snapshot_id}")
    assert page.locator("[data-verify-now]").count() == 0  # signed out: no button
    page.fill("input[name=token]", TOKEN)
    page.locator("form.inline button").click()
    page.locator("[data-verify-now]").click()
    assert page.locator("[data-message]").inner_text() == "verified: every file matches its checksum"
    assert page.locator("dd [data-verify]").get_attribute("data-verify") == "ok"
    page.goto("/snapshots")
    assert page.locator(f"tr[data-snapshot='{snapshot_id}'] [data-verify]").get_attribute("data-verify") == "ok"
    screenshot(page, "web-snapshots")
    assert not page.errors



# -- archived pages out of the snapshots ------------------------------------------------------
def _archive_copy(web_archive: WebArchive, tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "archive"
    shutil.copytree(web_archive.root / "archive", copy)
    return copy


def test_an_unchanged_page_is_answered_from_the_snapshot_that_holds_its_payload(web_archive: WebArchive,
                                                                               tmp_path: Path) -> None:
    from warcio.archiveiterator import ArchiveIterator

    from archive.captures import CaptureReader
    from archive.stores import open_store

    first, second = sorted(r.snapshot_id or "" for r in web_archive.runs()
                           if r.kind == "articles" and r.status == "ok")[:2]
    warc = next((web_archive.root / "archive").rglob(f"{second}/pages-*.warc.gz"))
    with open(warc, "rb") as fh:
        revisits = [r.rec_headers.get_header("WARC-Target-URI") for r in ArchiveIterator(fh) if r.rec_type == "revisit"]
    assert revisits, "the second crawl wrote no revisit record"
    reader = CaptureReader(open_store(str(web_archive.root / "archive")), tmp_path / "cache")
    older, newer = reader.capture(first, revisits[0]), reader.capture(second, revisits[0])
    # A revisit record holds no payload: the bytes come from the first snapshot, their digest checked.
    assert newer.snapshot_id == second and newer.payload_snapshot_id == first
    assert older.payload_snapshot_id == first
    assert newer.body == older.body and len(newer.body) > 0 and newer.status == older.status


def test_a_corrupt_warc_is_never_shown_and_verify_records_the_failure(web_archive: WebArchive,
                                                                     tmp_path: Path) -> None:
    from archive.captures import CaptureReader
    from archive.stores import open_store
    from archive.verify import find_snapshot
    from archive.verify_log import verify_and_record
    from newsvault.errors import IntegrityError

    archive = _archive_copy(web_archive, tmp_path)
    with web_archive.catalog() as cat:
        row = cat.db.execute("SELECT v.url, s.snapshot_id FROM versions v JOIN sightings s ON s.version_id=v.id"
                             " ORDER BY s.snapshot_id, v.url LIMIT 1").fetchone()
    warc = next(archive.rglob(f"{row['snapshot_id']}/pages-*.warc.gz"))
    data = bytearray(warc.read_bytes())
    data[len(data) // 2] ^= 0xFF
    warc.write_bytes(bytes(data))
    store = open_store(str(archive))
    with pytest.raises(IntegrityError, match="does not match"):
        CaptureReader(store, tmp_path / "cache").capture(row["snapshot_id"], row["url"])
    log = VerifyLog(tmp_path / "verify-log.sqlite", str(archive))
    result = verify_and_record(store, find_snapshot(store, row["snapshot_id"]), log)
    assert result.status == "failed" and warc.name in (result.problem or "")
    assert log.last()[row["snapshot_id"]].status == "failed"

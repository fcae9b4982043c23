"""Reading the catalog: an article's versions, a thread's observations, what changed in a window, search.

Every answer is plain JSON-ready data ordered by values from the snapshots
(times, then ids), so the same archive gives the same answer whether its
catalog grew crawl by crawl or was rebuilt. Version numbers (1, 2, ...) count
an article's versions in the order they were first seen.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from catalog.db import Catalog, CatalogError
from catalog.versions import VERSION_FIELDS
from pipelines.parse.urls import canonical_form

# Versioned fields stored as JSON lists in a version row.
_LIST_FIELDS = ("authors", "tags")


@dataclass
class Version:
    """One version of an article: its fields and where it was seen."""

    number: int
    site: str
    canonical_url: str
    version_key: str
    first_seen: str
    last_seen: str
    snapshots: list[str]
    fields: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_time(text: str, what: str) -> str:
    """An ISO 8601 time (naive: UTC) as the catalog stores times, ``...Z``; CatalogError if it is not one."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise CatalogError(f"{what}: not an ISO 8601 time: {text!r}") from exc
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _url_candidates(url: str) -> list[str]:
    candidates = [url.strip()]
    try:
        candidates.append(canonical_form(url))
    except ValueError:
        pass
    return list(dict.fromkeys(candidates))


def _version_rows(catalog: Catalog, url: str) -> list[sqlite3.Row]:
    for candidate in _url_candidates(url):
        rows = catalog.db.execute(
            "SELECT v.*, MIN(s.fetched_at) AS first_seen, MAX(s.fetched_at) AS last_seen,"
            " GROUP_CONCAT(s.snapshot_id) AS snapshot_list"
            " FROM versions v JOIN sightings s ON s.version_id = v.id"
            " WHERE v.canonical_url = ? GROUP BY v.id ORDER BY first_seen, v.content_hash",
            (candidate,),
        ).fetchall()
        if rows:
            return rows
    raise CatalogError(f"no archived article has the URL {url!r}")


def _fields(row: sqlite3.Row) -> dict[str, Any]:
    fields = {name: row[name] for name in VERSION_FIELDS}
    for name in _LIST_FIELDS:
        fields[name] = json.loads(fields[name] or "[]")
    for extra in ("url", "language", "duplicate_of", "near_duplicate_of"):
        fields[extra] = row[extra]
    return fields


def versions(catalog: Catalog, url: str) -> list[Version]:
    """Every version of the article at ``url`` (or its canonical form), oldest first."""
    out = []
    for number, row in enumerate(_version_rows(catalog, url), start=1):
        version = Version(
            number=number, site=row["site"], canonical_url=row["canonical_url"], version_key=row["content_hash"],
            first_seen=row["first_seen"], last_seen=row["last_seen"],
            snapshots=sorted(set(row["snapshot_list"].split(","))), fields=_fields(row),
        )
        out.append(version)
    return out


def history(catalog: Catalog, url: str, *, found: list[Version] | None = None) -> dict[str, Any]:
    """The versions of an article with what changed from one to the next (fields, body size).

    ``found``: its versions, when the caller has read them already.
    """
    from catalog.diff import changed_fields

    found = found if found is not None else versions(catalog, url)
    rows = []
    previous: Version | None = None
    for version in found:
        body = version.fields.get("body") or ""
        rows.append({
            "version": version.number,
            "first_seen": version.first_seen,
            "last_seen": version.last_seen,
            "snapshots": version.snapshots,
            "title": version.fields.get("title"),
            "changed_fields": changed_fields(previous.fields, version.fields) if previous else [],
            "body_chars": len(body),
            "body_delta": len(body) - len(previous.fields.get("body") or "") if previous else 0,
        })
        previous = version
    return {"canonical_url": found[0].canonical_url, "site": found[0].site, "versions": rows}


def pick_version(found: list[Version], spec: str | None, default: int) -> Version:
    """A version by number (1-based, negative from the end) or by the snapshot id that holds it."""
    if spec is None:
        return found[default]
    if spec.lstrip("-").isdigit():
        number = int(spec)
        index = number - 1 if number > 0 else number
        if number == 0 or not -len(found) <= index < len(found):
            raise CatalogError(f"no version {spec}: the article has {len(found)}")
        return found[index]
    for version in found:
        if spec in version.snapshots or any(s.startswith(spec) for s in version.snapshots):
            return version
    raise CatalogError(f"no version of the article is in snapshot {spec!r}")


def thread(catalog: Catalog, url: str) -> dict[str, Any]:
    """A discussion thread's observations: comment count and last activity per snapshot, oldest first."""
    for candidate in _url_candidates(url):
        rows = catalog.db.execute(
            "SELECT * FROM observations WHERE thread_url=? ORDER BY observed_at, snapshot_id", (candidate,)
        ).fetchall()
        if rows:
            return {
                "thread_url": candidate,
                "site": rows[0]["site"],
                "title": rows[-1]["title"],
                "observations": [
                    {"observed_at": r["observed_at"], "snapshot_id": r["snapshot_id"], "list_url": r["list_url"],
                     "position": r["position"], "comment_count": r["comment_count"],
                     "last_activity_at": r["last_activity_at"], "title": r["title"]}
                    for r in rows
                ],
            }
    raise CatalogError(f"no archived discussion thread has the URL {url!r}")


def changes(catalog: Catalog, site: str, since: str, until: str | None = None) -> dict[str, Any]:
    """What was new, updated and removed in [since, until): articles and threads."""
    since = parse_time(since, "--since")
    until = parse_time(until, "--until") if until else "9999-12-31T23:59:59Z"
    if since >= until:
        raise CatalogError("--since must be before --until")
    db = catalog.db
    firsts = db.execute(
        "SELECT v.canonical_url, v.id, MIN(s.fetched_at) AS first FROM version_rows v"
        " JOIN sightings s ON s.version_id=v.id WHERE v.site=? GROUP BY v.id", (site,)).fetchall()
    article_first: dict[str, str] = {}
    for row in firsts:
        url = row["canonical_url"]
        article_first[url] = min(article_first.get(url, row["first"]), row["first"])
    new = sorted({r["canonical_url"] for r in firsts if since <= article_first[r["canonical_url"]] < until})
    updated = sorted({r["canonical_url"] for r in firsts
                      if since <= r["first"] < until and article_first[r["canonical_url"]] < r["first"]})
    removed = sorted({r[0] for r in db.execute(
        "SELECT canonical_url FROM removals WHERE site=? AND observed_at >= ? AND observed_at < ?", (site, since, until))})
    threads_new: set[str] = set()
    threads_moved: set[str] = set()
    previous: dict[str, tuple[Any, Any]] = {}
    for r in db.execute("SELECT thread_url, observed_at, comment_count, last_activity_at FROM observations"
                        " WHERE site=? AND observed_at < ? ORDER BY thread_url, observed_at, snapshot_id", (site, until)):
        url, state = r["thread_url"], (r["comment_count"], r["last_activity_at"])
        if r["observed_at"] >= since:
            if url not in previous:
                threads_new.add(url)
            elif previous[url] != state:
                threads_moved.add(url)
        previous[url] = state
    return {
        "site": site, "since": since, "until": None if until.startswith("9999") else until,
        "articles": {"new": new, "updated": sorted(set(updated) - set(new)), "removed": removed},
        "threads": {"new": sorted(threads_new), "updated": sorted(threads_moved - threads_new)},
    }


# Matching versions read per hit wanted: an article has a few versions and
# the newest decide the order; the cap keeps a query for a common word fast.
_CANDIDATES_PER_HIT = 20


def search(catalog: Catalog, query: str, *, site: str | None = None, since: str | None = None,
           until: str | None = None, limit: int = 50) -> dict[str, Any]:
    """Full text over every version's title, lead and body; each hit names the versions that hold it.

    Hits are the articles with the most recently first-seen matching
    versions, newest first (version ids sort by first sighting, so the index
    is read newest first and no match needs scoring). ``since``/``until``
    keep versions seen in that window.
    """
    if not query.strip():
        raise CatalogError("an empty search query")
    if limit < 1:
        raise CatalogError(f"--limit must be at least 1, got {limit}")
    conditions, args = ["versions_fts MATCH ?"], [query]
    if site:
        conditions.append("v.site = ?")
        args.append(site)
    if since or until:
        # One sighting inside the window, not one after `since` and another before `until`.
        window, window_args = [], []
        if since:
            window.append("s.fetched_at >= ?")
            window_args.append(parse_time(since, "--since"))
        if until:
            window.append("s.fetched_at < ?")
            window_args.append(parse_time(until, "--until"))
        conditions.append(f"EXISTS (SELECT 1 FROM sightings s WHERE s.version_id = v.id AND {' AND '.join(window)})")
        args.extend(window_args)
    try:
        rows = catalog.db.execute(
            # version_rows, not the versions view: the candidates need no text, so no join to it.
            "SELECT v.canonical_url FROM versions_fts f JOIN version_rows v ON v.id = f.rowid"
            f" WHERE {' AND '.join(conditions)} ORDER BY f.rowid DESC LIMIT ?",
            (*args, limit * _CANDIDATES_PER_HIT)).fetchall()
    except sqlite3.OperationalError as exc:
        raise CatalogError(f"bad search query {query!r}: {exc}") from exc
    urls = list(dict.fromkeys(row[0] for row in rows))[:limit]
    hits = []
    for url in urls:
        numbered = _version_rows(catalog, url)
        ids = [row["id"] for row in numbered]
        # Exactly which of its versions match (the cap above may have met only some).
        holding = {r[0] for r in catalog.db.execute(
            f"SELECT rowid FROM versions_fts WHERE versions_fts MATCH ? AND rowid IN ({','.join('?' * len(ids))})",
            (query, *ids))}
        numbers = [n for n, row_id in enumerate(ids, start=1) if row_id in holding]
        latest = numbered[-1]
        hits.append({"canonical_url": url, "site": latest["site"], "title": latest["title"], "versions": numbers,
                     "latest_version": len(numbered), "only_in_earlier_versions": len(numbered) not in numbers})
    return {"query": query, "hits": hits}


# Bound parameters per query (SQLite's limit is 32766; lists of changes can be long).
_IN_CHUNK = 500


def titles(catalog: Catalog, urls: list[str], *, threads: bool = False) -> dict[str, str | None]:
    """The latest title of each article (its most recently first-seen version) or thread (its last observation)."""
    table, column, order = (("observations", "thread_url", "observed_at, snapshot_id") if threads
                            else ("versions", "canonical_url", "id"))
    found: dict[str, str | None] = {}
    for start in range(0, len(urls), _IN_CHUNK):
        chunk = urls[start:start + _IN_CHUNK]
        rows = catalog.db.execute(
            f"SELECT {column}, title FROM {table} WHERE {column} IN ({','.join('?' * len(chunk))}) ORDER BY {order}",
            chunk)
        found.update((row[0], row[1]) for row in rows)  # later rows win: the latest title
    return found

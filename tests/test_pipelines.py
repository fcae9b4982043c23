"""Item pipelines as units: clean, validate, dedupe, change tracking (real stats collector)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from newsvault import SCHEMA_VERSION
from pipelines.changes import ChangeTrackingPipeline
from pipelines.clean import CleanPipeline
from pipelines.dedupe import DedupePipeline, minhash, shingle_hashes
from pipelines.minhash import similarity
from pipelines.stages import ItemDropped
from pipelines.validate import ValidatePipeline, validation_reason
from spiders.base import stage_settings

BASE = "http://127.0.0.1:8000"
NOTE = (
    'The original article was published by the publication "Dune-e Ektesad", and the point of view '
    "given by the author may not coincide (in whole or in part) with the point of view of the "
    "editorial board."
)
WORDS = ["Putin's", "visit", "to", "Minsk", "caused", "a", "panic", "attack", "among", "observers", "of", "the", "region", "while", "the", "meeting", "was", "overgrown", "with", "speculation", "and", "hypotheses", "about", "the", "unified", "position", "of", "Belarus", "and", "Russia", "and", "the", "world", "press", "began", "to", "assert", "that", "the", "purpose", "of", "the", "visit", "was", "not", "a", "routine", "communication", "but", "something", "much", "more", "serious", "according", "to", "many", "experts"]


@dataclass
class Furniture:
    strip_patterns: list[str] = field(default_factory=lambda: [r"^InoSMI materials contain.*$"])


@dataclass
class Profile:
    """The attributes the clean pipeline reads from spiders.profile.SiteProfile."""

    timezone: str = "Europe/Moscow"
    language: str | None = None
    reply_pattern: str | None = '^Ответ на "(?P<title>.*)"$'
    furniture: Furniture = field(default_factory=Furniture)


@pytest.fixture
def stats() -> MemoryStatsCollector:
    return MemoryStatsCollector(get_crawler())


def text(seed: int, n: int = 60) -> str:
    """A deterministic paragraph of ``n`` words, different per seed."""
    return " ".join(f"{WORDS[(i * 7 + seed) % len(WORDS)]}{seed}" for i in range(n))


def raw_article(article_id: int = 5, **overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": "article",
        "site": "sample",
        "url": f"{BASE}/news/{article_id}-visit.html",
        "canonical_url": f"{BASE}/news/{article_id}-visit.html",
        "title": " The secret of Putin's\u00a0visit ",
        "lead": "Akharin Khabar:  a lead.",
        "body": f"{NOTE}\n\n{text(article_id)}\n\n\nSecond  paragraph.\n\nInoSMI materials contain ratings",
        "authors": ["Akharin Khabar", "Akharin Khabar"],
        "published_at": "2026-12-30T15:30:00+03:00",
        "published_raw": "30.12.2026 15:30",
        "modified_at": None,
        "section": "Analytics",
        "tags": ["Belarus", "Russia"],
        "image_url": f"/img/{article_id}.jpg",
        "image_credit": "Image source: © РИА Новости Павел Бедняков",
        "source_name": NOTE,
        "source_url": "https://example.org/original",
        "views": "1 020",
        "comment_count": "0",
        "language": "en",
        "fetched_at": "2026-12-31T06:00:05+00:00",
        "_request_url": f"{BASE}/news/{article_id}-visit.html?utm_source=front&utm_medium=list",
        "_server_date": "2026-12-31T06:00:00Z",
        "_extraction": "selectors",
    }
    item.update(overrides)
    return item


def raw_discussion(thread_id: int = 7, **overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": "discussion",
        "site": "sample",
        "list_url": f"{BASE}/discussions/?page=2",
        "position": 21,
        "thread_url": f"/threads/{thread_id}",
        "title": 'Ответ на "«Снаряд прошил весь танк и вышел через корму»"',
        "last_activity_raw": "31.12 23:50",
        "comment_count": "4 919",
        "fetched_at": "2027-01-01T00:10:00Z",
        "_server_date": "Fri, 01 Jan 2027 00:10:00 GMT",
    }
    item.update(overrides)
    return item


def cleaner(stats: Any = None) -> CleanPipeline:
    return CleanPipeline.from_settings(stage_settings(Profile()), stats=stats)


# --- clean --------------------------------------------------------------------
def test_clean_article_matches_the_clean_contract() -> None:
    item = cleaner().process_item(raw_article(_request_url=f"{BASE}/x?utm_source=y"))
    assert item["title"] == "The secret of Putin's visit"
    assert item["body"] == f"{text(5)}\n\nSecond paragraph."
    assert item["lead"] == "Akharin Khabar: a lead."
    assert item["published_at"] == "2026-12-30T12:30:00Z"
    assert item["published_raw"] == "30.12.2026 15:30"
    assert (item["views"], item["comment_count"]) == (1020, 0)
    assert item["image_credit"] == "РИА Новости Павел Бедняков"
    assert item["source_name"] == "Dune-e Ektesad"
    assert item["image_url"] == f"{BASE}/img/5.jpg"
    assert item["authors"] == ["Akharin Khabar"]
    assert item["fetched_at"] == "2026-12-31T06:00:05Z"
    assert item["schema_version"] == SCHEMA_VERSION
    assert len(item["content_hash"]) == 64
    assert not [k for k in item if k.startswith("_")]
    json.dumps(item)


def test_clean_canonicalises_and_prefers_rel_canonical() -> None:
    item = cleaner().process_item(
        raw_article(
            url=f"{BASE}/print/5.html?utm_source=a#top", canonical_url=f"{BASE}/news/5-visit.html"
        )
    )
    assert item["url"] == f"{BASE}/print/5.html"
    assert item["canonical_url"] == f"{BASE}/news/5-visit.html"


def test_counters_never_change_the_content_hash() -> None:
    first = cleaner().process_item(raw_article(views="10"))
    second = cleaner().process_item(raw_article(views="1,5K", comment_count="12"))
    edited = cleaner().process_item(raw_article(title="A new title"))
    assert first["content_hash"] == second["content_hash"] != edited["content_hash"]


def test_relative_visible_date_uses_server_date_and_site_zone() -> None:
    item = cleaner().process_item(raw_article(published_at=None, published_raw="вчера в 18:05"))
    assert item["published_at"] == "2026-12-30T15:05:00Z"
    assert item["published_raw"] == "вчера в 18:05"


def test_source_note_in_body_names_the_source_when_the_spider_did_not() -> None:
    item = cleaner().process_item(raw_article(source_name=None))
    assert item["source_name"] == "Dune-e Ektesad"
    assert "original article" not in item["body"]


def test_unparseable_counter_is_none_and_counted(stats: MemoryStatsCollector) -> None:
    item = cleaner(stats).process_item(raw_article(views="n/a"))
    assert item["views"] is None
    assert stats.get_value("newsvault/clean/unparsed_counter") == 1


def test_clean_discussion_entry_across_new_year() -> None:
    item = cleaner().process_item(raw_discussion())
    assert item["thread_url"] == f"{BASE}/threads/7"
    assert item["last_activity_at"] == "2026-12-31T20:50:00Z"
    assert item["last_activity_raw"] == "31.12 23:50"
    assert item["comment_count"] == 4919
    assert item["is_reply"] is True
    assert item["reply_to_title"] == "«Снаряд прошил весь танк и вышел через корму»"
    assert "_server_date" not in item


def test_default_reply_patterns_without_profile() -> None:
    item = CleanPipeline().process_item(raw_discussion(title="Re: Lame Duck"))
    assert (item["is_reply"], item["reply_to_title"]) == (True, "Lame Duck")
    plain = CleanPipeline().process_item(raw_discussion(title="О «западной» школе"))
    assert (plain["is_reply"], plain["reply_to_title"]) == (False, None)


def test_profile_without_furniture_or_timezone_is_read_defensively() -> None:
    class Bare:
        pass

    item = CleanPipeline.from_settings(stage_settings(Bare())).process_item(raw_article(published_at=None))
    assert item["published_at"] == "2026-12-30T15:30:00Z"  # read as UTC


# --- validate -------------------------------------------------------------------
def test_valid_items_pass(stats: MemoryStatsCollector) -> None:
    validate = ValidatePipeline(stats=stats)
    assert validate.process_item(cleaner().process_item(raw_article()))["type"] == "article"
    assert validate.process_item(cleaner().process_item(raw_discussion()))["type"] == "discussion"
    assert stats.get_value("newsvault/dropped") is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (raw_article(title="  "), "missing_title"),
        (raw_article(body="Реклама Купите"), "missing_body"),
        (raw_article(fetched_at=None), "missing_fetched_at"),
        (raw_article(language="english (US)!"), "invalid_language"),
        (raw_discussion(last_activity_raw="soon"), "missing_last_activity_at"),
        (raw_discussion(title=""), "missing_title"),
        ({"type": "poll", "url": BASE}, "unknown_type"),
    ],
)
def test_invalid_items_are_dropped_and_counted(
    raw: dict[str, Any], reason: str, stats: MemoryStatsCollector
) -> None:
    with pytest.raises(ItemDropped, match=reason):
        ValidatePipeline(stats=stats).process_item(cleaner().process_item(raw))
    assert stats.get_value(f"newsvault/dropped/{reason}") == 1


def test_negative_counter_breaks_the_schema(stats: MemoryStatsCollector) -> None:
    item = cleaner().process_item(raw_article())
    item["views"] = -1
    with pytest.raises(ItemDropped):
        ValidatePipeline(stats=stats).process_item(item)
    assert stats.get_value("newsvault/dropped/invalid_views") == 1


# Values of every JSON type plus edge strings, put into each field in turn.
_PROBES: list[Any] = [None, "", "x", "2026-12-31T06:00:00Z", "ftp://x", BASE, -1, 0, 3, 1.5, True, [], [""], ["a"], {}]


@pytest.mark.parametrize("make_raw", [raw_article, raw_discussion])
def test_fast_check_agrees_with_the_reference_validator(make_raw: Any) -> None:
    """The compiled schema never accepts what jsonschema would reject (and the reverse)."""
    validate = ValidatePipeline()
    base = cleaner().process_item(make_raw())
    kind = base["type"]
    checked = 0
    for name in [*base, "change", "near_duplicate_of", "duplicate_of", "unexpected"]:
        for value in _PROBES:
            item = {**base, name: value}
            fast = validate._passes_fast_check(kind, item)
            reference = validation_reason(item, validate.validators) is None
            assert fast == reference, (name, value)
            checked += 1
    assert checked > 200


# --- dedupe ---------------------------------------------------------------------
def dedupe_all(
    items: list[dict[str, Any]], stats: Any, threshold: float = 0.8
) -> list[dict[str, Any]]:
    dedupe, out = DedupePipeline(threshold=threshold, stats=stats), []
    for raw in items:
        try:
            out.append(dedupe.process_item(cleaner().process_item(raw)))
        except ItemDropped:
            pass
    return out


def test_same_canonical_url_kept_once(stats: MemoryStatsCollector) -> None:
    out = dedupe_all(
        [raw_article(5), raw_article(5, url=f"{BASE}/print/5.html"), raw_article(6)], stats
    )
    assert [i["canonical_url"] for i in out] == [
        f"{BASE}/news/5-visit.html",
        f"{BASE}/news/6-visit.html",
    ]
    assert stats.get_value("newsvault/duplicates") == 1


def test_exact_reprint_becomes_a_slim_record(stats: MemoryStatsCollector) -> None:
    body = text(42)
    first, second = dedupe_all(
        [raw_article(1, body=body), raw_article(2, body=body, views="5")], stats
    )
    assert "duplicate_of" not in first
    assert second["duplicate_of"] == f"{BASE}/news/1-visit.html"
    assert set(second) == {
        "type",
        "site",
        "url",
        "canonical_url",
        "title",
        "duplicate_of",
        "content_hash",
        "fetched_at",
        "schema_version",
    }
    assert stats.get_value("newsvault/duplicates") == 1
    ValidatePipeline().process_item(second)  # the slim shape is valid


def distinct_words(seed: int, n: int) -> list[str]:
    """``n`` words, no two alike: ``text()`` repeats every 57 words, which shrinks its shingle set."""
    return [f"{WORDS[(i * 7 + seed) % len(WORDS)]}{seed}x{i}" for i in range(n)]


def test_near_duplicate_linked_and_different_articles_not(stats: MemoryStatsCollector) -> None:
    # Two edited words in 200 change 10 of 196 shingles: Jaccard 0.90, above 0.8.
    words = distinct_words(3, 200)
    edited = list(words)
    edited[50] = "changed"
    edited[150] = "edited"
    out = dedupe_all(
        [
            raw_article(1, body=" ".join(words)),
            raw_article(2, body=" ".join(edited), title="A syndicated copy"),
            raw_article(3, body=" ".join(distinct_words(9, 200))),
        ],
        stats,
    )
    assert out[1]["near_duplicate_of"] == f"{BASE}/news/1-visit.html"
    assert "near_duplicate_of" not in out[0] and "near_duplicate_of" not in out[2]
    assert stats.get_value("newsvault/near_duplicates") == 1


def reference_shingles(text: str, size: int = 5) -> set[str]:
    words = re.findall(r"\w+", text.lower())
    if len(words) <= size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def test_shingle_hashes_are_one_per_distinct_shingle_and_stable() -> None:
    body = " ".join(distinct_words(1, 300)) + " " + " ".join(distinct_words(1, 40))  # a repeated run
    hashes = shingle_hashes(body)
    assert len(set(hashes.tolist())) == len(reference_shingles(body))
    assert shingle_hashes(body.upper()).tolist() == hashes.tolist()  # case-insensitive, deterministic
    swapped = "b a " + " ".join(distinct_words(2, 3))
    assert shingle_hashes("a b " + " ".join(distinct_words(2, 3))).tolist() != shingle_hashes(swapped).tolist()
    assert len(shingle_hashes("one two")) == 1 and len(shingle_hashes(" ... ")) == 0


def reference_shingle_hash(shingle: str) -> int:
    """The documented hash of one shingle, in plain integers: polynomial over its code points, splitmix64, top 32 bits."""
    from pipelines.dedupe import _BASE

    mask = 2**64 - 1
    value = sum(ord(char) * pow(_BASE, i, 2**64) for i, char in enumerate(shingle)) & mask
    value ^= value >> 30
    value = (value * 0xBF58476D1CE4E5B9) & mask
    value ^= value >> 27
    value = (value * 0x94D049BB133111EB) & mask
    value ^= value >> 31
    return value >> 32


def test_word_codes_are_the_words_of_re_joined_by_spaces_in_any_script() -> None:
    """Every code point, one at a time and in runs, is split into words as re's \\w splits it."""
    import random
    import sys

    from pipelines.dedupe import word_codes

    def expected(text: str) -> list[int]:
        return [ord(c) for c in " ".join(re.findall(r"\w+", text.lower()))]

    rnd = random.Random(5)
    for start in range(0, sys.maxunicode + 1, 4096):
        text = "".join(chr(c) for c in range(start, min(start + 4096, sys.maxunicode + 1)) if not 0xD800 <= c < 0xE000)
        assert word_codes(text).tolist() == expected(text), hex(start)
        sample = "".join(rnd.choice(text + "  ,") for _ in range(200))
        assert word_codes(sample).tolist() == expected(sample), repr(sample)


@pytest.mark.parametrize(
    "text",
    ["", "  ...  ", "one", "One, two; THREE four", "İstanbul — Ёлка, naïve café: 5 words and then some more words here",
     " ".join(distinct_words(7, 40)) + "\n\n" + "x_y z-z 12,5 % «quoted» text",
     "emoji \U0001f600 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \U00010400\U00010401 words, ², ½ and \u0663\u0664 digits; \u200b zero-width",
     "\u00a0\t  leading and trailing  \n"],
)
def test_shingle_hashes_match_the_reference_hash_of_each_shingle(text: str) -> None:
    """Every window of five words (fewer for short texts), in order, hashed as documented."""
    words = re.findall(r"\w+", text.lower())
    width = min(5, len(words))
    expected = [reference_shingle_hash(" ".join(words[i : i + width])) for i in range(len(words) - width + 1)] if words else []
    assert shingle_hashes(text).tolist() == expected


@pytest.mark.parametrize("edits", [2, 10, 30, 60])
def test_sketch_similarity_tracks_the_true_jaccard(edits: int) -> None:
    words = distinct_words(4, 400)
    edited = list(words)
    for i in range(edits):
        edited[(i * 397) % 400] = f"edit{i}"
    a, b = reference_shingles(" ".join(words)), reference_shingles(" ".join(edited))
    true = len(a & b) / len(a | b)
    sketch_a, sketch_b = minhash(" ".join(words)), minhash(" ".join(edited))
    assert sketch_a is not None and sketch_b is not None
    # 64 permutations: standard error <= 0.0625; allow ~3 of them.
    assert abs(similarity(sketch_a, sketch_b) - true) < 0.19


def test_near_duplicates_at_jaccard_090_are_found_reliably(stats: MemoryStatsCollector) -> None:
    """100 pairs at Jaccard ~0.90: banding tuned for recall finds (nearly) all (equal weights: ~85)."""
    raws = []
    for pair in range(100):
        words = distinct_words(100 + pair, 200)
        edited = list(words)
        edited[40], edited[140] = "changed", "edited"
        raws += [raw_article(2 * pair, body=" ".join(words)), raw_article(2 * pair + 1, body=" ".join(edited))]
    links = {item["url"]: item.get("near_duplicate_of") for item in dedupe_all(raws, stats)}
    expected = {f"{BASE}/news/{2 * pair + 1}-visit.html": f"{BASE}/news/{2 * pair}-visit.html" for pair in range(100)}
    found = [url for url, original in expected.items() if links[url] == original]
    assert len(found) >= 95
    assert not any(links[url] for url in links if url not in expected)  # originals link to nothing


def test_threshold_comes_from_settings(stats: MemoryStatsCollector) -> None:
    assert DedupePipeline.from_settings({"NEWSVAULT_NEAR_DUPLICATE_THRESHOLD": 0.95}).threshold == 0.95
    words = text(3, 100).split()
    half = words[:50] + text(8, 50).split()
    loose = dedupe_all(
        [raw_article(1, body=" ".join(words)), raw_article(2, body=" ".join(half))], stats, 0.2
    )
    assert loose[1]["near_duplicate_of"] == f"{BASE}/news/1-visit.html"
    strict = dedupe_all(
        [raw_article(1, body=" ".join(words)), raw_article(2, body=" ".join(half))], stats, 0.9
    )
    assert "near_duplicate_of" not in strict[1]
    with pytest.raises(ValueError):
        DedupePipeline(threshold=0)


def test_discussion_thread_seen_twice_in_a_run(stats: MemoryStatsCollector) -> None:
    out = dedupe_all([raw_discussion(7), raw_discussion(7, position=3), raw_discussion(8)], stats)
    assert [i["thread_url"] for i in out] == [f"{BASE}/threads/7", f"{BASE}/threads/8"]
    assert stats.get_value("newsvault/duplicates/discussion") == 1


# --- change tracking --------------------------------------------------------------
def run_changes(
    state_dir: Path, raws: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    stats = MemoryStatsCollector(get_crawler())
    pipeline = ChangeTrackingPipeline(state_dir=state_dir, stats=stats)
    pipeline.open_spider()
    out = []
    try:
        for raw in raws:
            try:
                out.append(pipeline.process_item(cleaner().process_item(raw)))
            except ItemDropped:
                pass
    finally:
        pipeline.close_spider()
    return out, stats.get_stats()


def test_articles_new_then_unchanged_then_updated(tmp_path: Path) -> None:
    run1, stats1 = run_changes(tmp_path, [raw_article(1), raw_article(2)])
    assert [i["change"] for i in run1] == ["new", "new"]
    assert stats1["newsvault/new"] == 2 and stats1["newsvault/new/article"] == 2
    run2, stats2 = run_changes(
        tmp_path,
        [raw_article(1, views="9 999", comment_count="7"), raw_article(2, body="Edited body.")],
    )
    assert [i["change"] for i in run2] == ["unchanged", "updated"]
    assert (stats2["newsvault/unchanged"], stats2["newsvault/updated"]) == (1, 1)
    assert "newsvault/new" not in stats2


def test_discussions_move_on_new_comments(tmp_path: Path) -> None:
    run_changes(tmp_path, [raw_discussion(7), raw_discussion(8)])
    run2, stats = run_changes(
        tmp_path,
        [
            raw_discussion(7, comment_count="4920", last_activity_raw="01.01 03:05"),
            raw_discussion(8, position=2),
        ],
    )
    assert [i["change"] for i in run2] == ["updated", "unchanged"]
    assert stats["newsvault/updated/discussion"] == 1


def test_gone_known_article_counted_removed_and_dropped(tmp_path: Path) -> None:
    run_changes(tmp_path, [raw_article(1), raw_article(2)])
    gone = {
        "type": "gone",
        "site": "sample",
        "url": f"{BASE}/news/2-visit.html?utm_source=x",
        "status": 410,
        "fetched_at": "2026-12-31T12:00:00Z",
    }
    unknown = dict(gone, url=f"{BASE}/news/404-missing.html", status=404)
    out, stats = run_changes(tmp_path, [gone, unknown, raw_article(1)])
    assert [i["canonical_url"] for i in out] == [f"{BASE}/news/1-visit.html"]
    assert stats["newsvault/removed"] == 1
    assert stats["newsvault/removed_urls"] == [f"{BASE}/news/2-visit.html"]
    assert stats["newsvault/gone_unknown"] == 1
    json.dumps(stats, default=str)
    # Removed once is not removed again; a removed URL that comes back is new.
    _, again = run_changes(tmp_path, [gone])
    assert "newsvault/removed" not in again
    back, _ = run_changes(tmp_path, [raw_article(2)])
    assert back[0]["change"] == "new"


def test_deleting_the_state_dir_makes_everything_new(tmp_path: Path) -> None:
    state = tmp_path / "state"
    run_changes(state, [raw_article(1), raw_discussion(7)])
    for child in state.iterdir():
        child.unlink()
    state.rmdir()
    out, stats = run_changes(state, [raw_article(1), raw_discussion(7)])
    assert [i["change"] for i in out] == ["new", "new"]
    assert stats["newsvault/new"] == 2


def test_slim_duplicate_records_are_tracked_too(tmp_path: Path) -> None:
    body = text(11)
    raws = [raw_article(1, body=body), raw_article(2, body=body)]
    dedupe = DedupePipeline()
    items = [dedupe.process_item(cleaner().process_item(r)) for r in raws]
    pipeline = ChangeTrackingPipeline(state_dir=tmp_path)
    out = [pipeline.process_item(i) for i in items]
    pipeline.close_spider()
    assert [i["change"] for i in out] == ["new", "new"]
    assert "duplicate_of" in out[1]


def test_from_settings_reads_the_state_dir_setting(tmp_path: Path) -> None:
    pipeline = ChangeTrackingPipeline.from_settings(
        {"NEWSVAULT_STATE_DIR": str(tmp_path / "s"), "NEWSVAULT_ARCHIVE_ENABLED": True})
    pipeline.open_spider()
    pipeline.close_spider()
    assert (tmp_path / "s" / "state.sqlite").is_file()

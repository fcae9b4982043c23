"""The sample site's content model and ground truth.

Everything is computed on demand from (seed, id, tick): article text comes from a
``random.Random`` seeded per article, listings are arithmetic over ids (newest
id first, sections by ``(id + seed) % 5``), and the per-tick events (one edit,
one removal, new articles, discussion moves) are replayed from tick 1 and
cached. Nothing is pre-generated, so 100,000 articles start instantly.
"""

from __future__ import annotations

import functools
import random
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from samplesite import banks, text
from samplesite import hostile as hostile_module
from samplesite.edits import TimedEdit, apply_edit, edit_schedule

SITE_NAME = "Sample News"
SITE_TZ = ZoneInfo("Europe/Moscow")
# "ticks": one edit per tick (what the change-tracking tests count); "realistic":
# timed edits, mostly within hours of publication (samplesite/edits.py).
EDIT_MODELS = ("ticks", "realistic")
DEFAULT_CLOCK = datetime(2026, 12, 31, 6, 0, tzinfo=UTC)
TICK = timedelta(hours=6)
PAGE_SIZE = 20
SIDEBAR_ENTRIES = 15
RSS_ITEMS = 50
SITEMAP_URLS = 10_000
NEW_ARTICLES_PER_TICK = 3
NEW_THREADS_PER_TICK = 2
THREAD_MOVES_PER_TICK = 6
ARTICLE_SPACING = timedelta(minutes=20)
MIN_ARTICLES = 50
# Edits and removals pick among the newest live articles so that a crawl of the
# first few listing pages sees them; a real site mostly touches fresh stories.
CHANGE_WINDOW = 100
DEFAULT_THREADS = 150
DEFAULT_OVERSIZE_BYTES = 12 * 1024 * 1024
# Ids far above any article id: links to them are faults, never articles.
HUGE_ID = 900_000_001
MISSING_ID = 900_000_002

FURNITURE_STRINGS: tuple[str, ...] = (
    "Войти",
    "Image source",
    "The original article was published",
    "The rights to this material",
    "The material is placed by the copyright holder",
    "Original publication",
    "InoSMI materials",
    "The news mentions",
    "Do you want to leave a comment",
    "ПОДПИСКА НА НОВОСТИ",
    "Ежедневная рассылка новостей",
    "Selected News",
    "Реклама",
    "Discussion",
)


def iso_utc(moment: datetime) -> str:
    """UTC ISO 8601 with a Z suffix, the clean-item time format."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_local(moment: datetime) -> str:
    """ISO 8601 in the site's timezone (+03:00), as the pages carry it."""
    return moment.astimezone(SITE_TZ).isoformat()


@dataclass(frozen=True)
class Specials:
    """Article ids with a fault or a role, placed near the top of the tick-0 listing."""

    near_original: int
    near_copy: int
    exact_original: int
    exact_reprint: int
    no_charset: int
    flaky: int
    slow: int
    malformed: int
    redirect: int
    printable: int
    # Articles with script, handlers and broken markup (SampleSite(hostile=True)); empty when off.
    hostile: tuple[int, ...] = ()

    @classmethod
    def for_articles(cls, articles: int, hostile: bool = False) -> Specials:
        n = articles
        return cls(
            near_original=n - 30, near_copy=n - 1, exact_original=n - 25, exact_reprint=n - 3,
            no_charset=n - 2, flaky=n - 4, slow=n - 6, malformed=n - 8, redirect=n - 10,
            printable=n - 12,
            hostile=tuple(n - k for k in hostile_module.ARTICLE_OFFSETS) if hostile else (),
        )

    def ids(self) -> frozenset[int]:
        single = {value for name, value in vars(self).items() if name != "hostile"}
        return frozenset(single | set(self.hostile))


@dataclass(frozen=True)
class Article:
    """One article at one version; counters are not part of it (they depend on the tick)."""

    id: int
    language: str
    slug: str
    title: str
    lead: str
    paragraphs: tuple[str, ...]
    authors: tuple[str, ...]
    tags: tuple[str, ...]
    section_slug: str
    section_name: str
    image_credit: str
    source_name: str | None
    source_url: str | None
    published: datetime
    modified: datetime
    created_tick: int
    ad_after: int | None
    version: int = 0
    # What the latest edit did (the ground truth a diff of it must report):
    # ("title",), ("authors",), ("replace", old_index, new_index),
    # ("insert", new_index), ("delete", old_index). Empty for version 0.
    edit_ops: tuple[tuple[str | int, ...], ...] = ()
    # (paragraph index, raw HTML) for paragraphs the page carries as markup, not
    # escaped text: the hostile blocks; the paragraph holds their extracted text.
    raw_html: tuple[tuple[int, str], ...] = ()

    @property
    def body(self) -> str:
        return "\n\n".join(self.paragraphs)


@dataclass
class _Thread:
    id: int
    title: str
    reply_to_title: str | None
    created_tick: int


@dataclass
class _TickEvents:
    edited: int
    edit_time: datetime
    removed: int


@dataclass
class _ThreadState:
    # thread id -> (last activity UTC, comment count)
    threads: dict[int, tuple[datetime, int]] = field(default_factory=dict)


class SampleSite:
    """The deterministic sample news site: content, listings, ticks and ground truth."""

    def __init__(
        self,
        articles: int,
        seed: int = 0,
        tick: int = 0,
        clock: datetime = DEFAULT_CLOCK,
        *,
        threads: int = DEFAULT_THREADS,
        base_url: str = "http://127.0.0.1",
        oversize_bytes: int = DEFAULT_OVERSIZE_BYTES,
        edits: str = "ticks",
        hostile: bool = False,
    ) -> None:
        if articles < MIN_ARTICLES:
            raise ValueError(f"articles must be at least {MIN_ARTICLES}, got {articles}")
        if tick < 0:
            raise ValueError(f"tick must be >= 0, got {tick}")
        if clock.tzinfo is None:
            raise ValueError("clock must be timezone-aware")
        if edits not in EDIT_MODELS:
            raise ValueError(f"edits must be one of {', '.join(EDIT_MODELS)}, got {edits!r}")
        self.edit_model = edits
        # Switches for run-health tests, each on from a tick (None: off): the
        # article markup changes, deep pages answer 403/429, the listings
        # (front page, sections, RSS, sitemaps) list nothing.
        self.redesign_from_tick: int | None = None
        self.ban_from_tick: int | None = None
        self.empty_from_tick: int | None = None
        self.articles = articles
        self.seed = seed
        self.clock = clock.astimezone(UTC).replace(second=0, microsecond=0)
        self.threads = threads
        self.base_url = base_url.rstrip("/")
        self.oversize_bytes = oversize_bytes
        # Hostile content (samplesite/hostile.py): script, handlers and broken
        # markup in a few articles and discussion titles. Off by default.
        self.hostile = hostile
        self.specials = Specials.for_articles(articles, hostile)
        self._special_ids = self.specials.ids()
        self._tick = tick
        # The replay caches are shared by server threads; one lock keeps them consistent.
        self._lock = threading.RLock()
        self._events: list[_TickEvents] = []  # index t-1 -> events of tick t
        self._removed_at: dict[int, int] = {}
        self._edit_ticks: dict[int, list[int]] = {}
        self._thread_states: list[_ThreadState] = []
        self._flaky_served = False

    # ---- time -------------------------------------------------------------

    @property
    def tick(self) -> int:
        return self._tick

    def set_tick(self, tick: int) -> None:
        if tick < 0:
            raise ValueError(f"tick must be >= 0, got {tick}")
        self._tick = tick

    def now(self, tick: int | None = None) -> datetime:
        """The simulated clock at a tick (UTC); the server's Date header."""
        return self.clock + TICK * (self._tick if tick is None else tick)

    # ---- ids, urls --------------------------------------------------------

    def max_id(self, tick: int | None = None) -> int:
        t = self._tick if tick is None else tick
        return self.articles + NEW_ARTICLES_PER_TICK * t

    def created_tick(self, article_id: int) -> int:
        if article_id <= self.articles:
            return 0
        return (article_id - self.articles - 1) // NEW_ARTICLES_PER_TICK + 1

    def exists(self, article_id: int, tick: int | None = None) -> bool:
        """True if the id was ever published by this tick (removed ones included)."""
        return 1 <= article_id <= self.max_id(tick)

    def is_live(self, article_id: int, tick: int | None = None) -> bool:
        t = self._tick if tick is None else tick
        if not self.exists(article_id, t):
            return False
        self._replay(t)
        removed = self._removed_at.get(article_id)
        return removed is None or removed > t

    def removed_tick(self, article_id: int) -> int | None:
        self._replay(self._tick)
        t = self._removed_at.get(article_id)
        return t if t is not None and t <= self._tick else None

    def section_of(self, article_id: int) -> tuple[str, str]:
        return banks.SECTIONS[(article_id + self.seed) % len(banks.SECTIONS)]

    def article_path(self, article_id: int) -> str:
        return f"/news/{article_id}-{self.slug(article_id)}.html"

    def canonical_url(self, article_id: int) -> str:
        return self.base_url + self.article_path(article_id)

    def encoding(self, article_id: int) -> str | None:
        """The charset an article page is served in; None means declared nowhere (UTF-8 bytes)."""
        if article_id == self.specials.no_charset:
            return None
        if (
            article_id not in self._special_ids
            and article_id % 5 == 0
            and self._headline(article_id)[0] == "ru"
        ):
            return "windows-1251"
        return "utf-8"

    def tracking_query(self, article_id: int) -> str:
        """Some listing links carry tracking parameters, as real CMS listings do."""
        if article_id % 7 != 3:
            return ""
        medium = ("list", "teaser", "block")[article_id % 3]
        return f"?utm_source=samplenews&utm_medium={medium}&utm_campaign=c{article_id % 11}"

    # ---- articles ---------------------------------------------------------

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - the site lives as long as its server
    def _base(self, article_id: int) -> Article:
        """Version 0 of an article, generated from its own Random."""
        rng = text.rng_for(self.seed, "article", article_id)
        language, title = self._draw_headline(article_id, rng)
        lead = " ".join(text.sentence(rng, language) for _ in range(rng.randint(1, 2)))
        count = rng.randint(3, 12)
        if article_id == self.specials.near_original:
            count = max(count, 6)  # enough text for shingle-based similarity to be stable
        paragraphs = tuple(text.paragraph(rng, language) for _ in range(count))
        pool = banks.RU_AUTHORS if language == "ru" else banks.EN_AUTHORS
        authors = tuple(rng.sample(pool, 2 if rng.random() < 0.2 else 1))
        tags = tuple(rng.sample(banks.TAGS, rng.randint(2, 5)))
        credit = rng.choice(banks.IMAGE_CREDITS)
        source_name = source_url = None
        if rng.random() < 0.35 or article_id == self.specials.near_copy:
            source_name, prefix = rng.choice(banks.SOURCES)
            source_url = f"{prefix}{rng.randint(100000, 999999)}"
        ad_after = rng.randrange(1, count) if rng.random() < 0.4 else None
        published = self._published(article_id)
        slug_slug, section_name = self.section_of(article_id)
        article = Article(
            id=article_id, language=language, slug=text.slugify(title), title=title, lead=lead,
            paragraphs=paragraphs, authors=authors, tags=tags, section_slug=slug_slug,
            section_name=section_name, image_credit=credit, source_name=source_name,
            source_url=source_url, published=published, modified=published,
            created_tick=self.created_tick(article_id), ad_after=ad_after,
        )
        return self._apply_role(article)

    def _apply_role(self, article: Article) -> Article:
        sp = self.specials
        if article.id in sp.hostile:
            return self._hostile_article(article)
        if article.id == sp.exact_reprint:
            orig = self._base(sp.exact_original)
            return replace(
                article, language=orig.language, title=orig.title, lead=orig.lead,
                paragraphs=orig.paragraphs, slug=orig.slug, ad_after=None,
            )
        if article.id == sp.near_copy:
            orig = self._base(sp.near_original)
            paragraphs = list(orig.paragraphs)
            # Small edits: one word swapped in two paragraphs, one sentence appended.
            swap = {"en": (" the ", " this "), "ru": (" что ", " будто ")}[orig.language]
            for index in (1, 3):
                paragraphs[index] = paragraphs[index].replace(swap[0], swap[1], 1)
            extra = {"en": "The text has been shortened.", "ru": "Текст приводится в сокращении."}
            paragraphs[-1] = f"{paragraphs[-1]} {extra[orig.language]}"
            return replace(
                article, language=orig.language, title=orig.title, lead=orig.lead,
                paragraphs=tuple(paragraphs), slug=orig.slug, ad_after=None,
            )
        return article

    def _hostile_article(self, article: Article) -> Article:
        """The generated article with hostile blocks inserted into its body (and text in its lead)."""
        blocks = hostile_module.body_blocks(article.id)
        paragraphs: list[str] = []
        raw: list[tuple[int, str]] = []
        for index, paragraph in enumerate(article.paragraphs):
            paragraphs.append(paragraph)
            if index < len(blocks) - 1:
                html, block_text = blocks[index]
                raw.append((len(paragraphs), html))
                paragraphs.append(block_text)
        html, block_text = blocks[-1]
        raw.append((len(paragraphs), html))
        paragraphs.append(block_text)
        return replace(
            article, lead=article.lead + hostile_module.LEAD_SUFFIX, paragraphs=tuple(paragraphs),
            ad_after=None, raw_html=tuple(raw),
        )

    def _draw_headline(self, article_id: int, rng: random.Random) -> tuple[str, str]:
        language = "ru" if rng.random() < 0.5 else "en"
        if article_id == self.specials.no_charset:
            language = "ru"  # so a wrong charset guess visibly garbles the text
        title = text.title(rng, language)
        if article_id in self.specials.hostile:
            title += hostile_module.HEADLINE_SUFFIXES[self.specials.hostile.index(article_id)]
        return language, title

    @functools.lru_cache(maxsize=65536)  # noqa: B019
    def _headline(self, article_id: int) -> tuple[str, str]:
        """(language, original title) without generating the body: sitemaps need only slugs."""
        sp = self.specials
        if article_id == sp.exact_reprint:
            return self._headline(sp.exact_original)
        if article_id == sp.near_copy:
            return self._headline(sp.near_original)
        return self._draw_headline(article_id, text.rng_for(self.seed, "article", article_id))

    def slug(self, article_id: int) -> str:
        return text.slugify(self._headline(article_id)[1])

    def title_at(self, article_id: int, tick: int | None = None) -> str:
        """The current title (edits applied) without generating the body when unedited."""
        t = self._tick if tick is None else tick
        self._replay(t)
        if self._edits_until(article_id, t):
            return self.article(article_id, t).title
        return self._headline(article_id)[1]

    def lastmod(self, article_id: int) -> str:
        self._replay(self._tick)
        edits = self._edits_until(article_id, self._tick)
        return iso_utc(edits[-1].at if edits else self._published(article_id))

    def redesigned(self) -> bool:
        return self.redesign_from_tick is not None and self._tick >= self.redesign_from_tick

    def banned(self) -> bool:
        return self.ban_from_tick is not None and self._tick >= self.ban_from_tick

    def lists_nothing(self) -> bool:
        return self.empty_from_tick is not None and self._tick >= self.empty_from_tick

    def published_at(self, article_id: int) -> datetime:
        """When the article was published (UTC), without generating it."""
        return self._published(article_id)

    def _published(self, article_id: int) -> datetime:
        jitter_minutes = text.rng_for(self.seed, "jitter", article_id).randint(0, 15)
        # Strictly increasing with the id (jitter < spacing), so "newest first" is
        # "highest id first" and listings stay arithmetic.
        if article_id <= self.articles:
            return self.clock - ARTICLE_SPACING * (self.articles - article_id) - timedelta(
                minutes=jitter_minutes
            )
        t = self.created_tick(article_id)
        k = (article_id - self.articles - 1) % NEW_ARTICLES_PER_TICK
        return self.clock + TICK * (t - 1) + timedelta(minutes=90 * (k + 1) - jitter_minutes)

    def article(self, article_id: int, tick: int | None = None) -> Article:
        """The article as it reads at a tick (edits applied). Raises KeyError if not live."""
        t = self._tick if tick is None else tick
        if not self.is_live(article_id, t):
            raise KeyError(article_id)
        article = self._base(article_id)
        for edit in self._edits_until(article_id, t):
            if self.edit_model == "realistic":
                article = apply_edit(article, edit, self.seed)
            else:
                article = self._edit(article, edit.version, edit.at)
        return article

    def timed_edits(self, article_id: int) -> tuple[TimedEdit, ...]:
        """Every edit the article ever gets under the realistic model, with its time and kind (ground truth)."""
        if self.edit_model != "realistic" or article_id in self._special_ids or not self.exists(article_id, 10**9):
            return ()
        # A new article appears when its tick starts, after its publication time:
        # its edits follow its appearance, so each one is there to be seen.
        appeared = self._published(article_id)
        if article_id > self.articles:
            appeared = max(appeared, self.now(self.created_tick(article_id)))
        return edit_schedule(self.seed, article_id, appeared)

    def _edits_until(self, article_id: int, tick: int) -> list[TimedEdit]:
        """The article's edits made by ``tick``, oldest first (the per-tick ones, or the timed ones)."""
        if self.edit_model == "realistic":
            now = self.now(tick)
            return [e for e in self.timed_edits(article_id) if e.at <= now]
        self._replay(tick)
        ticks = [e for e in self._edit_ticks.get(article_id, []) if e <= tick]
        return [TimedEdit(article_id, self._events[e - 1].edit_time, "tick", version)
                for version, e in enumerate(ticks, start=1)]

    def _edit(self, article: Article, version: int, when: datetime) -> Article:
        rng = text.rng_for(self.seed, "edit", article.id, version)
        mode = rng.choice(("title", "body", "both"))
        title = article.title
        paragraphs = list(article.paragraphs)
        ops: list[tuple[str | int, ...]] = []
        replaced = appended = None
        if mode in ("title", "both"):
            title = f"{text.title(rng, article.language)}"
            if title == article.title:
                title += " (updated)" if article.language == "en" else " (обновлено)"
            ops.append(("title",))
        if mode in ("body", "both"):
            replaced = rng.randrange(len(paragraphs))
            paragraphs[replaced] = text.paragraph(rng, article.language)
            if rng.random() < 0.5:
                paragraphs.append(text.paragraph(rng, article.language))
                appended = True
        # Bylines and cut paragraphs draw from their own Random, so the edits
        # above stay what they were for every seed.
        extra = text.rng_for(self.seed, "edit-extra", article.id, version)
        authors = article.authors
        if extra.random() < 0.5:
            pool = banks.RU_AUTHORS if article.language == "ru" else banks.EN_AUTHORS
            authors = tuple(extra.sample([name for name in pool if name not in article.authors], 1))
            ops.append(("authors",))
        cut = None
        if extra.random() < 0.5 and len(article.paragraphs) >= 5:
            last = len(article.paragraphs) - 1
            # Not next to the replaced paragraph, nor the last one when a paragraph
            # was appended: each edit stays one unambiguous paragraph operation.
            choices = [j for j in range(len(article.paragraphs))
                       if (replaced is None or abs(j - replaced) > 1) and not (appended and j == last)]
            if choices:
                cut = extra.choice(choices)
                del paragraphs[cut]
        if replaced is not None:
            ops.append(("replace", replaced, replaced - (cut is not None and cut < replaced)))
        if appended:
            ops.append(("insert", len(paragraphs) - 1))
        if cut is not None:
            ops.append(("delete", cut))
        return replace(
            article, title=title, authors=authors, paragraphs=tuple(paragraphs), modified=when, version=version,
            edit_ops=tuple(ops),
        )

    def views(self, article_id: int, tick: int | None = None) -> int:
        t = self._tick if tick is None else tick
        rng = text.rng_for(self.seed, "views", article_id)
        base = rng.randint(40, 4000) if rng.random() < 0.9 else rng.randint(4000, 250000)
        return base + rng.randint(3, 120) * max(0, t - self.created_tick(article_id))

    def comment_count(self, article_id: int, tick: int | None = None) -> int:
        t = self._tick if tick is None else tick
        rng = text.rng_for(self.seed, "comments", article_id)
        base = rng.choice((0, 0, 0, 1, 2, 5, 12))
        return base + rng.choice((0, 0, 1, 2)) * max(0, t - self.created_tick(article_id))

    # ---- tick replay ------------------------------------------------------

    def _replay(self, tick: int) -> None:
        """Compute the events of ticks 1..tick once; each tick depends on the state before it."""
        if len(self._events) >= tick:
            return
        with self._lock:
            while len(self._events) < tick:
                t = len(self._events) + 1
                candidates = self._recent_live(t - 1, CHANGE_WINDOW)
                rng = text.rng_for(self.seed, "tick", t)
                edited = rng.choice(candidates)
                removed = rng.choice([c for c in candidates if c != edited])
                edit_time = self.clock + TICK * (t - 1) + timedelta(minutes=rng.randint(5, 355))
                if self.edit_model == "ticks":
                    self._edit_ticks.setdefault(edited, []).append(t)
                self._removed_at[removed] = t
                self._events.append(_TickEvents(edited, edit_time, removed))

    def _recent_live(self, tick: int, limit: int) -> list[int]:
        out: list[int] = []
        article_id = self.max_id(tick)
        while article_id >= 1 and len(out) < limit:
            removed = self._removed_at.get(article_id)
            if article_id not in self._special_ids and (removed is None or removed > tick):
                out.append(article_id)
            article_id -= 1
        return out

    def _removed_sorted_desc(self, tick: int) -> list[int]:
        self._replay(tick)
        return sorted((i for i, t in self._removed_at.items() if t <= tick), reverse=True)

    # ---- listings ---------------------------------------------------------

    def live_count(self, section: str | None = None, tick: int | None = None) -> int:
        t = self._tick if tick is None else tick
        top, stride = self._listing_top(section, t)
        if top < 1:
            return 0
        total = (top - 1) // stride + 1
        removed = [r for r in self._removed_sorted_desc(t) if self._in_listing(r, section)]
        return total - len(removed)

    def page_count(self, section: str | None = None, tick: int | None = None) -> int:
        return max(1, -(-self.live_count(section, tick) // PAGE_SIZE))

    def listing(self, page: int = 1, section: str | None = None, tick: int | None = None,
                size: int = PAGE_SIZE) -> list[int]:
        """Live article ids on a listing page, newest first (front page when section is None)."""
        t = self._tick if tick is None else tick
        if page < 1:
            return []
        top, stride = self._listing_top(section, t)
        removed = [r for r in self._removed_sorted_desc(t) if self._in_listing(r, section)]
        # Skip past the removed ids at or above the candidate: processing them in
        # descending order, each one pushes the candidate one stride down.
        candidate = top - stride * (page - 1) * size
        for r in removed:
            if r >= candidate:
                candidate -= stride
            else:
                break
        removed_set = set(removed)
        out: list[int] = []
        while candidate >= 1 and len(out) < size:
            if candidate not in removed_set:
                out.append(candidate)
            candidate -= stride
        return out

    def _listing_top(self, section: str | None, tick: int) -> tuple[int, int]:
        top = self.max_id(tick)
        if section is None:
            return top, 1
        slugs = [s for s, _ in banks.SECTIONS]
        if section not in slugs:
            raise KeyError(section)
        stride = len(slugs)
        want = slugs.index(section)
        top -= (top + self.seed - want) % stride
        return top, stride

    def _in_listing(self, article_id: int, section: str | None) -> bool:
        return section is None or self.section_of(article_id)[0] == section

    def live_ids(self, tick: int | None = None) -> list[int]:
        """Every live article id at a tick, newest first."""
        t = self._tick if tick is None else tick
        removed = set(self._removed_sorted_desc(t))
        return [i for i in range(self.max_id(t), 0, -1) if i not in removed]

    # ---- discussions ------------------------------------------------------

    @functools.lru_cache(maxsize=8192)  # noqa: B019
    def _thread(self, thread_id: int) -> _Thread:
        rng = text.rng_for(self.seed, "thread", thread_id)
        created = 0 if thread_id <= self.threads else (
            (thread_id - self.threads - 1) // NEW_THREADS_PER_TICK + 1
        )
        if self.hostile and thread_id in hostile_module.THREAD_IDS:
            title = hostile_module.THREAD_TITLES[hostile_module.THREAD_IDS.index(thread_id)]
            return _Thread(thread_id, title, None, created)
        if thread_id > 3 and rng.random() < 0.25:
            target = rng.randint(1, thread_id - 1)
            while self._thread(target).reply_to_title is not None and target > 1:
                target -= 1
            inner = self._thread(target).title
            return _Thread(thread_id, f'Ответ на "{inner}"', inner, created)
        base = rng.choice(banks.THREAD_TITLES)
        cyrillic = any("а" <= ch.lower() <= "я" for ch in base)
        suffix = rng.choice(banks.THREAD_SUFFIXES_RU if cyrillic else banks.THREAD_SUFFIXES_EN)
        return _Thread(thread_id, base + suffix, None, created)

    def thread_count(self, tick: int | None = None) -> int:
        t = self._tick if tick is None else tick
        return self.threads + NEW_THREADS_PER_TICK * t

    def _thread_state(self, tick: int) -> _ThreadState:
        with self._lock:
            if not self._thread_states:
                self._thread_states.append(self._initial_threads())
            while len(self._thread_states) <= tick:
                t = len(self._thread_states)
                self._thread_states.append(self._advance_threads(self._thread_states[-1], t))
            return self._thread_states[tick]

    def _initial_threads(self) -> _ThreadState:
        state = _ThreadState()
        for tid in range(1, self.threads + 1):
            rng = text.rng_for(self.seed, "thread-initial", tid)
            # Mostly the last three days, a tail reaching three weeks back.
            span = 3 * 24 * 60 if rng.random() < 0.8 else 21 * 24 * 60
            when = self.clock - timedelta(minutes=rng.randint(1, span))
            count = rng.randint(0, 30) if rng.random() < 0.95 else rng.randint(1000, 6000)
            if self.hostile and tid in hostile_module.THREAD_IDS:
                # The hostile threads lead the sidebar at tick 0: every other
                # thread is at least a minute older (ties go to the higher id).
                when = self.clock
            state.threads[tid] = (when, count)
        return state

    def _advance_threads(self, prev: _ThreadState, t: int) -> _ThreadState:
        rng = text.rng_for(self.seed, "threads-tick", t)
        start, end = self.now(t - 1), self.now(t)
        state = _ThreadState(dict(prev.threads))
        movers = rng.sample(sorted(prev.threads), min(THREAD_MOVES_PER_TICK, len(prev.threads)))
        times = sorted(start + timedelta(minutes=rng.randint(1, 360)) for _ in movers)
        new_year = self._new_year_in(start, end)
        if new_year is not None:
            # The New Year case: one entry at 23:50 on 31.12, read in January.
            times[0] = new_year
        for tid, when in zip(movers, times, strict=True):
            _, count = state.threads[tid]
            state.threads[tid] = (when, count + rng.randint(1, 3))
        first_new = self.threads + NEW_THREADS_PER_TICK * (t - 1) + 1
        for tid in range(first_new, first_new + NEW_THREADS_PER_TICK):
            state.threads[tid] = (start + timedelta(minutes=rng.randint(1, 360)), rng.randint(0, 2))
        return state

    @staticmethod
    def _new_year_in(start: datetime, end: datetime) -> datetime | None:
        year = start.astimezone(SITE_TZ).year
        moment = datetime(year, 12, 31, 23, 50, tzinfo=SITE_TZ).astimezone(UTC)
        return moment if start < moment <= end else None

    def discussion_order(self, tick: int | None = None) -> list[tuple[int, datetime, int]]:
        """(thread id, last activity UTC, comment count), newest activity first."""
        t = self._tick if tick is None else tick
        state = self._thread_state(t)
        rows = [(tid, when, count) for tid, (when, count) in state.threads.items()]
        rows.sort(key=lambda row: (row[1], row[0]), reverse=True)
        return rows

    def thread(self, thread_id: int) -> dict[str, Any]:
        if not 1 <= thread_id <= self.thread_count():
            raise KeyError(thread_id)
        info = self._thread(thread_id)
        when, count = self._thread_state(self._tick).threads[thread_id]
        return {"id": thread_id, "title": info.title, "reply_to_title": info.reply_to_title,
                "last_activity": when, "comment_count": count}

    def thread_title(self, thread_id: int) -> str:
        return self._thread(thread_id).title

    def thread_url(self, thread_id: int) -> str:
        return f"{self.base_url}/threads/{thread_id}"

    @staticmethod
    def activity_raw(when: datetime) -> str:
        return when.astimezone(SITE_TZ).strftime("%d.%m %H:%M")

    # ---- ground truth -----------------------------------------------------

    def article_truth(self, article_id: int) -> dict[str, Any]:
        """The clean item a perfect crawler yields for one live article at the current tick."""
        article = self.article(article_id)
        sp = self.specials
        duplicate_of = self.canonical_url(sp.exact_original) if article_id == sp.exact_reprint \
            else None
        near_of = self.canonical_url(sp.near_original) if article_id == sp.near_copy else None
        url = self.canonical_url(article_id)
        return {
            "type": "article",
            "url": url,
            "canonical_url": url,
            "title": article.title,
            "lead": article.lead,
            "body": article.body,
            "authors": list(article.authors),
            "published_at": iso_utc(article.published),
            "published_raw": article.published.astimezone(SITE_TZ).strftime("%d.%m.%Y %H:%M"),
            "modified_at": iso_utc(article.modified),
            "section": article.section_name,
            "tags": list(article.tags),
            "image_url": f"{self.base_url}/img/{article_id}.jpg",
            "image_credit": article.image_credit,
            "source_name": article.source_name,
            "source_url": article.source_url,
            "views": self.views(article_id),
            "comment_count": self.comment_count(article_id),
            "language": article.language,
            "duplicate_of": duplicate_of,
            "near_duplicate_of": near_of,
        }

    def hostile_thread_ids(self, tick: int | None = None) -> list[int]:
        """Threads whose title carries hostile text at a tick: the planted ones and replies quoting one."""
        if not self.hostile:
            return []
        planted = {self._thread(tid).title for tid in hostile_module.THREAD_IDS}
        return [
            tid for tid in range(1, self.thread_count(tick) + 1)
            if tid in hostile_module.THREAD_IDS or self._thread(tid).reply_to_title in planted
        ]

    def hostile_truth(self) -> dict[str, list[dict[str, Any]]]:
        """The hostile articles and threads at the current tick, with the text a crawl must extract.

        ``title`` (and an article's ``lead``) is the literal text, markup
        characters included, exactly as ``article_truth`` / ``expected_discussions``
        give it. Empty lists when the site is not hostile.
        """
        articles = [
            {"id": i, "url": self.canonical_url(i), "path": self.article_path(i),
             "title": self.title_at(i), "lead": self._base(i).lead, "live": self.is_live(i)}
            for i in self.specials.hostile if self.exists(i)
        ]
        threads = [
            {"id": tid, "url": self.thread_url(tid), "path": f"/threads/{tid}",
             "title": self._thread(tid).title, "planted": tid in hostile_module.THREAD_IDS}
            for tid in self.hostile_thread_ids()
        ]
        return {"articles": articles, "threads": threads}

    def expected_articles(self) -> list[dict[str, Any]]:
        """One clean item per distinct live article at the current tick, newest first."""
        return [self.article_truth(i) for i in self.live_ids()]

    def discussion_list_url(self, page: int) -> str:
        suffix = "" if page == 1 else f"?page={page}"
        return f"{self.base_url}/discussions/{suffix}"

    def expected_discussions(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for index, (tid, when, count) in enumerate(self.discussion_order(), start=1):
            info = self._thread(tid)
            out.append({
                "type": "discussion",
                "list_url": self.discussion_list_url((index - 1) // PAGE_SIZE + 1),
                "position": index,
                "thread_url": self.thread_url(tid),
                "title": info.title,
                "last_activity_raw": self.activity_raw(when),
                "last_activity_at": iso_utc(when),
                "comment_count": count,
                "is_reply": info.reply_to_title is not None,
                "reply_to_title": info.reply_to_title,
            })
        return out

    def edited_at(self, tick: int) -> int:
        """The id of the article edited at ``tick`` (one edit per tick, from tick 1)."""
        if tick < 1:
            raise ValueError(f"edits start at tick 1, got {tick}")
        if self.edit_model != "ticks":
            raise ValueError("edited_at is the per-tick edit; the realistic model has timed_edits(article_id)")
        self._replay(tick)
        return self._events[tick - 1].edited

    def changes(self, from_tick: int, to_tick: int) -> dict[str, list[str]]:
        """What changed between two ticks: article canonical URLs and thread URLs."""
        if not 0 <= from_tick <= to_tick:
            raise ValueError(f"need 0 <= from_tick <= to_tick, got {from_tick}, {to_tick}")
        self._replay(to_tick)
        before = set(self.live_ids(from_tick))
        after = set(self.live_ids(to_tick))
        if self.edit_model == "realistic":
            start, end = self.now(from_tick), self.now(to_tick)
            edited = {i for i in before & after if any(start < e.at <= end for e in self.timed_edits(i))}
        else:
            edited = {
                i for i, ticks in self._edit_ticks.items()
                if any(from_tick < t <= to_tick for t in ticks)
            }
        both = before & after
        url = self.canonical_url
        old_threads = self._thread_state(from_tick).threads
        new_threads = self._thread_state(to_tick).threads
        return {
            "new": [url(i) for i in sorted(after - before, reverse=True)],
            "updated": [url(i) for i in sorted(both & edited, reverse=True)],
            "unchanged": [url(i) for i in sorted(both - edited, reverse=True)],
            "removed": [url(i) for i in sorted(before - after, reverse=True)],
            "threads_moved": [
                self.thread_url(tid) for tid in sorted(old_threads)
                if new_threads[tid] != old_threads[tid]
            ],
            "threads_new": [self.thread_url(tid) for tid in sorted(set(new_threads) - set(old_threads))],
        }

    def fault_urls(self) -> list[dict[str, Any]]:
        """Each fault page, where it is linked from and what a crawler should count it as."""
        sp, b = self.specials, self.base_url
        cp1251 = next(
            (i for i in range(self.max_id(), 0, -1)
             if self.is_live(i) and self.encoding(i) == "windows-1251"), None,
        )
        faults: list[dict[str, Any]] = [
            {"name": "windows-1251", "url": self.canonical_url(cp1251) if cp1251 else None,
             "status": 200, "linked": True, "counts_as": "article",
             "note": "Russian article in windows-1251, declared in Content-Type and meta; "
                     "every live ru article with id % 5 == 0 (non-special) is served so"},
            {"name": "no-charset", "url": self.canonical_url(sp.no_charset), "status": 200,
             "linked": True, "counts_as": "article",
             "note": "no charset in header or meta; body bytes are UTF-8 (Russian)"},
            {"name": "flaky-500", "url": self.canonical_url(sp.flaky), "status": 500,
             "linked": True, "counts_as": "article",
             "note": "500 on the first request to this server, 200 afterwards (retry)"},
            {"name": "missing-404", "url": f"{b}/news/{MISSING_ID}-missing-article.html",
             "status": 404, "linked": True, "counts_as": "error",
             "note": "listing link to an article that does not exist; no item"},
            {"name": "slow", "url": self.canonical_url(sp.slow), "status": 200, "linked": True,
             "counts_as": "article", "note": "answers after about 3 seconds"},
            {"name": "redirect-chain", "url": f"{b}/go/{sp.redirect}", "status": 301,
             "linked": True, "counts_as": "article",
             "final_url": self.canonical_url(sp.redirect),
             "note": "/go/<id> 301 -> /r/<id> 302 -> the article (also listed directly)"},
            {"name": "oversize", "url": f"{b}/news/{HUGE_ID}-huge.html", "status": 200,
             "linked": True, "counts_as": "too_large", "size": self.oversize_bytes,
             "note": "streamed page larger than the size limit; not an article"},
            {"name": "malformed", "url": self.canonical_url(sp.malformed), "status": 200,
             "linked": True, "counts_as": "article",
             "note": "unclosed tags and bad nesting; every field still extractable"},
            {"name": "robots-disallowed", "url": f"{b}/private/archive.html", "status": 200,
             "linked": True, "counts_as": "robots_disallowed",
             "note": "under /private/, must not be fetched by a polite crawler"},
            {"name": "print-duplicate", "url": f"{b}/print/{sp.printable}.html", "status": 200,
             "linked": True, "counts_as": "article",
             "final_url": self.canonical_url(sp.printable),
             "note": "second URL of one article; rel=canonical points to the /news/ URL"},
            {"name": "near-duplicate", "url": self.canonical_url(sp.near_copy), "status": 200,
             "linked": True, "counts_as": "article",
             "duplicate_of": self.canonical_url(sp.near_original),
             "note": "syndicated copy of an earlier article with small edits"},
            {"name": "exact-reprint", "url": self.canonical_url(sp.exact_reprint),
             "status": 200, "linked": True, "counts_as": "article",
             "duplicate_of": self.canonical_url(sp.exact_original),
             "note": "same title, lead and body as an earlier article at another URL"},
            {"name": "gzip-bomb", "url": f"{b}/faults/gzip-bomb", "status": 200,
             "linked": False, "counts_as": "too_large",
             "note": "Content-Encoding: gzip, about 1 MiB on the wire, 1 GiB decompressed"},
            {"name": "big-10mb", "url": f"{b}/faults/big-10mb.html", "status": 200,
             "linked": False, "counts_as": "nothing_new", "size": 10 * 1024 * 1024,
             "note": "10 MiB HTML page with no links: exactly the default size limit, so it is "
                     "fetched and read, and counted as leading nowhere"},
        ]
        return faults

    def fault_flaky_first_hit(self) -> bool:
        """True exactly once per site object: the flaky article's first request fails."""
        with self._lock:
            if self._flaky_served:
                return False
            self._flaky_served = True
            return True


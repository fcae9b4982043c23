"""The `articles` spider: discovers article URLs from listings, feeds and sitemaps, yields raw articles."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import scrapy
from parsel import Selector
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider
from scrapy.http import Response, TextResponse
from scrapy.utils.gz import gunzip
from scrapy.utils.misc import load_object
from scrapy.utils.sitemap import Sitemap

from newsvault.revisit import DueArticle, HostWatch, RevisitPolicy, RevisitRecord, plan_revisits
from spiders.base import ProfileSpider, failure_kind, url_key
from spiders.extract import extract_article, http_date_to_iso, utc_now
from spiders.extract.select import links
from spiders.profile import SelectorSpec

log = logging.getLogger(__name__)

GONE_STATUSES = [404, 410]
_DEFAULT_PAGINATION = [SelectorSpec(css="a[rel~=next]"), SelectorSpec(css="link[rel~=next]")]
_ALL_LINKS = [SelectorSpec(css="a[href]")]
# Failures that mean "no answer": the article may be fine, the host is not.
NO_ANSWER = frozenset({"unreachable", "timeout"})
REVISIT_STATS = "newsvault/revisit/{}"


# Where earlier runs' articles come from: a function (state_dir, site, url=shared
# state URL or None) -> [RevisitRecord] named by a setting, so the spider reaches
# the state store through that small interface and never imports the pipelines.
RevisitRecords = Callable[..., list[RevisitRecord]]


class ArticlesSpider(ProfileSpider):
    """Yields one raw article item per article page (see docs/architecture.md)."""

    name = "articles"

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> ArticlesSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        assert isinstance(spider, ArticlesSpider)
        configured = RevisitPolicy.from_mapping(crawler.settings.getdict("NEWSVAULT_REVISIT"))
        spider.revisit_policy = spider.profile.revisit.over(configured)
        spider.state_dir = crawler.settings.get("NEWSVAULT_STATE_DIR")
        spider.state_url = crawler.settings.get("NEWSVAULT_STATE_URL")
        spider.revisit_records = load_object(crawler.settings["NEWSVAULT_REVISIT_RECORDS"])
        # One batch per idle: small enough that a dead host costs only a few
        # requests before HostWatch stops its revisits.
        per_domain = crawler.settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN") or 1
        spider.revisit_batch = max(spider.revisit_policy.host_down_failures, 2 * per_domain)
        spider._hosts = HostWatch(spider.revisit_policy.host_down_failures)
        crawler.signals.connect(spider.on_idle, signal=signals.spider_idle)
        return spider

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.revisit_policy = RevisitPolicy(mode="off")
        self.revisit_batch = 8
        self.state_dir: str | None = None
        self.state_url: str | None = None
        self.revisit_records: RevisitRecords | None = None
        self._requested: set[str] = set()
        self._yielded: set[str] = set()
        self._article_requests = 0
        self._revisits: deque[DueArticle] | None = None
        self._hosts = HostWatch(self.revisit_policy.host_down_failures)

    # --- start ---------------------------------------------------------------
    def entry_urls(self) -> list[str]:
        return self.override_urls or self.profile.start_urls.for_articles()

    async def start(self) -> AsyncIterator[Any]:
        for url in self.entry_urls():
            if self.profile.is_article_url(url):
                request = self.article_request(url)
                if request is not None:
                    request.meta["nv_start"] = True
                    yield request
                continue
            yield scrapy.Request(
                url, callback=self.parse_entry, errback=self.on_error, dont_filter=True,
                meta={"nv_start": True, "nv_page": 1},
            )

    # --- discovery -----------------------------------------------------------
    def article_request(self, url: str, listed: bool = False) -> scrapy.Request | None:
        """A request for an article URL not requested yet, or None.

        ``listed``: the link came from the profile's listing selectors, so the
        site presents it as an article even when the URL does not look like one
        (print copies, redirects); the response decides (canonical URL, final URL).
        """
        if not self.in_scope(url):
            return None
        if not listed and not self.profile.is_article_url(url):
            return None
        key = url_key(url)
        if key in self._requested:
            return None
        limit = self.profile.limits.max_articles
        if limit is not None and self._article_requests >= limit:
            self.inc_stat("newsvault/limits/max_articles_skipped")
            return None
        self._requested.add(key)
        self._article_requests += 1
        return scrapy.Request(
            url,
            callback=self.parse_article,
            errback=self.on_error,
            meta={"handle_httpstatus_list": GONE_STATUSES, "nv_request_url": url},
        )

    def parse_entry(self, response: Response) -> Iterator[Any]:
        """A start or follow-up page: sitemap, feed or HTML listing, by what it contains."""
        self.start_ok(response)
        body = response.body
        if body[:2] == b"\x1f\x8b":
            try:
                body = gunzip(body, max_size=self.crawler.settings.getint("DOWNLOAD_MAXSIZE"))
            except (OSError, EOFError, ValueError):  # corrupt, or past the size limit once unpacked
                self.count_page("bad_gzip", response.url)
                return
        head = body[:512].lstrip().lower()
        if b"<urlset" in head or b"<sitemapindex" in head or b"sitemaps.org" in head:
            found = self.parse_sitemap(response, body)
        elif b"<rss" in head or b"<feed" in head or b"<rdf" in head:
            found = self.parse_feed(response, body)
        elif isinstance(response, TextResponse):
            found = self.parse_listing(response)
        else:
            self.count_page("not_listing", response.url)
            return
        produced = False
        for result in found:
            produced = True
            yield result
        if not produced:
            # Fetched and read, but led nowhere new: still accounted for.
            self.count_page("nothing_new", response.url)

    def parse_sitemap(self, response: Response, body: bytes) -> Iterator[Any]:
        try:
            sitemap = Sitemap(body)
        except (ValueError, SyntaxError):  # lxml parse errors subclass SyntaxError
            self.count_page("parse_error", response.url)
            return
        for entry in sitemap:
            loc = entry.get("loc")
            if not loc:
                continue
            if sitemap.type == "sitemapindex":
                if self.in_scope(loc):
                    yield scrapy.Request(loc, callback=self.parse_entry, errback=self.on_error)
            else:
                request = self.article_request(loc)
                if request is not None:
                    yield request

    def parse_feed(self, response: Response, body: bytes) -> Iterator[Any]:
        root = Selector(body=body, type="xml")
        found = root.xpath("//*[local-name()='item']/*[local-name()='link']/text()").getall()
        found += root.xpath("//*[local-name()='entry']/*[local-name()='link']/@href").getall()
        for url in found:
            request = self.article_request(response.urljoin(url.strip()))
            if request is not None:
                yield request

    def parse_listing(self, response: TextResponse) -> Iterator[Any]:
        config = self.profile.articles
        root = response.selector
        hrefs = links(root, config.listing, response.url) if config.listing else []
        listed = bool(hrefs)
        if not hrefs:
            # No listing selector or it found nothing: any link that looks like an article.
            hrefs = links(root, _ALL_LINKS, response.url)
        for url in hrefs:
            request = self.article_request(url, listed=listed)
            if request is not None:
                yield request
        page = int(response.meta.get("nv_page", 1))
        if page >= config.max_pages:
            return
        for url in links(root, config.pagination or _DEFAULT_PAGINATION, response.url)[:1]:
            if self.in_scope(url):
                yield scrapy.Request(
                    url, callback=self.parse_entry, errback=self.on_error, meta={"nv_page": page + 1}
                )

    # --- articles --------------------------------------------------------------
    def parse_article(self, response: Response) -> Iterator[Any]:
        self.start_ok(response)
        fetched_at = utc_now()
        if response.status in GONE_STATUSES:
            self.count_page("gone", response.url)
            yield {
                "type": "gone",
                "site": self.site,
                "url": response.url,
                "status": response.status,
                "fetched_at": fetched_at,
            }
            return
        if not isinstance(response, TextResponse):
            self.count_page("not_article", response.url)
            return
        try:
            item = extract_article(
                response.selector,
                response.url,
                self.profile,
                request_url=response.meta.get("nv_request_url", response.url),
                server_date=http_date_to_iso(response.headers.get("Date")),
                fetched_at=fetched_at,
            )
        except Exception:  # one broken page must not end the crawl; it is counted instead
            log.exception("extraction failed for %s", response.url)
            self.count_page("parse_error", response.url)
            return
        if not item["title"] and not item["body"]:
            self.count_page("empty", response.url)
            return
        canonical = item["canonical_url"]
        if canonical and not self.profile.is_article_url(canonical):
            # Sites that declare rel=canonical="/" (or a section) on every page
            # would otherwise merge all their articles into one.
            self.crawler.stats.inc_value("newsvault/pages/canonical_ignored")
            canonical = item["canonical_url"] = None
        here = url_key(response.url)
        if not self.profile.is_article_url(response.url) and not (canonical and self.profile.is_article_url(canonical)):
            self.count_page("not_article", response.url)
            return
        if canonical and url_key(canonical) != here and self.in_scope(canonical) and self.profile.is_article_url(canonical):
            # A second address of an article (print copy): the canonical page is the one archived.
            self.count_page("non_canonical", response.url)
            self._yielded.add(here)
            request = self.article_request(canonical)
            if request is not None:
                yield request
            return
        key = url_key(canonical or response.url)
        if key in self._yielded:
            # The same article reached again (redirect, print copy, tracking parameters).
            self.count_page("duplicate", response.url)
            return
        self._yielded.add(key)
        self._yielded.add(url_key(response.url))
        self._requested.add(key)
        yield item

    # --- revisits ---------------------------------------------------------------
    def on_idle(self) -> None:
        """Once the frontier is empty, revisit known articles this run did not reach, one batch per idle.

        Which and how many: :func:`newsvault.revisit.plan_revisits` (due ones,
        most overdue first, within the budget). A 404/410 answer is a removal
        (``gone`` item); no answer is an ``unreachable`` item, and after
        ``host_down_failures`` of those in a row the host's remaining revisits
        wait for the next run.
        """
        if self._revisits is None:
            self._revisits = deque(self._plan_revisits())
        batch: list[DueArticle] = []
        while self._revisits and len(batch) < self.revisit_batch:
            due = self._revisits.popleft()
            if self._hosts.is_down(due.record.url):
                self.inc_stat(REVISIT_STATS.format("skipped_host_down"))
                continue
            batch.append(due)
        for due in batch:
            url = due.record.url
            self._requested.add(url_key(url))
            self.crawler.engine.crawl(
                scrapy.Request(
                    url,
                    callback=self.parse_revisit,
                    errback=self.on_revisit_error,
                    # A revisit that fails is simply due again next run: one retry, not RETRY_TIMES.
                    meta={"handle_httpstatus_list": GONE_STATUSES, "nv_request_url": url, "nv_revisit": True,
                          "max_retry_times": 1},
                )
            )
        self.inc_stat(REVISIT_STATS.format("requested"), len(batch))
        if batch:
            raise DontCloseSpider

    def _plan_revisits(self) -> list[DueArticle]:
        policy = self.revisit_policy
        if policy.mode == "off" or not self.revisit_records or not self.state_dir:
            return []
        try:
            records = self.revisit_records(self.state_dir, self.site, url=self.state_url)
        except Exception:  # the state store is optional here; a broken one must not kill the crawl
            log.exception("cannot read the known articles from %s", self.state_dir)
            return []
        plan = plan_revisits(
            (r for r in records if self.in_scope(r.url)),
            datetime.now(UTC),
            policy,
            reached=lambda url: url_key(url) in self._requested or url_key(url) in self._yielded,
        )
        self.inc_stat(REVISIT_STATS.format("due"), plan.due)
        self.inc_stat(REVISIT_STATS.format("deferred"), plan.deferred)
        if plan.deferred:
            log.info("%d revisits due, %d within this run's budget; the rest wait for the next run",
                     plan.due, len(plan.selected))
        return plan.selected

    def parse_revisit(self, response: Response) -> Iterator[Any]:
        """A known article's answer: the article or its removal, else a failed attempt that backs the article off.

        Anything that does not update the known URL's own record (an error
        page, a page that is not the article, a move to another URL) must
        still count, or the article stays due, ever later, and takes the
        budget of every run.
        """
        requested = response.meta.get("nv_request_url") or response.url
        self._hosts.answered(requested)
        recorded = False
        for out in self.parse_article(response):
            if isinstance(out, dict) and out.get("type") == "gone":
                out["url"] = requested  # the known URL is what answered gone, redirected or not
                recorded = True
            elif isinstance(out, dict) and out.get("type") == "article":
                recorded = url_key(out.get("canonical_url") or out["url"]) == url_key(requested)
            yield out
        if not recorded:
            self.inc_stat(REVISIT_STATS.format("failed"))
            yield self._failed_attempt(requested, "not_the_article")

    def on_revisit_error(self, failure: Any) -> Iterator[Any]:
        """A revisit got no usable answer: counted as any failure, and a failed attempt (a back-off, never a removal).

        No answer at all (connection refused or reset, DNS, a timeout) also
        counts towards the host being down.
        """
        self.on_error(failure)
        request = failure.request
        requested = request.meta.get("nv_request_url") or request.url
        kind = failure_kind(failure)
        if kind in NO_ANSWER:
            self.inc_stat(REVISIT_STATS.format("unreachable"))
            if self._hosts.failed(requested):
                self.inc_stat(REVISIT_STATS.format("hosts_down"))
                log.warning(
                    "%s did not answer %d revisits in a row (%s): its other revisits wait for the next run;"
                    " nothing is marked removed", urlsplit(requested).netloc, self._hosts.limit, kind,
                )
        else:
            self.inc_stat(REVISIT_STATS.format("failed"))
        yield self._failed_attempt(requested, kind)

    def _failed_attempt(self, url: str, reason: str) -> dict[str, Any]:
        return {"type": "unreachable", "site": self.site, "url": url, "reason": reason, "fetched_at": utc_now()}

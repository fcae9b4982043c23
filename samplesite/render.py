"""HTML/XML rendering and routing of the sample site: ``render(path, query) -> Response``.

Pure functions of the model at its current tick, apart from the one flaky
article (the model remembers its first hit). The HTTP server only moves bytes.
"""

from __future__ import annotations

import functools
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from html import escape
from urllib.parse import parse_qs

from samplesite import assets, banks
from samplesite.model import (
    HUGE_ID,
    PAGE_SIZE,
    RSS_ITEMS,
    SIDEBAR_ENTRIES,
    SITE_NAME,
    SITE_TZ,
    SITEMAP_URLS,
    Article,
    SampleSite,
    iso_local,
)
from samplesite.text import group_thousands as _group
from samplesite.text import slugify

# The slow fault's delay: long beside every other page (under a millisecond), short
# enough that a crawl of a small site does not spend most of its time waiting on it.
SLOW_SECONDS = 1.0
BIG_FAULT_BYTES = 10 * 1024 * 1024
GZIP_BOMB_MEMBER = 64 * 1024 * 1024
GZIP_BOMB_MEMBERS = 16  # 16 x 64 MiB = 1 GiB decompressed

HTML_UTF8 = "text/html; charset=utf-8"

_NEWS = re.compile(r"^/news/(\d+)-([A-Za-z0-9-]+)\.html$")
_PRINT = re.compile(r"^/print/(\d+)\.html$")
_GO = re.compile(r"^/(go|r)/(\d+)$")
_SECTION = re.compile(r"^/section/([a-z]+)/$")
_SITEMAP = re.compile(r"^/sitemap-(\d+)\.xml$")
_THREAD = re.compile(r"^/threads/(\d+)$")
_IMG = re.compile(r"^/img/(\d+)\.jpg$")


@dataclass
class Response:
    """What the server sends: status, headers, and bytes or a chunk iterator."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | Iterator[bytes] = b""
    length: int | None = None  # Content-Length for iterator bodies
    delay: float = 0.0  # seconds to wait before answering (the slow fault)


def render(site: SampleSite, path: str, query: str = "") -> Response:
    """Route one GET request to its page."""
    params = {k: v[-1] for k, v in parse_qs(query).items()}
    page = _page_param(params)
    if site.banned() and _ban_hits(path):
        # A ban that spares the entry pages: deep pages answer 403 or 429.
        status = 403 if zlib.crc32(path.encode()) % 2 else 429
        return _html(f"<html><body><h1>{status}</h1><p>Access denied.</p></body></html>", status)
    if path == "/":
        return _listing(site, None, page)
    if path == "/robots.txt":
        body = f"User-agent: *\nDisallow: /private/\nDisallow: /_control/\n\nSitemap: {site.base_url}/sitemap.xml\n"
        return _ok(body.encode(), "text/plain; charset=utf-8")
    if path == "/rss.xml":
        return _ok(_rss(site).encode(), "application/rss+xml; charset=utf-8")
    if path == "/sitemap.xml":
        return _ok(_sitemap_index(site).encode(), "application/xml; charset=utf-8")
    if path == "/discussions/":
        return _discussions(site, page)
    if match := _NEWS.match(path):
        return _article_route(site, int(match[1]), match[2])
    if match := _SECTION.match(path):
        return _listing(site, match[1], page)
    if match := _PRINT.match(path):
        article_id = int(match[1])
        if article_id != site.specials.printable or not site.is_live(article_id):
            return _not_found()
        return _html(_article_page(site, site.article(article_id), printable=True))
    if match := _GO.match(path):
        article_id = int(match[2])
        if not site.is_live(article_id):
            return _not_found()
        if match[1] == "go":
            return Response(301, [("Location", f"/r/{article_id}")])
        return Response(302, [("Location", site.article_path(article_id))])
    if match := _SITEMAP.match(path):
        return _sitemap(site, int(match[1]))
    if match := _THREAD.match(path):
        return _thread_page(site, int(match[1]))
    if match := _IMG.match(path):
        return _ok(assets.TINY_JPEG, "image/jpeg")
    if path.startswith(("/tag/", "/login", "/private/")):
        return _html(_simple_page(site, "Sample News", "<p>Nothing to see here.</p>"))
    if path == "/faults/gzip-bomb":
        bomb = _gzip_bomb()
        return Response(200, [("Content-Type", HTML_UTF8), ("Content-Encoding", "gzip")], bomb)
    if path == "/faults/big-10mb.html":
        return _filler(BIG_FAULT_BYTES)
    return _not_found()


_ENTRY_PATHS = ("/", "/robots.txt", "/rss.xml", "/sitemap.xml", "/discussions/")


def _ban_hits(path: str) -> bool:
    """Nine deep pages in ten (by a hash of the path, so the same ones every time)."""
    if path in _ENTRY_PATHS or _SECTION.match(path) or _SITEMAP.match(path):
        return False
    return zlib.crc32(path.encode()) % 10 != 0


def date_header(site: SampleSite) -> str:
    return format_datetime(site.now(), usegmt=True)


# ---- responses ---------------------------------------------------------------


def _ok(body: bytes, content_type: str) -> Response:
    return Response(200, [("Content-Type", content_type)], body)


def _html(text: str, status: int = 200) -> Response:
    return Response(status, [("Content-Type", HTML_UTF8)], text.encode("utf-8"))


def _not_found() -> Response:
    return Response(404, [("Content-Type", HTML_UTF8)], b"<html><body><h1>404 Not Found</h1></body></html>")


def _page_param(params: dict[str, str]) -> int:
    try:
        return max(1, int(params.get("page", "1")))
    except ValueError:
        return 1


# ---- page skeleton -----------------------------------------------------------


def _nav() -> str:
    links = "".join(f'<a href="/section/{slug}/">{name}</a>' for slug, name in banks.SECTIONS)
    return (
        '<header class="site-header"><a class="logo" href="/">Sample News</a>'
        '<a class="login" href="/login">Войти</a>'
        f'<nav class="sections">{links}<a href="/discussions/">Discussions</a></nav></header>'
    )


_FOOTER = (
    '<footer class="footer"><p>&copy; Sample News. All rights reserved. 18+</p>'
    '<p><a href="/rss.xml">RSS</a> <a href="/sitemap.xml">Sitemap</a></p></footer>'
)


def _head_common() -> str:
    return f"<style>{assets.SITE_CSS}</style><script>{assets.SITE_JS}</script>"


def _simple_page(site: SampleSite, title: str, main: str, lang: str = "ru") -> str:
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>{_head_common()}</head><body>{_nav()}"
        f"<main>{main}</main>{_FOOTER}</body></html>"
    )


def _entry(site: SampleSite, tid: int, when: datetime, count: int) -> str:
    return (
        f'<li class="discussion-entry"><span class="entry-time">{site.activity_raw(when)}'
        f'</span> <span class="entry-comments">{count}</span> <a class="entry-title" '
        f'href="/threads/{tid}">{escape(site.thread_title(tid), quote=False)}</a></li>'
    )


def _sidebar(site: SampleSite) -> str:
    rows = site.discussion_order()[:SIDEBAR_ENTRIES]
    entries = "".join(_entry(site, tid, when, count) for tid, when, count in rows)
    return (
        '<aside class="discussion-sidebar"><h3>Discussion</h3>'
        f'<a class="update" href="/discussions/">Update</a><ul class="discussion-list">{entries}</ul></aside>'
    )


def _pagination(prefix: str, page: int, pages: int) -> str:
    parts = []
    if page > 1:
        prev = prefix if page == 2 else f"{prefix}?page={page - 1}"
        parts.append(f'<a class="prev" rel="prev" href="{prev}">Previous</a>')
    parts.append(f'<span class="page-number">{page} / {pages}</span>')
    if page < pages:
        parts.append(f'<a class="next" rel="next" href="{prefix}?page={page + 1}">Next</a>')
    return f'<div class="pagination">{" ".join(parts)}</div>'


# ---- listings ----------------------------------------------------------------


def _listing(site: SampleSite, section: str | None, page: int) -> Response:
    try:
        ids = [] if site.lists_nothing() else site.listing(page, section)
        pages = 1 if site.lists_nothing() else site.page_count(section)
    except KeyError:
        return _not_found()
    if not ids and page > 1:
        return _not_found()
    items = [_list_item(site, i) for i in ids]
    if section is None and page == 1:
        items.extend(_fault_links(site))
    prefix = "/" if section is None else f"/section/{section}/"
    heading = SITE_NAME if section is None else dict(banks.SECTIONS)[section]
    main = (
        f'<h1 class="rubric">{heading}</h1><ul class="article-list">{"".join(items)}</ul>'
        f"{_pagination(prefix, page, pages)}"
    )
    return _html(_simple_page(site, f"{heading} | {SITE_NAME}", main + _sidebar(site)))


def _list_item(site: SampleSite, article_id: int, href: str | None = None) -> str:
    url = href or site.article_path(article_id) + site.tracking_query(article_id)
    views = site.views(article_id)
    return (
        f'<li><a class="article-link" href="{escape(url)}">{escape(site.title_at(article_id), quote=False)}'
        f'</a> <span class="views">{_group(views)}</span></li>'
    )


def _fault_links(site: SampleSite) -> list[str]:
    """Links a normal crawl meets on the front page: each leads to one fault."""
    sp = site.specials
    items = [
        _list_item(site, sp.printable, f"/print/{sp.printable}.html"),
        _list_item(site, sp.redirect, f"/go/{sp.redirect}"),
    ]
    items.append(
        '<li><a class="article-link" href="/news/900000002-missing-article.html">'
        "Статья, которой больше нет</a> <span class=\"views\">0</span></li>"
    )
    items.append(
        f'<li><a class="article-link" href="/news/{HUGE_ID}-huge.html">'
        "The complete archive on one page</a> <span class=\"views\">0</span></li>"
    )
    items.append(
        '<li><a class="article-link" href="/private/archive.html">'
        "Закрытый архив редакции</a> <span class=\"views\">0</span></li>"
    )
    return items


def _discussions(site: SampleSite, page: int) -> Response:
    rows = site.discussion_order()
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    if page > pages:
        return _not_found()
    chunk = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    entries = "".join(_entry(site, tid, when, count) for tid, when, count in chunk)
    main = (
        f'<h1 class="rubric">Discussion</h1><ul class="discussion-list">{entries}</ul>'
        f'{_pagination("/discussions/", page, pages)}'
    )
    return _html(_simple_page(site, f"Discussion | {SITE_NAME}", main))


def _thread_page(site: SampleSite, tid: int) -> Response:
    try:
        info = site.thread(tid)
    except KeyError:
        return _not_found()
    main = (
        f'<article class="thread" data-id="{tid}"><h1>{escape(info["title"], quote=False)}</h1>'
        f'<p class="thread-meta">{site.activity_raw(info["last_activity"])}, '
        f'{info["comment_count"]} comments</p></article>'
    )
    return _html(_simple_page(site, f"{info['title']} | {SITE_NAME}", main))


# ---- articles ----------------------------------------------------------------


def _article_route(site: SampleSite, article_id: int, slug: str) -> Response:
    if article_id == HUGE_ID and slug == "huge":
        return _filler(site.oversize_bytes)
    if not site.exists(article_id):
        return _not_found()
    if not site.is_live(article_id):
        return _html("<html><body><h1>410 Gone</h1><p>Материал удалён.</p></body></html>", 410)
    path = site.article_path(article_id)
    if slug != path[len(f"/news/{article_id}-") : -len(".html")]:
        return Response(301, [("Location", path)])
    if article_id == site.specials.flaky and site.fault_flaky_first_hit():
        return _html("<html><body><h1>500 Internal Server Error</h1></body></html>", 500)
    article = site.article(article_id)
    html = _article_page(site, article, malformed=article_id == site.specials.malformed)
    encoding = site.encoding(article_id)
    if encoding is None:
        html = html.replace('<meta charset="utf-8">', "", 1)
        response = Response(200, [("Content-Type", "text/html")], html.encode("utf-8"))
    elif encoding == "windows-1251":
        html = html.replace('<meta charset="utf-8">', '<meta charset="windows-1251">', 1)
        body = html.encode("windows-1251", errors="xmlcharrefreplace")
        response = Response(200, [("Content-Type", "text/html; charset=windows-1251")], body)
    else:
        response = _html(html)
    if article_id == site.specials.slow:
        response.delay = SLOW_SECONDS
    return response


def _article_page(site: SampleSite, a: Article, *, printable: bool = False,
                  malformed: bool = False) -> str:
    canonical = site.canonical_url(a.id)
    published = iso_local(a.published)
    modified = iso_local(a.modified)
    image = f"{site.base_url}/img/{a.id}.jpg"
    ld = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": a.title,
        "datePublished": published,
        "dateModified": modified,
        "author": [{"@type": "Person", "name": name} for name in a.authors],
        "articleSection": a.section_name,
        "keywords": list(a.tags),
        "image": image,
        "publisher": {"@type": "Organization", "name": SITE_NAME},
        "mainEntityOfPage": canonical,
    }
    ld_text = json.dumps(ld, ensure_ascii=False).replace("</", "<\\/")
    title = escape(a.title, quote=False)
    lead = escape(a.lead, quote=False)
    visible_date = a.published.astimezone(SITE_TZ).strftime("%d.%m.%Y %H:%M")
    # The redesigned template dropped the structured data too.
    ld_script = "" if site.redesigned() else f'<script type="application/ld+json">{ld_text}</script>'
    head = (
        f'<!DOCTYPE html><html lang="{a.language}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title} | {SITE_NAME}</title>"
        f'<link rel="canonical" href="{escape(canonical)}">'
        f'<meta property="og:title" content="{escape(a.title)}">'
        f'<meta property="og:url" content="{escape(canonical)}">'
        f'<meta property="og:image" content="{image}">'
        f'<meta property="og:type" content="article">'
        f'<meta property="og:site_name" content="{SITE_NAME}">'
        f'<meta name="description" content="{escape(a.lead)}">'
        f'<meta property="article:published_time" content="{published}">'
        f'<meta property="article:modified_time" content="{modified}">'
        f"{ld_script}"
        f"{_head_common()}</head>"
    )
    if malformed:
        authors = "".join(f"<span class=author><b>{escape(n, quote=False)}</span></b> " for n in a.authors)
        section = f"<a class=section href=/section/{a.section_slug}/>{a.section_name}</a>"
    else:
        authors = "".join(f'<span class="author">{escape(n, quote=False)}</span> ' for n in a.authors)
        section = f'<a class="section" href="/section/{a.section_slug}/">{a.section_name}</a>'
    body_parts = []
    if a.source_name:
        body_parts.append(
            '<p class="source-note">The original article was published by the publication '
            f'"{escape(a.source_name, quote=False)}", and the point of view given by the author may '
            "not coincide (in whole or in part) with the point of view of the editorial board.</p>"
        )
    raw_html = dict(a.raw_html)  # the hostile blocks, carried as markup
    for index, text in enumerate(a.paragraphs):
        if index in raw_html:
            body_parts.append(raw_html[index])
        elif malformed:
            body_parts.append(_malformed_paragraph(text, index))
        else:
            body_parts.append(f"<p>{escape(text, quote=False)}</p>")
        if a.ad_after is not None and index + 1 == a.ad_after and index + 1 < len(a.paragraphs):
            ad = banks.AD_TEXTS[a.id % len(banks.AD_TEXTS)]
            body_parts.append(f'<div class="inline-ad">{ad} <a href="/promo">Подробнее</a></div>')
    source_block = (
        f"{escape(a.source_name, quote=False)}, {a.section_name} section / Selected News"
        if a.source_name else f"{SITE_NAME}, {a.section_name} section / Selected News"
    )
    rights_holder = escape(a.source_name or SITE_NAME, quote=False)
    original = (
        f'<a class="original-link" href="{escape(a.source_url)}">Original publication</a>'
        if a.source_url else ""
    )
    close_li = "" if malformed else "</li>"
    tags = "".join(
        f'<li><a class="tag" href="/tag/{_tag_slug(t)}">{escape(t, quote=False)}</a>{close_li}'
        for t in a.tags
    )
    stray = "</div>" if malformed else ""
    article = (
        f'<article class="article" data-id="{a.id}">'
        f'<h1 class="article-title">{title}</h1>'
        f'<div class="article-meta"><time class="published" datetime="{published}">{visible_date}</time> '
        f"{authors}{section} "
        f'<span class="views">{_group(site.views(a.id))}</span> '
        f'<span class="comments-count">{site.comment_count(a.id)}</span></div>'
        f'<figure class="article-image"><img src="/img/{a.id}.jpg" alt="{escape(a.title)}">'
        f'<figcaption class="image-credit">Image source: © {escape(a.image_credit, quote=False)}'
        "</figcaption></figure>"
        f'<div class="article-lead">{lead}</div>{stray}'
        f'<div class="article-body">{"".join(body_parts)}</div>'
        f'<div class="article-source">{source_block}</div>'
        f'<div class="rights">The rights to this material belong to {rights_holder}<br>'
        "The material is placed by the copyright holder in the public domain</div>"
        f"{original}"
        '<div class="disclaimer">InoSMI materials contain ratings exclusively from foreign media '
        "and do not reflect the editorial board's position</div>"
        f'<div class="tags"><span class="tags-label">The news mentions</span><ul>{tags}</ul></div>'
        "</article>"
    )
    if site.redesigned():
        article = _redesigned(article)
    main = (
        f"<main>{article}"
        '<div class="comment-prompt">Do you want to leave a comment? '
        '<a href="/register">Register</a> and/or <a href="/login">Log in</a></div>'
        '<div class="newsletter">ПОДПИСКА НА НОВОСТИ Ежедневная рассылка новостей на '
        "электронный почтовый ящик</div></main>"
    )
    sidebar = "" if printable else _sidebar(site)
    body_class = ' class="print"' if printable else ""
    return f"{head}<body{body_class}>{_nav()}{main}{sidebar}{_FOOTER}</body></html>"


# The redesign: the same content in new markup, so the sample profile's selectors
# (all under <article>) miss and only the fallbacks find a body.
_REDESIGN = (
    ('<article class="article"', '<div class="story"'), ("</article>", "</div>"),
    ('class="article-title"', 'class="story__headline"'), ('class="article-meta"', 'class="story__info"'),
    ('class="published"', 'class="story__date"'), ('class="author"', 'class="story__byline"'),
    ('class="article-lead"', 'class="story__lead"'), ('class="article-body"', 'class="story__text"'),
    ('class="tags"', 'class="story__topics"'),
)


def _redesigned(article: str) -> str:
    for old, new in _REDESIGN:
        article = article.replace(old, new)
    return article


def _malformed_paragraph(text: str, index: int) -> str:
    # Unclosed <p> (the next block closes it) and, in the second paragraph,
    # crossed <i>/<b> nesting; the text nodes still read in order.
    escaped = escape(text, quote=False)
    if index == 1:
        words = escaped.split(" ", 2)
        if len(words) == 3:
            escaped = f"<i>{words[0]} <b>{words[1]}</i> {words[2]}</b>"
    return f"<p>{escaped}\n"


def _tag_slug(tag: str) -> str:
    return slugify(tag)


# ---- feeds -------------------------------------------------------------------


def _rss(site: SampleSite) -> str:
    items = []
    for article_id in [] if site.lists_nothing() else site.listing(1, size=RSS_ITEMS):
        a = site.article(article_id)
        url = site.canonical_url(article_id)
        items.append(
            f"<item><title>{escape(a.title, quote=False)}</title><link>{url}</link>"
            f'<guid isPermaLink="true">{url}</guid>'
            f"<pubDate>{format_datetime(a.published, usegmt=True)}</pubDate>"
            f"<category>{a.section_name}</category>"
            f"<description>{escape(a.lead, quote=False)}</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{SITE_NAME}</title><link>{site.base_url}/</link>"
        f"<description>Latest news</description><language>ru</language>"
        f"<lastBuildDate>{format_datetime(site.now(), usegmt=True)}</lastBuildDate>"
        f'{"".join(items)}</channel></rss>'
    )


def _sitemap_index(site: SampleSite) -> str:
    count = -(-site.max_id() // SITEMAP_URLS)
    lastmod = site.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    entries = "".join(
        f"<sitemap><loc>{site.base_url}/sitemap-{n}.xml</loc><lastmod>{lastmod}</lastmod></sitemap>"
        for n in range(1, count + 1)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</sitemapindex>'
    )


def _sitemap(site: SampleSite, number: int) -> Response:
    first = (number - 1) * SITEMAP_URLS + 1
    if number < 1 or first > site.max_id():
        return _not_found()
    last = min(site.max_id(), number * SITEMAP_URLS)
    urls = "".join(
        f"<url><loc>{site.canonical_url(i)}</loc><lastmod>{site.lastmod(i)}</lastmod></url>"
        for i in range(last, first - 1, -1)
        if site.is_live(i) and not site.lists_nothing()
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
    )
    return _ok(body.encode(), "application/xml; charset=utf-8")


# ---- big faults --------------------------------------------------------------


def _filler(size: int) -> Response:
    """A streamed HTML page of exactly ``size`` bytes."""
    head = b'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Archive</title></head><body>'
    tail = b"</body></html>"
    unit = b"<p>" + b"Archive filler paragraph. " * 40 + b"</p>\n"
    chunk = unit * max(1, 65536 // len(unit))

    def chunks() -> Iterator[bytes]:
        remaining = size - len(head) - len(tail)
        yield head
        while remaining > 0:
            piece = chunk[:remaining]
            remaining -= len(piece)
            yield piece
        yield tail

    return Response(200, [("Content-Type", HTML_UTF8)], chunks(), length=size)


@functools.cache
def _gzip_bomb() -> bytes:
    # gzip allows concatenated members; one 64 MiB member compresses in a
    # fraction of a second and repeating it gives 1 GiB for about 1 MiB sent.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1024 * 1024)
    member = b"".join(compressor.compress(zeros) for _ in range(GZIP_BOMB_MEMBER // len(zeros)))
    member += compressor.flush()
    return member * GZIP_BOMB_MEMBERS

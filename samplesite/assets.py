"""Static page furniture: the inline CSS and JS every page carries, and a tiny image.

Real news pages inline tens of kilobytes of identical CSS/JS; archive-size ratios
(WARC revisits, compression) are measured on pages like that, so the sample
site reproduces the weight. Built once at import; ASCII only, so the same bytes
are valid in UTF-8 and windows-1251 pages.
"""

from __future__ import annotations

import base64

_COMPONENTS = (
    "site-header", "sections", "login", "article", "article-title", "article-meta", "published",
    "author", "section", "views", "comments-count", "article-image", "image-credit",
    "article-lead", "article-body", "source-note", "inline-ad", "article-source", "rights",
    "original-link", "disclaimer", "tags", "tag", "comment-prompt", "newsletter",
    "discussion-sidebar", "discussion-list", "discussion-entry", "entry-time", "entry-comments",
    "entry-title", "article-list", "article-link", "pagination", "footer", "social", "share",
    "banner", "teaser", "most-read", "rubric", "breadcrumbs", "cookie-bar", "search",
)
_COLORS = ("#1a1a1a", "#333", "#555", "#777", "#999", "#c00", "#0a58ca", "#f4f4f4", "#e9ecef")
_BREAKPOINTS = (480, 768, 992, 1200)


def _build_css() -> str:
    rules = [
        (":root{--brand:#c00;--ink:#1a1a1a;--muted:#777;--bg:#fff;--rule:#e9ecef;"
        "--font:'PT Sans',Arial,Helvetica,sans-serif;--serif:'PT Serif',Georgia,serif}"),
        "*,*::before,*::after{box-sizing:border-box}",
        "html{font-size:16px;-webkit-text-size-adjust:100%}",
        ("body{margin:0;font-family:var(--font);color:var(--ink);background:var(--bg);"
        "line-height:1.5}"),
        "a{color:inherit;text-decoration:none}a:hover{color:var(--brand)}",
        "img{max-width:100%;height:auto;display:block}",
    ]
    for index, name in enumerate(_COMPONENTS):
        color = _COLORS[index % len(_COLORS)]
        rules.append(
            f".{name}{{position:relative;margin:0 0 {index % 4 * 4}px;padding:{index % 3 * 2}px "
            f"{index % 5 * 3}px;color:{color};font-size:{12 + index % 6}px;"
            f"line-height:{1.3 + index % 4 / 10:.1f}}}"
        )
        rules.append(f".{name}:hover{{opacity:.92}}.{name}--active{{border-color:{color}}}")
        rules.append(f".{name}__inner{{display:flex;align-items:center;gap:{index % 4 + 4}px}}")
        rules.append(
            f".{name}__title{{font-family:var(--serif);font-weight:700;"
            f"letter-spacing:-.01em}}.{name}__icon{{width:16px;height:16px;fill:currentColor}}"
        )
    for bp in _BREAKPOINTS:
        inner = "".join(
            f".{name}{{padding-left:{bp // 160}px;padding-right:{bp // 160}px;"
            f"max-width:{bp - 20}px}}"
            for name in _COMPONENTS
        )
        rules.append(f"@media (min-width:{bp}px){{{inner}}}")
    for size in range(13):
        px = size * 4
        rules.append(
            f".m-{size}{{margin:{px}px}}.mt-{size}{{margin-top:{px}px}}"
            f".mb-{size}{{margin-bottom:{px}px}}.p-{size}{{padding:{px}px}}"
            f".pt-{size}{{padding-top:{px}px}}.pb-{size}{{padding-bottom:{px}px}}"
        )
    for col in range(1, 13):
        rules.append(f".col-{col}{{flex:0 0 {col / 12 * 100:.4f}%;max-width:{col / 12 * 100:.4f}%}}")
    return "\n".join(rules)


_JS_CORE = r"""
(function(){
  'use strict';
  var w = window, d = document;
  var cfg = w.__SITE_CONFIG__ = w.__SITE_CONFIG__ || {};
  function ready(fn){ if (d.readyState !== 'loading') { fn(); } else { d.addEventListener('DOMContentLoaded', fn); } }
  function qsa(sel, root){ return Array.prototype.slice.call((root || d).querySelectorAll(sel)); }
  function throttle(fn, ms){ var t = 0; return function(){ var n = Date.now(); if (n - t > ms) { t = n; fn.apply(this, arguments); } }; }
  function cookie(name, value, days){
    if (value === undefined) {
      var m = d.cookie.match(new RegExp('(?:^|; )' + name.replace(/([.$?*|{}()\[\]\\\/+^])/g, '\\$1') + '=([^;]*)'));
      return m ? decodeURIComponent(m[1]) : undefined;
    }
    var e = new Date(); e.setTime(e.getTime() + (days || 365) * 864e5);
    d.cookie = name + '=' + encodeURIComponent(value) + '; expires=' + e.toUTCString() + '; path=/; SameSite=Lax';
  }
  function lazyImages(){
    if (!('IntersectionObserver' in w)) { return; }
    var io = new IntersectionObserver(function(entries){
      entries.forEach(function(en){ if (en.isIntersecting) { var img = en.target; if (img.dataset.src) { img.src = img.dataset.src; } io.unobserve(img); } });
    }, {rootMargin: '200px'});
    qsa('img[data-src]').forEach(function(img){ io.observe(img); });
  }
  function stickyHeader(){
    var h = d.querySelector('.site-header'); if (!h) { return; }
    w.addEventListener('scroll', throttle(function(){ h.classList.toggle('site-header--active', w.pageYOffset > 80); }, 100));
  }
  function cookieBar(){
    if (cookie('cb_ok')) { return; }
    var bar = d.createElement('div'); bar.className = 'cookie-bar';
    bar.textContent = 'This site uses cookies.';
    var ok = d.createElement('button'); ok.textContent = 'OK';
    ok.addEventListener('click', function(){ cookie('cb_ok', '1', 365); bar.parentNode.removeChild(bar); });
    bar.appendChild(ok); d.body.appendChild(bar);
  }
  function refreshDiscussion(){
    var link = d.querySelector('.discussion-sidebar .update'); if (!link) { return; }
    link.addEventListener('click', function(ev){
      ev.preventDefault();
      var x = new XMLHttpRequest(); x.open('GET', link.getAttribute('href'));
      x.onload = function(){ if (x.status === 200) { var tmp = d.createElement('div'); tmp.innerHTML = x.responseText; var list = tmp.querySelector('.discussion-list'); var cur = d.querySelector('.discussion-sidebar .discussion-list'); if (list && cur) { cur.innerHTML = list.innerHTML; } } };
      x.send();
    });
  }
  function counters(){
    var id = d.querySelector('.article') && d.querySelector('.article').getAttribute('data-id');
    if (!id || !cfg.counterUrl) { return; }
    var img = new Image(); img.src = cfg.counterUrl + '?id=' + encodeURIComponent(id) + '&r=' + Math.random();
  }
  function share(){
    qsa('.share a').forEach(function(a){ a.addEventListener('click', function(ev){ ev.preventDefault(); w.open(a.href, 'share', 'width=600,height=400'); }); });
  }
  ready(function(){ lazyImages(); stickyHeader(); cookieBar(); refreshDiscussion(); counters(); share(); });
})();
"""


def _build_js() -> str:
    # A config blob like the ad and analytics settings real pages inline.
    slots = ",".join(
        f'{{"id":"slot-{i}","sizes":[[300,250],[728,90]],"refresh":{30 + i},'
        f'"targeting":{{"pos":"{i}","section":"all","kw":["news","world","defence"]}}}}'
        for i in range(40)
    )
    config = (
        'window.__SITE_CONFIG__={"counterUrl":"/counter","lang":"ru","adSlots":['
        + slots + '],"features":{"lazy":true,"sticky":true,"comments":false}};'
    )
    return config + _JS_CORE


SITE_CSS = _build_css()
SITE_JS = _build_js()

# A 1x1 JPEG: enough for an <img> that resolves; crawlers do not need image bytes.
TINY_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////"
    "////////////////////////////////////wgALCAABAAEBAREA/8QAFBABAAAAAAAAAAAAAAAAAAAAAP/a"
    "AAgBAQABPxA="
)

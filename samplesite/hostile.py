"""Hostile content for ``SampleSite(..., hostile=True)``: script, handlers and broken markup.

A web interface that shows what newsvault archived must render all of it
inert. Every payload sets the same hook, ``window.__nvHostile``, so a browser
test can load a page and check that the hook stays unset.

- Headlines, leads and discussion titles carry markup as *text*: the pages
  escape it everywhere (``<title>``, ``<h1>``, ``<meta>``, listings, JSON-LD),
  so a crawl extracts the literal characters ``<script>...``.
- Article bodies carry markup as *HTML*: a real ``<script>``, a
  ``javascript:`` link, event-handler attributes and broken markup, which a
  careless archive replay would execute. Each inserted block has a known text
  (what a block-based extractor reads), part of the article's ground truth.
"""

from __future__ import annotations

HOOK = "window.__nvHostile"
SET_HOOK = f"{HOOK}=1"

# Offsets from the article count N, like the other special roles: free slots
# on the first front page at tick 0 (N-1..N-4, N-6, N-8, N-10, N-12 are taken).
ARTICLE_OFFSETS = (5, 7)

# Appended to the drawn headline (one suffix per hostile article, in id order).
HEADLINE_SUFFIXES = (
    f' <script>{SET_HOOK};alert(1)</script><img src=x onerror="{SET_HOOK}">',
    f""" '"><svg onload="{SET_HOOK}"> <script>{SET_HOOK};alert(1)</script>""",
)
# Appended to the drawn lead (text, escaped on the page like every lead).
LEAD_SUFFIX = f' <b onmouseover="{SET_HOOK}">Hover</b> <img src=x onerror="{SET_HOOK}">'


def body_blocks(article_id: int) -> tuple[tuple[str, str], ...]:
    """(raw HTML, extracted text) of the blocks inserted into a hostile article's body.

    Inserted after the first, second and third generated paragraphs; the last
    one (broken markup ending in a stray ``</div>``) goes after the last
    paragraph, where closing the body early loses nothing.
    """
    script_link = (
        f"<script>{SET_HOOK}</script>"
        f'<p>Readers can <a href="javascript:{SET_HOOK}">open the full dossier</a> '
        "on the archive page.</p>"
    )
    handlers = (
        f'<div class="hostile-note" onmouseover="{SET_HOOK}">'
        f'<p onclick="{SET_HOOK}">Move the pointer over this note to see the details.</p>'
        f'<img src="/img/{article_id}.jpg" onload="{SET_HOOK}" alt="">'
        f'<img src="x" onerror="{SET_HOOK}" alt="">'
        f'<svg onload="{SET_HOOK}"></svg></div>'
    )
    quoted = (
        "<p>The report quoted the payload "
        f"<code>&lt;script&gt;{SET_HOOK}&lt;/script&gt;</code> verbatim.</p>"
    )
    broken = (
        "<p>This paragraph is never closed, <b>nor is this bold text, "
        "<i>nor this italic one.</span></div>"
    )
    return (
        (script_link, "Readers can open the full dossier on the archive page."),
        (handlers, "Move the pointer over this note to see the details."),
        (quoted, f"The report quoted the payload <script>{SET_HOOK}</script> verbatim."),
        (broken, "This paragraph is never closed, nor is this bold text, nor this italic one."),
    )


# Planted discussion threads: ids 1-3 always exist (at tick 0 when threads >= 3)
# and are never replies themselves. Their titles replace the drawn ones.
THREAD_IDS = (1, 2, 3)
THREAD_TITLES = (
    f"Обсуждение: <script>{SET_HOOK};alert(1)</script>",
    f'Opinion " onmouseover="{SET_HOOK}" data-x="',
    f'javascript:{SET_HOOK}//<img src=x onerror="{SET_HOOK}">',
)

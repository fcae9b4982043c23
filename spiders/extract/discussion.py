"""Reading discussion-list entries (see docs/architecture.md, "Raw items")."""

from __future__ import annotations

from typing import Any

from parsel import Selector

from spiders.extract.select import absolute, first_value, select
from spiders.profile import SelectorSpec, SiteProfile

# Used when a profile names the entry element but not its parts.
_DEFAULT_FIELDS: dict[str, list[SelectorSpec]] = {
    "title": [SelectorSpec(css="a")],
    "thread_url": [SelectorSpec(css="a", attr="href")],
    "last_activity_raw": [SelectorSpec(css="time"), SelectorSpec(css="time", attr="datetime")],
    "comment_count": [],
}


def extract_entries(root: Selector, profile: SiteProfile, list_url: str, page_url: str) -> list[dict[str, Any]]:
    """The entries of one list page, in page order, without ``position`` and times."""
    config = profile.discussions
    if config is None:
        return []
    entries: list[dict[str, Any]] = []
    for spec in config.entry:
        for node in select(root, spec):
            fields = {name: first_value(node, config.fields.get(name) or default) for name, default in _DEFAULT_FIELDS.items()}
            if not fields["title"] and not fields["thread_url"]:
                continue
            entries.append(
                {
                    "type": "discussion",
                    "site": profile.name,
                    "list_url": list_url,
                    "thread_url": absolute(fields["thread_url"], page_url),
                    "title": fields["title"],
                    "last_activity_raw": fields["last_activity_raw"],
                    "comment_count": fields["comment_count"],
                }
            )
        if entries:
            break
    return entries

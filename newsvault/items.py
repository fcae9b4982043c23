"""Clean item types (what snapshots store) and their published JSON Schemas."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Literal, NotRequired, TypedDict

ItemKind = Literal["article", "discussion"]
Change = Literal["new", "updated", "unchanged"]


class ArticleItem(TypedDict):
    """A clean article; see docs/items.md for each field."""

    type: Literal["article"]
    schema_version: int
    site: str
    url: str
    canonical_url: str
    title: str
    lead: str
    body: str
    authors: list[str]
    published_at: str | None
    published_raw: str | None
    modified_at: str | None
    section: str | None
    tags: list[str]
    image_url: str | None
    image_credit: str | None
    source_name: str | None
    source_url: str | None
    views: int | None
    comment_count: int | None
    language: str | None
    fetched_at: str
    content_hash: str
    change: NotRequired[Change]
    near_duplicate_of: NotRequired[str]


class DuplicateArticleItem(TypedDict):
    """Slim record for an article whose body is identical to one at another canonical URL."""

    type: Literal["article"]
    schema_version: int
    site: str
    url: str
    canonical_url: str
    title: str
    duplicate_of: str
    content_hash: str
    fetched_at: str
    change: NotRequired[Change]


class DiscussionItem(TypedDict):
    """A clean discussion-list entry; see docs/items.md."""

    type: Literal["discussion"]
    schema_version: int
    site: str
    list_url: str | None
    position: int | None
    thread_url: str
    title: str
    last_activity_at: str
    last_activity_raw: str | None
    comment_count: int | None
    is_reply: bool
    reply_to_title: str | None
    fetched_at: str
    change: NotRequired[Change]


ITEM_KINDS: tuple[ItemKind, ...] = ("article", "discussion")


@cache
def _schema_text(kind: str) -> str:
    return (
        resources.files("newsvault").joinpath("schemas", f"{kind}.schema.json").read_text("utf-8")
    )


def item_json_schema(kind: ItemKind) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one item kind, as published in newsvault/schemas/."""
    if kind not in ITEM_KINDS:
        raise ValueError(f"unknown item kind {kind!r}; expected 'article' or 'discussion'")
    schema: dict[str, Any] = json.loads(_schema_text(kind))
    return schema

"""What changed between two versions of an article: fields, then the body by paragraph and by word.

Each change is *substantive* or *minor*: minor when the two sides differ only
in whitespace, punctuation or letter case (a typo fix of a comma is not a
rewrite). Counters are never part of a version, so never of a diff.
"""

from __future__ import annotations

import difflib
import html
import re
import unicodedata
from typing import Any

from catalog.query import Version

# The fields compared one by one (the body is compared paragraph by paragraph).
DIFF_FIELDS = (
    "title", "lead", "authors", "tags", "section", "published_at", "modified_at",
    "image_url", "image_credit", "source_name", "source_url",
)
_WORDS = re.compile(r"\s+|[^\w\s]|\w+", re.UNICODE)


def _normalised(value: Any) -> str:
    """Letters and digits only, case-folded: what a minor change leaves the same."""
    text = " ".join(value) if isinstance(value, list) else str(value or "")
    text = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in text if ch.isalnum())


def classify(old: Any, new: Any) -> str:
    """``minor`` when only whitespace, punctuation or letter case differ, else ``substantive``."""
    return "minor" if _normalised(old) == _normalised(new) else "substantive"


def changed_fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Names of the fields (and ``body``) whose values differ."""
    return [name for name in (*DIFF_FIELDS, "body") if (old.get(name) or None) != (new.get(name) or None)]


def paragraphs(body: str | None) -> list[str]:
    return [p for p in (body or "").split("\n\n") if p.strip()]


def _word_diff(old: str, new: str) -> list[dict[str, str]]:
    """The words of a changed paragraph: runs of equal, deleted and inserted tokens."""
    a, b = _WORDS.findall(old), _WORDS.findall(new)
    out: list[dict[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append({"op": "equal", "text": "".join(a[i1:i2])})
            continue
        if i2 > i1:
            out.append({"op": "delete", "text": "".join(a[i1:i2])})
        if j2 > j1:
            out.append({"op": "insert", "text": "".join(b[j1:j2])})
    return out


def body_diff(old: str | None, new: str | None) -> list[dict[str, Any]]:
    """Paragraph operations: equal, delete, insert, and replace with a word-level diff inside."""
    a, b = paragraphs(old), paragraphs(new)
    ops: list[dict[str, Any]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            ops.extend({"op": "equal", "old_index": i1 + k, "new_index": j1 + k} for k in range(i2 - i1))
        elif op == "delete":
            ops.extend({"op": "delete", "old_index": k, "text": a[k], "kind": "substantive"} for k in range(i1, i2))
        elif op == "insert":
            ops.extend({"op": "insert", "new_index": k, "text": b[k], "kind": "substantive"} for k in range(j1, j2))
        else:
            pairs = min(i2 - i1, j2 - j1)
            for k in range(pairs):
                ops.append({"op": "replace", "old_index": i1 + k, "new_index": j1 + k, "old": a[i1 + k],
                            "new": b[j1 + k], "kind": classify(a[i1 + k], b[j1 + k]),
                            "words": _word_diff(a[i1 + k], b[j1 + k])})
            ops.extend({"op": "delete", "old_index": k, "text": a[k], "kind": "substantive"}
                       for k in range(i1 + pairs, i2))
            ops.extend({"op": "insert", "new_index": k, "text": b[k], "kind": "substantive"}
                       for k in range(j1 + pairs, j2))
    return ops


def diff(old: Version, new: Version) -> dict[str, Any]:
    """The diff of two versions of one article, as JSON-ready data."""
    fields = []
    for name in DIFF_FIELDS:
        before, after = old.fields.get(name), new.fields.get(name)
        if (before or None) != (after or None):
            fields.append({"field": name, "from": before, "to": after, "kind": classify(before, after)})
    body = body_diff(old.fields.get("body"), new.fields.get("body"))
    changed = [op for op in body if op["op"] != "equal"]
    kinds = [f["kind"] for f in fields] + [op["kind"] for op in changed]
    return {
        "canonical_url": new.canonical_url,
        "from": {"version": old.number, "first_seen": old.first_seen, "snapshots": old.snapshots},
        "to": {"version": new.number, "first_seen": new.first_seen, "snapshots": new.snapshots},
        "kind": "none" if not kinds else ("substantive" if "substantive" in kinds else "minor"),
        "fields": fields,
        "body": {"changes": len(changed), "operations": body},
    }


# --- rendering -----------------------------------------------------------------------
def to_text(result: dict[str, Any]) -> str:
    """A reader's diff: changed fields, then changed paragraphs with [-deleted-]{+inserted+} words."""
    lines = [(f"{result['canonical_url']}: version {result['from']['version']} -> {result['to']['version']} "
             f"({result['kind']})")]
    for change in result["fields"]:
        lines.append(f"  {change['field']} ({change['kind']}): {change['from']!r} -> {change['to']!r}")
    for op in result["body"]["operations"]:
        if op["op"] == "delete":
            lines.append(f"  - paragraph {op['old_index'] + 1}: {op['text']}")
        elif op["op"] == "insert":
            lines.append(f"  + paragraph {op['new_index'] + 1}: {op['text']}")
        elif op["op"] == "replace":
            words = "".join(w["text"] if w["op"] == "equal" else
                            (f"[-{w['text']}-]" if w["op"] == "delete" else f"{{+{w['text']}+}}") for w in op["words"])
            lines.append(f"  ~ paragraph {op['new_index'] + 1} ({op['kind']}): {words}")
    if len(lines) == 1:
        lines.append("  no change")
    return "\n".join(lines) + "\n"


def to_html(result: dict[str, Any]) -> str:
    """A self-contained HTML fragment; archived text is escaped, never markup."""
    esc = html.escape
    parts = [(f'<div class="nv-diff nv-{esc(result["kind"])}"><h2>{esc(result["canonical_url"])}: version '
             f'{result["from"]["version"]} &rarr; {result["to"]["version"]}</h2>')]
    if result["fields"]:
        parts.append("<table class=\"nv-fields\">")
        for change in result["fields"]:
            parts.append(f'<tr class="nv-{esc(change["kind"])}"><th>{esc(change["field"])}</th>'
                         f'<td><del>{esc(str(change["from"]))}</del></td><td><ins>{esc(str(change["to"]))}</ins></td></tr>')
        parts.append("</table>")
    for op in result["body"]["operations"]:
        if op["op"] == "delete":
            parts.append(f'<p class="nv-substantive"><del>{esc(op["text"])}</del></p>')
        elif op["op"] == "insert":
            parts.append(f'<p class="nv-substantive"><ins>{esc(op["text"])}</ins></p>')
        elif op["op"] == "replace":
            words = "".join(esc(w["text"]) if w["op"] == "equal" else
                            (f"<del>{esc(w['text'])}</del>" if w["op"] == "delete" else f"<ins>{esc(w['text'])}</ins>")
                            for w in op["words"])
            parts.append(f'<p class="nv-{esc(op["kind"])}">{words}</p>')
    parts.append("</div>")
    return "\n".join(parts) + "\n"

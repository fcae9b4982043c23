"""Regular expressions from site profiles, compiled with RE2: matching time is linear, never catastrophic.

A profile's patterns (article and discussion URL patterns, furniture to
strip, reply titles) run on text the site controls. With Python's
backtracking engine one careless pattern (``/news/\\d+-(a+)+\\.html``) and one
hostile link stall a crawl for minutes at 100% CPU, inside C code where not
even SIGTERM is handled. RE2 (``google-re2``) matches in time linear in the
input; it has no backreferences or lookaround, and a profile that uses them is
refused at load with the pattern and RE2's reason.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

import re2


class Pattern(Protocol):
    """What callers use of a compiled pattern (``re.Pattern`` has it too)."""

    pattern: str

    def search(self, text: str) -> Any: ...

    def match(self, text: str) -> Any: ...

    def sub(self, repl: str, text: str) -> str: ...


class SafePattern:
    """An RE2 pattern that keeps its profile source in ``.pattern`` (flags go inline)."""

    __slots__ = ("_compiled", "pattern")

    def __init__(self, source: str, *, ignore_case: bool = False, multiline: bool = False) -> None:
        self.pattern = source
        flags = ("i" if ignore_case else "") + ("m" if multiline else "")
        options = re2.Options()
        options.log_errors = False  # the reason goes into our error, not to stderr
        try:
            self._compiled = re2.compile(f"(?{flags}){source}" if flags else source, options)
        except re2.error as exc:
            reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            raise ValueError(f"bad regex {source!r}: {reason} (patterns run on RE2: no backreferences or lookaround)") from None

    def search(self, text: str) -> Any:
        return self._compiled.search(text)

    def match(self, text: str) -> Any:
        return self._compiled.match(text)

    def sub(self, repl: str, text: str) -> str:
        return str(self._compiled.sub(repl, text))

    def __repr__(self) -> str:
        return f"SafePattern({self.pattern!r})"


@functools.lru_cache(maxsize=1024)
def compile_safe(source: str, *, ignore_case: bool = False, multiline: bool = False) -> SafePattern:
    """The RE2 pattern for ``source`` (cached); ValueError naming the pattern if RE2 cannot take it."""
    return SafePattern(source, ignore_case=ignore_case, multiline=multiline)


def check_safe(source: str) -> str:
    """``source`` if RE2 takes it (the profile loader's check), else ValueError."""
    compile_safe(source)
    return source

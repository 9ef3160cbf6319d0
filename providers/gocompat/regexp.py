"""Go's regexp package (RE2 through google-re2; escapes Go refuses are refused)."""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

from providers.gocompat._base import GoError

# --- regexp (RE2) ---------------------------------------------------------------------------


@cache
def _re2() -> tuple[Any, Any]:
    """google-re2 and its options, imported with the first pattern compiled (~1.5 ms of
    start-up otherwise: `analysisd lint` of a template without a pattern needs none)."""
    import re2  # type: ignore[import-untyped]

    options = re2.Options()
    options.log_errors = False  # errors are raised, never printed to stderr
    return re2, options


def _go_rejects(pattern: str) -> str | None:
    """Escapes C++ RE2 accepts but Go's regexp/syntax refuses."""
    index = 0
    while index < len(pattern):
        if pattern[index] == "\\" and index + 1 < len(pattern):
            if pattern[index + 1] == "C":
                return "invalid escape sequence: `\\C`"
            index += 2
            continue
        index += 1
    return None


@lru_cache(maxsize=512)
def compile_regexp(pattern: str) -> Any:
    """regexp.Compile: a compiled RE2 pattern, or GoError('error parsing regexp: ...')."""
    problem = _go_rejects(pattern)
    if problem is not None:
        raise GoError(f"error parsing regexp: {problem}")
    re2, options = _re2()
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        text = exc.args[0] if exc.args else str(exc)
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        raise GoError(f"error parsing regexp: {text}") from None


def regexp_match(pattern: str, text: str) -> bool:
    """regexp.MatchString: does the pattern match anywhere in text (unanchored)."""
    return compile_regexp(pattern).search(text) is not None

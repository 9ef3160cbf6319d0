"""Go duration strings ("1m30s", "1.5h", "300ms"): Argo's interval and initialDelay format.

Parsed as Go's time.ParseDuration does (same accepted forms, same error texts), in
integer nanoseconds so "1.1s" is exactly 1_100_000_000. There is no "d" unit.
"""

from __future__ import annotations

import json
from datetime import timedelta

from analysisd import AnalysisdError

_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_MAX_NS = (1 << 63) - 1
_DIGITS = "0123456789"
# Go's leadingInt overflows past 2^63 (19 digits); more digits are invalid there too.
_MAX_WHOLE_DIGITS = 19
# Go's leadingFraction stops adding digits once more cannot change an int64; past this
# many the fraction is truncated here as well (and 5,000 digits never reach int()).
_MAX_FRACTION_DIGITS = 30


class DurationError(AnalysisdError, ValueError):
    pass


def _quote(text: str) -> str:
    # Go's strconv.Quote for the texts that matter here (ASCII, quotes, backslashes);
    # a text past 100 characters is cut (Go would echo a 5,000-digit duration whole).
    if len(text) > 100:
        return json.dumps(text[:100], ensure_ascii=False)[:-1] + '..."'
    return json.dumps(text, ensure_ascii=False)


def _leading_digits(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _DIGITS:
        pos += 1
    return pos


def parse_duration_ns(text: str) -> int:
    """Nanoseconds in a Go duration string; raises DurationError as Go would refuse it."""
    invalid = DurationError(f"time: invalid duration {_quote(text)}")
    pos, negative = 0, False
    if text[:1] in ("-", "+"):
        negative = text[0] == "-"
        pos = 1
    if text[pos:] == "0":
        return 0
    if pos == len(text):
        raise invalid
    total = 0
    while pos < len(text):
        if text[pos] not in _DIGITS and text[pos] != ".":
            raise invalid
        end = _leading_digits(text, pos)
        digits = text[pos:end].lstrip("0")
        if len(digits) > _MAX_WHOLE_DIGITS:
            raise invalid  # overflows int64, as in Go
        whole = int(digits or "0")
        had_whole = end > pos
        fraction, had_fraction = "", False
        pos = end
        if pos < len(text) and text[pos] == ".":
            end = _leading_digits(text, pos + 1)
            fraction, had_fraction = text[pos + 1 : end][:_MAX_FRACTION_DIGITS], end > pos + 1
            pos = end
        if not had_whole and not had_fraction:
            raise invalid
        unit_end = pos
        while unit_end < len(text) and text[unit_end] not in _DIGITS and text[unit_end] != ".":
            unit_end += 1
        if unit_end == pos:
            raise DurationError(f"time: missing unit in duration {_quote(text)}")
        unit = text[pos:unit_end]
        if unit not in _UNITS_NS:
            raise DurationError(f"time: unknown unit {_quote(unit)} in duration {_quote(text)}")
        scale = _UNITS_NS[unit]
        part = whole * scale
        if fraction:
            # Go truncates the fraction's contribution toward zero.
            part += int(fraction) * scale // 10 ** len(fraction)
        total += part
        if total > _MAX_NS + (1 if negative else 0):
            raise invalid
        pos = unit_end
    return -total if negative else total


def parse_duration(text: str) -> timedelta:
    """A Go duration string as a timedelta (microsecond resolution)."""
    return timedelta(microseconds=parse_duration_ns(text) / 1000)


def parse_seconds(text: str) -> float:
    """A Go duration string in seconds."""
    return parse_duration_ns(text) / 1e9

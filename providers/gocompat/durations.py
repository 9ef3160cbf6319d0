"""time.ParseDuration, ported exactly (leadingInt, leadingFraction, float64 fractions)."""

from __future__ import annotations

import json

from providers.gocompat._base import INT64_MAX, GoError

# --- time.ParseDuration -----------------------------------------------------------------------

_DURATION_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # U+00B5 micro sign
    "\u03bcs": 1_000,  # U+03BC Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DIGITS = "0123456789"


def _quote_duration(text: str) -> str:
    # strconv.Quote as time's errors use it; a text past 100 characters is cut (Go would
    # echo a 5,000-digit duration whole).
    if len(text) > 100:
        return json.dumps(text[:100], ensure_ascii=False)[:-1] + '..."'
    return json.dumps(text, ensure_ascii=False)


def _leading_int(text: str, pos: int) -> tuple[int, int] | None:
    """time.leadingInt: (value, end), None when it overflows 1<<63."""
    value = 0
    while pos < len(text) and text[pos] in _DIGITS:
        if value > (1 << 63) // 10:
            return None
        value = value * 10 + ord(text[pos]) - 48
        if value > 1 << 63:
            return None
        pos += 1
    return value, pos


def _leading_fraction(text: str, pos: int) -> tuple[int, float, int]:
    """time.leadingFraction: (digits as an int, 10**count as a float64, end); digits past
    what an int64 holds are skipped."""
    value, scale, overflow = 0, 1.0, False
    while pos < len(text) and text[pos] in _DIGITS:
        if not overflow:
            if value > INT64_MAX // 10:
                overflow = True
            else:
                following = value * 10 + ord(text[pos]) - 48
                if following > 1 << 63:
                    overflow = True
                else:
                    value = following
                    scale *= 10
        pos += 1
    return value, scale, pos


def parse_duration_ns(text: str) -> int:
    """time.ParseDuration in integer nanoseconds, ported: signs, us/\u00b5s/\u03bcs,
    fractions added as float64(f) * (float64(unit) / scale) as Go does, int64 overflow;
    GoError with Go's message."""
    invalid = GoError(f"time: invalid duration {_quote_duration(text)}")
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
        start = pos
        leading = _leading_int(text, pos)
        if leading is None:
            raise invalid
        whole, pos = leading
        had_whole = pos != start
        fraction, scale, had_fraction = 0, 1.0, False
        if pos < len(text) and text[pos] == ".":
            after = pos + 1
            fraction, scale, pos = _leading_fraction(text, after)
            had_fraction = pos != after
        if not had_whole and not had_fraction:
            raise invalid
        unit_end = pos
        while unit_end < len(text) and text[unit_end] not in _DIGITS and text[unit_end] != ".":
            unit_end += 1
        if unit_end == pos:
            raise GoError(f"time: missing unit in duration {_quote_duration(text)}")
        unit = text[pos:unit_end]
        scale_ns = _DURATION_UNITS_NS.get(unit)
        if scale_ns is None:
            raise GoError(
                f"time: unknown unit {_quote_duration(unit)} in duration {_quote_duration(text)}"
            )
        if whole > (1 << 63) // scale_ns:
            raise invalid
        part = whole * scale_ns
        if fraction > 0:
            # float64 is what Go uses here (nanosecond-accurate for fractions of hours)
            part += int(float(fraction) * (float(scale_ns) / scale))
            if part > 1 << 63:
                raise invalid
        total += part
        if total > 1 << 63:
            raise invalid
        pos = unit_end
    if negative:
        return -total
    if total > INT64_MAX:
        raise invalid
    return total


def parse_duration_seconds(text: str) -> float:
    """time.ParseDuration(text).Seconds()."""
    return parse_duration_ns(text) / 1e9

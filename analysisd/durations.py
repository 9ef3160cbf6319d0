"""Go duration strings ("1m30s", "1.5h", "300ms"): Argo's interval and initialDelay format.

There is no "d" unit, as in Go's time.ParseDuration.
"""

from __future__ import annotations

import re
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
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_MAX_NS = (1 << 63) - 1


class DurationError(AnalysisdError, ValueError):
    pass


def parse_duration_ns(text: str) -> int:
    """Nanoseconds in a Go duration string; raises DurationError as Go would refuse it."""
    original = text
    sign = 1
    if text and text[0] in "+-":
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        raise DurationError(f'time: invalid duration "{original}"')
    total = 0.0
    pos = 0
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None:
            if re.match(r"(\d+\.?\d*|\.\d+)$", text[pos:]):
                raise DurationError(f'time: missing unit in duration "{original}"')
            unit = re.match(r"[\d.]*([^\d.]*)", text[pos:])
            found = unit.group(1) if unit else ""
            if found and re.match(r"[\d.]", text[pos]):
                raise DurationError(f'time: unknown unit "{found}" in duration "{original}"')
            raise DurationError(f'time: invalid duration "{original}"')
        number, unit_name = match.groups()
        total += float(number) * _UNITS_NS[unit_name]
        pos = match.end()
    if total > _MAX_NS:
        raise DurationError(f'time: invalid duration "{original}"')
    return sign * round(total)


def parse_duration(text: str) -> timedelta:
    """A Go duration string as a timedelta (microsecond resolution)."""
    return timedelta(microseconds=parse_duration_ns(text) / 1000)


def parse_seconds(text: str) -> float:
    """A Go duration string in seconds."""
    return parse_duration_ns(text) / 1e9

"""Go duration strings ("1m30s", "1.5h", "300ms"): Argo's interval and initialDelay format.

Parsed by providers.gocompat.parse_duration_ns, the one copy of Go's time.ParseDuration
(same accepted forms, same error texts), in integer nanoseconds so "1.1s" is exactly
1_100_000_000. There is no "d" unit. This module only gives it the error type of the spec.
"""

from __future__ import annotations

from datetime import timedelta

from analysisd import AnalysisdError
from providers import gocompat


class DurationError(AnalysisdError, ValueError):
    pass


def parse_duration_ns(text: str) -> int:
    """Nanoseconds in a Go duration string; raises DurationError as Go would refuse it."""
    try:
        return gocompat.parse_duration_ns(text)
    except gocompat.GoError as exc:
        raise DurationError(str(exc)) from None


def parse_duration(text: str) -> timedelta:
    """A Go duration string as a timedelta (microsecond resolution)."""
    return timedelta(microseconds=parse_duration_ns(text) / 1000)


def parse_seconds(text: str) -> float:
    """A Go duration string in seconds."""
    return parse_duration_ns(text) / 1e9

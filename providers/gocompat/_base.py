"""The error type and int64 bounds every part of gocompat shares."""

from __future__ import annotations

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


class GoError(ValueError):
    """A Go function returned an error; str() is Go's message."""

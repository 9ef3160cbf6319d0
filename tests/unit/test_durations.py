"""Go time.ParseDuration semantics for interval / initialDelay."""

from __future__ import annotations

from datetime import timedelta

import pytest

from analysisd.durations import DurationError, parse_duration, parse_duration_ns, parse_seconds

S = 1_000_000_000


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("+0", 0),
        ("-0", 0),
        ("5s", 5 * S),
        ("30s", 30 * S),
        ("1m30s", 90 * S),
        ("1h", 3600 * S),
        ("1.5h", 5400 * S),
        ("1.1s", 1_100_000_000),
        (".5s", S // 2),
        ("5.s", 5 * S),
        ("300ms", 300_000_000),
        ("10us", 10_000),
        ("10µs", 10_000),
        ("10μs", 10_000),
        ("7ns", 7),
        ("-1m", -60 * S),
        ("+2m", 120 * S),
        ("1h2m3s4ms", 3723 * S + 4_000_000),
        ("2562047h47m16.854775807s", (1 << 63) - 1),
    ],
)
def test_parses_like_go(text: str, ns: int) -> None:
    assert parse_duration_ns(text) == ns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("x", 'time: invalid duration "x"'),
        (".", 'time: invalid duration "."'),
        ("-", 'time: invalid duration "-"'),
        ("1", 'time: missing unit in duration "1"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        ("60s-typo", 'time: unknown unit "s-typo" in duration "60s-typo"'),
        ("5 m", 'time: unknown unit " m" in duration "5 m"'),
        ("2562047h47m16.854775808s", 'time: invalid duration "2562047h47m16.854775808s"'),
        ("{{args.interval}}", 'time: invalid duration "{{args.interval}}"'),
    ],
)
def test_refuses_like_go(text: str, message: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration_ns(text)
    assert str(caught.value) == message


def test_duration_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_duration_ns("soon")


def test_timedelta_and_seconds_views_agree() -> None:
    assert parse_duration("1m30s") == timedelta(seconds=90)
    assert parse_seconds("250ms") == 0.25

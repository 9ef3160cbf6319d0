"""Retry-After parsing and the HTTP status -> ProviderError mapping the limits rely on."""

from __future__ import annotations

import email.utils

import aiohttp
import pytest

from providers.base import (
    ProviderConnectionError,
    ProviderHTTPError,
    ProviderRateLimited,
    ProviderTimeout,
)
from providers.http import map_client_error, parse_retry_after, raise_for_response


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    date = email.utils.formatdate(1_000_030.0, usegmt=True)
    assert parse_retry_after(date, now=1_000_000.0) == 30.0
    assert parse_retry_after(date, now=2_000_000.0) == 0.0  # in the past: retry now


@pytest.mark.parametrize("bad", [None, "", "soon", "nan"])
def test_unusable_retry_after_is_none(bad: str | None) -> None:
    assert parse_retry_after(bad) is None


def test_2xx_passes() -> None:
    raise_for_response("web", "http://x", 204, {}, b"")


def test_429_is_rate_limited_with_retry_after_kept() -> None:
    with pytest.raises(ProviderRateLimited) as caught:
        raise_for_response("datadog", "https://api", 429, {"retry-after": "3"}, b"too many")
    assert caught.value.retry_after == 3.0 and caught.value.status == 429
    assert str(caught.value) == (
        "datadog at https://api is rate limiting (HTTP 429, retry after 3s): too many"
    )


def test_503_is_rate_limited_only_with_retry_after() -> None:
    with pytest.raises(ProviderRateLimited):
        raise_for_response("web", "http://x", 503, {"Retry-After": "1"}, b"")
    with pytest.raises(ProviderHTTPError) as caught:
        raise_for_response("web", "http://x", 503, {}, b"")
    assert not isinstance(caught.value, ProviderRateLimited)
    assert str(caught.value) == "web at http://x answered HTTP 503 (empty body)"


def test_long_bodies_are_truncated_in_messages() -> None:
    with pytest.raises(ProviderHTTPError) as caught:
        raise_for_response("web", "http://x", 500, {}, b"e" * 5000)
    assert len(str(caught.value)) < 700 and "more characters" in str(caught.value)


def test_client_errors_map_to_timeout_and_connection_errors() -> None:
    timeout = map_client_error(TimeoutError(), "web", "http://x/y", 2.0)
    assert isinstance(timeout, ProviderTimeout)
    assert str(timeout) == "web at http://x/y did not answer within 2s"
    refused = map_client_error(ConnectionRefusedError(111, "Connection refused"), "web", "u", 1)
    assert isinstance(refused, ProviderConnectionError) and "Connection refused" in str(refused)
    closed = map_client_error(aiohttp.ServerDisconnectedError(), "web", "u", 1)
    assert "closed the connection" in str(closed)

"""Datadog failures: every one is a ProviderError a user can act on, never carrying a key."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator

import pytest

from providers.base import (
    ProviderAuthError,
    ProviderBadBody,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderRateLimited,
    ProviderTimeout,
)
from providers.datadog import DatadogProvider
from tests.rigs.datadog_fake import Canned, DatadogFake

API_KEY = "dd-api-key-0123456789abcdef"
APP_KEY = "dd-app-key-fedcba9876543210"
V1 = {"query": "avg:errors{app:demo}"}
V2 = {"apiVersion": "v2", "query": "avg:errors{app:demo}"}


@pytest.fixture
async def fake() -> AsyncIterator[DatadogFake]:
    async with DatadogFake(api_key=API_KEY, app_key=APP_KEY) as server:
        yield server


def make_provider(address: str, api_key: str = API_KEY, app_key: str = APP_KEY) -> DatadogProvider:
    values = {"api-key": api_key, "app-key": app_key, "address": address}
    return DatadogProvider.create({}, lambda _secret, key: values.get(key))


@pytest.fixture
async def provider(fake: DatadogFake) -> AsyncIterator[DatadogProvider]:
    instance = make_provider(fake.url)
    try:
        yield instance
    finally:
        await instance.aclose()


def assert_no_keys(err: BaseException) -> None:
    text = f"{err} {err!r} {getattr(err, 'body', '')}"
    assert API_KEY not in text and APP_KEY not in text


@pytest.mark.parametrize("config", [V1, V2], ids=["v1", "v2"])
async def test_wrong_keys_are_an_auth_error(fake: DatadogFake, config: dict[str, str]) -> None:
    instance = make_provider(fake.url, api_key="wrong-api-key-value")
    try:
        with pytest.raises(ProviderAuthError) as caught:
            await instance.measure(config)
    finally:
        await instance.aclose()
    message = str(caught.value)
    assert "403" in message and "Forbidden" in message and fake.url in message
    assert "wrong-api-key-value" not in message
    assert_no_keys(caught.value)


def test_missing_keys_are_an_auth_error_naming_the_secret() -> None:
    with pytest.raises(ProviderAuthError, match="'datadog'"):
        DatadogProvider.create({}, lambda _secret, _key: None)


@pytest.mark.parametrize("config", [V1, V2], ids=["v1", "v2"])
async def test_429_is_rate_limited_with_reset_seconds(
    fake: DatadogFake, provider: DatadogProvider, config: dict[str, str]
) -> None:
    fake.script.append(
        Canned(429, '{"errors": ["Rate limit exceeded"]}', {"X-RateLimit-Reset": "17"})
    )
    with pytest.raises(ProviderRateLimited) as caught:
        await provider.measure(config)
    assert caught.value.retry_after == 17.0
    assert caught.value.status == 429
    assert "Rate limit exceeded" in str(caught.value)
    assert len(fake.requests) == 1  # the client's own retries stay off
    assert_no_keys(caught.value)


async def test_5xx_is_an_http_error_with_status_and_body(
    fake: DatadogFake, provider: DatadogProvider
) -> None:
    fake.script.append(Canned(503, '{"errors": ["Service Unavailable: upstream gone"]}'))
    with pytest.raises(ProviderHTTPError) as caught:
        await provider.measure(V2)
    err = caught.value
    assert not isinstance(err, ProviderRateLimited)
    assert err.status == 503
    message = str(err)
    assert "datadog" in message and fake.url in message and "/api/v2/query/scalar" in message
    assert "avg:errors{app:demo}" in message and "upstream gone" in message
    assert len(fake.requests) == 1
    assert_no_keys(err)


async def test_bad_request_shows_datadog_errors(
    fake: DatadogFake, provider: DatadogProvider
) -> None:
    fake.script.append(Canned(400, '{"errors": ["Error parsing query: unexpected token"]}'))
    with pytest.raises(ProviderHTTPError, match="unexpected token") as caught:
        await provider.measure(V1)
    assert caught.value.status == 400


async def test_slow_answer_is_a_timeout(fake: DatadogFake, provider: DatadogProvider) -> None:
    fake.script.append(Canned(200, "{}", delay_s=1.5))
    with pytest.raises(ProviderTimeout) as caught:
        await provider.measure({**V1, "timeout": 0.3})
    assert "0.3s" in str(caught.value) and fake.url in str(caught.value)


async def test_refused_connection_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    instance = make_provider(f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(ProviderError) as caught:
            await instance.measure(V1)
    finally:
        await instance.aclose()
    assert isinstance(caught.value, ProviderConnectionError | ProviderTimeout)
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert_no_keys(caught.value)


@pytest.mark.parametrize(
    ("body", "config", "problem"),
    [
        ("<html>gateway</html>", V1, "not JSON"),
        ("", V2, "not JSON"),
        ('{"series": "nope"}', V1, "not a list"),
        ('{"series": [{"pointlist": [[1700000000000, "0.5"]]}]}', V1, "non-numeric"),
        ('{"series": [{"pointlist": [[1700000000000, true]]}]}', V1, "non-numeric"),
        ('{"series": [{"pointlist": [[1700000000000]]}]}', V1, "pair"),
        (
            '{"data": {"attributes": {"columns": [{"type": "number", "values": ["x"]}]}}}',
            V2,
            "non-numeric",
        ),
    ],
    ids=["html", "empty", "series-not-list", "string-point", "bool-point", "short-point", "v2"],
)
async def test_malformed_bodies_are_bad_body_errors(
    fake: DatadogFake,
    provider: DatadogProvider,
    body: str,
    config: dict[str, str],
    problem: str,
) -> None:
    fake.script.append(Canned(200, body, {"Content-Type": "application/json"}))
    with pytest.raises(ProviderBadBody, match=problem) as caught:
        await provider.measure(config)
    message = str(caught.value)
    assert "datadog" in message and fake.url in message and "HTTP 200" in message
    assert "avg:errors{app:demo}" in message
    assert_no_keys(caught.value)


async def test_bad_body_message_truncates_a_long_body(
    fake: DatadogFake, provider: DatadogProvider
) -> None:
    points = ",".join(f'[{1700000000000 + i}, "v{i}"]' for i in range(400))
    fake.script.append(Canned(200, '{"series": [{"pointlist": [' + points + "]}]}"))
    with pytest.raises(ProviderBadBody) as caught:
        await provider.measure(V1)
    assert "more characters" in str(caught.value)
    assert len(str(caught.value)) < 1000


async def test_top_level_errors_in_a_200_are_shown(
    fake: DatadogFake, provider: DatadogProvider
) -> None:
    fake.script.append(
        Canned(200, '{"data": {"attributes": {"columns": []}}, "errors": "unknown metric foo"}')
    )
    with pytest.raises(ProviderBadBody, match="unknown metric foo"):
        await provider.measure(V2)


async def test_series_failures_are_mapped_too(fake: DatadogFake, provider: DatadogProvider) -> None:
    from datetime import UTC, datetime, timedelta

    fake.script.append(Canned(500, "internal"))
    end = datetime.now(UTC)
    with pytest.raises(ProviderHTTPError, match="/api/v2/query/timeseries") as caught:
        await provider.series({}, "avg:x{*}", end - timedelta(minutes=5), end, 60.0)
    assert caught.value.status == 500
    assert time.time() > 0

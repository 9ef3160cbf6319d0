"""New Relic (NRQL over NerdGraph) against tests/rigs/newrelic_api.py (a graphql-core NerdGraph).

Each case ends in the phase and message the engine records (tests/rigs/phases.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from providers.base import ProviderAuthError, ProviderConfigError, ProviderUnsupported
from providers.limits import KindLimits
from providers.newrelic import NRQL_DOCUMENT, account
from providers.registry import LimitsConfig, ProviderRegistry, check_block
from tests.rigs.newrelic_api import Canned, NerdGraph
from tests.rigs.phases import measure_metric

pytestmark = pytest.mark.integration

KEY = "NRAK-0123456789ABCDEFGHIJKLMNOPQ"
ACCOUNT = 1234567
NRQL = (
    "FROM Transaction SELECT percentage(count(*), WHERE httpResponseCode >= 500) AS errorRate "
    "WHERE appName = 'checkout' SINCE 5 minutes ago"
)


def secrets_for(
    graph: NerdGraph, *, key: str = KEY, account_id: str = str(ACCOUNT), name: str = "newrelic"
) -> Callable[[str, str], str | None]:
    values = {"personal-api-key": key, "account-id": account_id, "base-url-nerdgraph": graph.url}
    return lambda secret, k: values.get(k) if secret == name else None


def metric(query: str = NRQL, **extra: Any) -> dict[str, Any]:
    block: dict[str, Any] = {"query": query, **extra.pop("block", {})}
    return {"name": "error-rate", "provider": {"newRelic": block}, **extra}


@pytest.fixture
async def graph() -> AsyncIterator[NerdGraph]:
    async with NerdGraph(api_key=KEY, account_id=ACCOUNT) as server:
        yield server


@pytest.fixture
async def registry(graph: NerdGraph) -> AsyncIterator[ProviderRegistry]:
    limits = LimitsConfig(coalesce_window=0, max_attempts=1)
    async with ProviderRegistry(secrets=secrets_for(graph), limits=limits) as instance:
        yield instance


async def test_one_row_is_the_row_itself(graph: NerdGraph, registry: ProviderRegistry) -> None:
    graph.results[NRQL] = [{"errorRate": 1.25, "count": 120}]
    outcome = await measure_metric(
        registry, metric(successCondition="result.errorRate < 2 && result.count == 120")
    )
    assert (outcome.phase, outcome.message) == ("Successful", "")
    assert outcome.value == '{"count":120,"errorRate":1.25}'
    (request,) = graph.requests
    assert request.headers["Api-Key"] == KEY
    assert request.body == {
        "query": NRQL_DOCUMENT,
        "variables": {"accountId": ACCOUNT, "query": NRQL},
    }
    failed = await measure_metric(registry, metric(failureCondition="result.errorRate > 1"))
    assert failed.phase == "Failed"


async def test_several_rows_are_a_list(graph: NerdGraph, registry: ProviderRegistry) -> None:
    facet = "FROM Transaction SELECT count(*) FACET appName SINCE 5 minutes ago"
    graph.results[facet] = [
        {"appName": "checkout", "count": 10},
        {"appName": "cart", "count": 4},
    ]
    outcome = await measure_metric(
        registry,
        metric(facet, successCondition='result[0].count == 10 && result[1].appName == "cart"'),
    )
    assert outcome.phase == "Successful", outcome
    assert outcome.value == '[{"appName":"checkout","count":10},{"appName":"cart","count":4}]'


@pytest.mark.parametrize("rows", [[], [{}]], ids=["no-rows", "empty-row"])
async def test_no_rows_is_argos_error(
    graph: NerdGraph, registry: ProviderRegistry, rows: list[dict[str, Any]]
) -> None:
    graph.results[NRQL] = rows
    outcome = await measure_metric(registry, metric(successCondition="result.errorRate < 2"))
    assert outcome.phase == "Error"
    assert outcome.message == (
        f"newRelic at {graph.url} (account {ACCOUNT}): no results returned from NRQL query "
        f"(query {NRQL!r})"
    )


async def test_a_wrong_key_is_an_auth_error_without_the_key(graph: NerdGraph) -> None:
    async with ProviderRegistry(secrets=secrets_for(graph, key="NRAK-WRONGKEY")) as registry:
        outcome = await measure_metric(registry, metric())
    assert outcome.phase == "Error"
    assert outcome.message == (
        f"newRelic at {graph.url} (account {ACCOUNT}): 401 response returned: Invalid credentials "
        "provided. Missing API key or an invalid API key was provided. (Invalid API key)"
    )
    assert isinstance(outcome.error, ProviderAuthError)
    assert "NRAK-WRONGKEY" not in outcome.message


async def test_a_401_is_an_auth_error(graph: NerdGraph, registry: ProviderRegistry) -> None:
    graph.script.append(Canned(401, '{"errors":[{"message":"Unauthorized"}]}'))
    outcome = await measure_metric(registry, metric())
    assert outcome.phase == "Error" and isinstance(outcome.error, ProviderAuthError)
    assert "401 response returned: Invalid credentials provided." in outcome.message


async def test_missing_secret_keys_are_argos_message(graph: NerdGraph) -> None:
    async with ProviderRegistry(secrets=secrets_for(graph, key="")) as registry:
        outcome = await measure_metric(registry, metric())
    assert outcome.phase == "Error"
    assert outcome.message == (
        "newRelic: account ID or personal API key not found "
        "(secret 'newrelic', keys 'personal-api-key' and 'account-id')"
    )


async def test_an_account_the_key_cannot_read_is_an_error(graph: NerdGraph) -> None:
    async with ProviderRegistry(secrets=secrets_for(graph, account_id="999")) as registry:
        outcome = await measure_metric(registry, metric())
    assert outcome.phase == "Error"
    assert outcome.message == (
        f"newRelic at {graph.url} (account 999): Not authorized to access account: 999"
    )


async def test_an_nrql_syntax_error_is_an_error(
    graph: NerdGraph, registry: ProviderRegistry
) -> None:
    bad = "SELEKT count(*) FROM Transaction"
    graph.nrql_errors[bad] = "NRQL Syntax Error: Error at line 1 position 1, unexpected 'SELEKT'"
    outcome = await measure_metric(registry, metric(bad))
    assert outcome.phase == "Error"
    assert outcome.message.endswith(
        "NRQL Syntax Error: Error at line 1 position 1, unexpected 'SELEKT'"
    )


@pytest.mark.parametrize(
    ("canned", "expected"),
    [
        (
            Canned(500, '{"errors":[{"message":"Internal server error"}]}'),
            "500 response returned: Internal server error (HTTP 500)",
        ),
        (
            Canned(503, "upstream connect error"),
            "503 response returned: upstream connect error (HTTP 503)",
        ),
        (
            Canned(400, '{"errors":[{"message":"Must provide query string."}]}'),
            "400 response returned: Must provide query string. (HTTP 400)",
        ),
    ],
    ids=["500", "503-text", "400"],
)
async def test_http_errors_carry_status_and_messages(
    graph: NerdGraph, registry: ProviderRegistry, canned: Canned, expected: str
) -> None:
    graph.script.append(canned)
    outcome = await measure_metric(registry, metric())
    assert outcome.phase == "Error"
    assert outcome.message == f"newRelic at {graph.url} (account {ACCOUNT}): {expected}"


async def test_429_waits_for_retry_after_then_measures(graph: NerdGraph) -> None:
    graph.results[NRQL] = [{"errorRate": 0.5}]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    limited = Canned(429, '{"errors":[{"message":"Too many requests"}]}', {"Retry-After": "3"})
    limits = LimitsConfig(coalesce_window=0, max_attempts=2)
    async with ProviderRegistry(secrets=secrets_for(graph), limits=limits, sleep=sleep) as registry:
        graph.script.append(limited)
        outcome = await measure_metric(registry, metric())
        assert (outcome.phase, outcome.value) == ("Successful", '{"errorRate":0.5}')
        assert any(2.9 <= w <= 3.4 for w in waits), waits
        graph.script.extend([limited, limited])
        exhausted = await measure_metric(registry, metric())
    assert exhausted.phase == "Error"
    assert exhausted.message == (
        f"newRelic at {graph.url} (account {ACCOUNT}): 429 response returned: Too many requests "
        "(HTTP 429): rate limited; retry after 3s"
    )


async def test_a_slow_answer_is_a_timeout(graph: NerdGraph, registry: ProviderRegistry) -> None:
    graph.script.append(Canned(200, "{}", delay_s=3))
    outcome = await measure_metric(registry, metric(block={"timeout": 0.3}))
    assert outcome.phase == "Error"
    assert outcome.message == (
        f"newRelic at {graph.url} (account {ACCOUNT}) did not answer within 0.3s"
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "<html>maintenance</html>",
            "HTTP 200 but the body is not JSON: '<html>maintenance</html>'",
        ),
        (
            '{"data": {"actor": {"account": {"nrql": {"results": 5}}}}}',
            "HTTP 200 but 'results' is not a list",
        ),
        ('{"data": {"actor": []}}', "HTTP 200 but 'account' is not an object"),
    ],
    ids=["html", "results-not-list", "actor-not-object"],
)
async def test_garbage_bodies_are_errors(
    graph: NerdGraph, registry: ProviderRegistry, body: str, expected: str
) -> None:
    graph.script.append(Canned(200, body))
    outcome = await measure_metric(registry, metric())
    assert outcome.phase == "Error"
    assert outcome.message.startswith(f"newRelic at {graph.url} (account {ACCOUNT}): {expected}")


async def test_identical_queries_falling_due_together_share_one_request(graph: NerdGraph) -> None:
    graph.results[NRQL] = [{"errorRate": 0.5}]
    async with ProviderRegistry(secrets=secrets_for(graph)) as registry:
        readings = await asyncio.gather(
            *(registry.measure("newRelic", {"query": NRQL}) for _ in range(15))
        )
        assert registry.pooled() == 1
    assert {r.value for r in readings} == {'{"errorRate":0.5}'}
    assert len(graph.requests) == 1


async def test_per_kind_limits_of_the_settings_apply(graph: NerdGraph) -> None:
    for i in range(3):
        graph.results[f"SELECT count(*) FROM T{i}"] = [{"count": i + 1}]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    per_account = KindLimits(rate=1, burst=1, per_credentials=True)
    limits = LimitsConfig(coalesce_window=0, per_kind={"newRelic": per_account})
    async with ProviderRegistry(secrets=secrets_for(graph), limits=limits, sleep=sleep) as registry:
        for i in range(3):
            await registry.measure("newRelic", {"query": f"SELECT count(*) FROM T{i}"})
    assert len(graph.requests) == 3
    assert len(waits) == 2 and all(w > 0 for w in waits), waits  # one token a second


def test_profile_region_and_base_urls_are_read_as_argo_reads_them() -> None:
    base = {"personal-api-key": KEY, "account-id": "42"}

    def lookup(extra: dict[str, str]) -> Callable[[str, str], str | None]:
        values = {**base, **extra}
        return lambda secret, key: values.get(key) if secret == "nr-eu" else None

    profile = {"profile": "nr-eu", "query": NRQL}
    assert account(profile, lookup({})) == ("https://api.newrelic.com/graphql", 42, KEY)
    assert account(profile, lookup({"region": "EU"}))[0] == "https://api.eu.newrelic.com/graphql"
    custom = lookup(
        {"region": "eu", "base-url-nerdgraph": "https://nerdgraph.proxy.example/graphql"}
    )
    assert account(profile, custom)[0] == "https://nerdgraph.proxy.example/graphql"
    with pytest.raises(ProviderConfigError, match="unknown region 'mars'"):
        account(profile, lookup({"region": "mars"}))
    with pytest.raises(
        ProviderConfigError, match=r'could not parse account ID: strconv\.Atoi: parsing "4x2"'
    ):
        account(profile, lookup({"account-id": "4x2"}))
    with pytest.raises(ProviderAuthError, match="secret 'newrelic'"):
        account({"query": NRQL}, lookup({}))


async def test_range_data_is_refused_in_one_sentence(graph: NerdGraph) -> None:
    async with ProviderRegistry(secrets=secrets_for(graph)) as registry:
        with pytest.raises(ProviderUnsupported, match="newRelic does not serve range data"):
            await registry.series("newRelic", {}, NRQL, *_window(), 60)


def _window() -> tuple[Any, Any]:
    from datetime import UTC, datetime, timedelta

    end = datetime.now(UTC)
    return end - timedelta(minutes=5), end


def test_the_door_checks_the_block() -> None:
    check_block("newRelic", {"query": NRQL, "profile": "newrelic-prod"})
    with pytest.raises(ProviderConfigError) as caught:
        check_block("newRelic", {"profile": "x"})
    assert caught.value.field == "query"

"""InfluxDB (Flux, /api/v2/query) via the influxdb-client library, against tests/rigs/influx_api.py.

Each case ends in the phase and message the engine records (tests/rigs/phases.py). The rig's
annotated CSV is checked against the client library's own parser.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from influxdb_client.client.flux_csv_parser import FluxCsvParser, FluxSerializationMode

from providers.base import ProviderAuthError, ProviderConfigError
from providers.registry import LimitsConfig, ProviderRegistry, check_block
from tests.rigs.influx_api import (
    Canned,
    Column,
    InfluxApi,
    Table,
    annotated_csv,
    value_table,
)
from tests.rigs.phases import measure_metric

pytestmark = pytest.mark.integration

TOKEN = "influx-token-0123456789abcdef"
ORG = "acme"
QUERY = """from(bucket: "app_metrics")
  |> range(start: -5m)
  |> filter(fn: (r) => r._measurement == "http" and r._field == "error_rate")
  |> filter(fn: (r) => r.service == "checkout")
  |> mean()"""


def secrets_for(
    api: InfluxApi, token: str = TOKEN, org: str = ORG, name: str = "influxdb"
) -> Callable[[str, str], str | None]:
    values = {"authToken": token, "org": org, "address": api.url}
    return lambda secret, key: values.get(key) if secret == name else None


def metric(query: str = QUERY, **extra: Any) -> dict[str, Any]:
    block: dict[str, Any] = {"query": query, **extra.pop("block", {})}
    return {"name": "error-rate", "provider": {"influxdb": block}, **extra}


@pytest.fixture
async def api() -> AsyncIterator[InfluxApi]:
    async with InfluxApi(token=TOKEN, org=ORG) as server:
        yield server


@pytest.fixture
async def registry(api: InfluxApi) -> AsyncIterator[ProviderRegistry]:
    limits = LimitsConfig(coalesce_window=0, max_attempts=1)
    async with ProviderRegistry(secrets=secrets_for(api), limits=limits) as instance:
        yield instance


async def test_record_values_become_a_list_for_conditions(
    api: InfluxApi, registry: ProviderRegistry
) -> None:
    api.tables[QUERY] = [value_table([0.5, 1.5])]
    outcome = await measure_metric(
        registry, metric(successCondition="len(result) == 2 && result[0] < 1 && result[1] == 1.5")
    )
    assert (outcome.phase, outcome.message, outcome.value) == ("Successful", "", "[0.5 1.5]")
    (request,) = api.requests
    assert request.path == "/api/v2/query" and request.query["org"] == ORG
    assert request.headers["Authorization"] == f"Token {TOKEN}"
    assert request.body["query"] == QUERY and request.body.get("type", "flux") == "flux"
    assert request.body["dialect"]["annotations"] == ["datatype", "group", "default"]
    failed = await measure_metric(registry, metric(failureCondition="result[1] > 1"))
    assert failed.phase == "Failed"


async def test_every_table_contributes_in_order_with_its_own_types(
    api: InfluxApi, registry: ProviderRegistry
) -> None:
    api.tables[QUERY] = [
        value_table([10, 20], field_name="requests"),
        value_table([30], field_name="errors", start=1),
        value_table(["up"], field_name="state", start=2),
    ]
    outcome = await measure_metric(
        registry,
        metric(
            successCondition='result[0] + result[1] == 30 && result[2] == 30 && result[3] == "up"'
        ),
    )
    assert (outcome.phase, outcome.value) == ("Successful", "[10 20 30 up]"), outcome


async def test_no_records_is_argos_error(api: InfluxApi, registry: ProviderRegistry) -> None:
    outcome = await measure_metric(registry, metric(successCondition="result[0] < 1"))
    assert outcome.phase == "Error"
    assert outcome.message == (
        f"influxdb at {api.url}/api/v2/query: no results returned from flux query (org 'acme')"
    )


async def test_a_rejected_token_is_an_auth_error_without_the_token(api: InfluxApi) -> None:
    async with ProviderRegistry(secrets=secrets_for(api, token="wrong-token-value")) as registry:
        outcome = await measure_metric(registry, metric())
    assert outcome.phase == "Error"
    assert outcome.message == (
        f"influxdb at {api.url}/api/v2/query: unauthorized: unauthorized access (HTTP 401)"
    )
    assert isinstance(outcome.error, ProviderAuthError)
    assert "wrong-token-value" not in outcome.message


async def test_a_missing_secret_key_is_argos_message(api: InfluxApi) -> None:
    values = {"authToken": TOKEN, "address": api.url}
    async with ProviderRegistry(secrets=lambda s, k: values.get(k)) as registry:
        outcome = await measure_metric(registry, metric())
    assert outcome.phase == "Error"
    assert outcome.message == (
        "influxdb: authToken, org, or address not found "
        "(secret 'influxdb', keys 'authToken', 'org' and 'address')"
    )


async def test_the_profile_names_the_secret(api: InfluxApi) -> None:
    api.tables[QUERY] = [value_table([1.0])]
    lookup = secrets_for(api, name="influx-prod")
    async with ProviderRegistry(secrets=lookup) as registry:
        outcome = await measure_metric(registry, metric(block={"profile": "influx-prod"}))
    assert (outcome.phase, outcome.value) == ("Successful", "[1]")


async def test_an_unknown_org_is_not_found(api: InfluxApi) -> None:
    async with ProviderRegistry(secrets=secrets_for(api, org="other")) as registry:
        outcome = await measure_metric(registry, metric())
    assert outcome.phase == "Error"
    assert outcome.message == (
        f'influxdb at {api.url}/api/v2/query: not found: organization name "other" not found '
        "(HTTP 404)"
    )


@pytest.mark.parametrize(
    ("canned", "expected"),
    [
        (
            Canned(400, '{"code":"invalid","message":"compilation failed: error at @1:1-1:5"}'),
            "invalid: compilation failed: error at @1:1-1:5 (HTTP 400)",
        ),
        (
            Canned(500, '{"code":"internal error","message":"unexpected error"}'),
            "internal error: unexpected error (HTTP 500)",
        ),
        (Canned(502, "bad gateway"), "bad gateway (HTTP 502)"),
        (Canned(503, ""), "Unexpected status code 503 (HTTP 503)"),
    ],
    ids=["400", "500", "502-text", "503-empty"],
)
async def test_http_errors_carry_influxs_code_and_message(
    api: InfluxApi, registry: ProviderRegistry, canned: Canned, expected: str
) -> None:
    api.script.append(canned)
    outcome = await measure_metric(registry, metric())
    assert outcome.phase == "Error"
    assert outcome.message == f"influxdb at {api.url}/api/v2/query: {expected}"


async def test_429_waits_for_retry_after_then_measures(api: InfluxApi) -> None:
    api.tables[QUERY] = [value_table([0.25])]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    too_many = Canned(
        429, '{"code":"too many requests","message":"org exceeded quota"}', {"Retry-After": "5"}
    )
    limits = LimitsConfig(coalesce_window=0, max_attempts=2)
    async with ProviderRegistry(secrets=secrets_for(api), limits=limits, sleep=sleep) as registry:
        api.script.append(too_many)
        outcome = await measure_metric(registry, metric())
        assert (outcome.phase, outcome.value) == ("Successful", "[0.25]")
        assert any(4.9 <= w <= 5.6 for w in waits), waits
        api.script.extend([too_many, too_many])
        exhausted = await measure_metric(registry, metric())
    assert exhausted.phase == "Error"
    assert exhausted.message == (
        f"influxdb at {api.url}/api/v2/query: too many requests: org exceeded quota (HTTP 429): "
        "rate limited; retry after 5s"
    )
    assert len(api.requests) == 4


async def test_a_slow_answer_is_a_timeout(api: InfluxApi, registry: ProviderRegistry) -> None:
    api.script.append(Canned(200, "", delay_s=3))
    outcome = await measure_metric(registry, metric(block={"timeout": 0.3}))
    assert outcome.phase == "Error"
    assert outcome.message == f"influxdb at {api.url}/api/v2/query did not answer within 0.3s"


async def test_an_in_band_flux_error_is_an_error(
    api: InfluxApi, registry: ProviderRegistry
) -> None:
    api.errors[QUERY] = 'runtime error @3:6-3:75: filter: type error: "service" is not a column'
    outcome = await measure_metric(registry, metric())
    assert outcome.phase == "Error"
    assert outcome.message == (
        f"influxdb at {api.url}/api/v2/query: "
        'runtime error @3:6-3:75: filter: type error: "service" is not a column'
    )


@pytest.mark.parametrize(
    "body",
    [
        "<html><body>502 from the load balancer</body></html>",
        "#datatype,string,long,double\r\n,result,table\r\n,,0,1.5,extra\r\n",
        "#datatype,string,long,double\r\n#group,false,false,false\r\n#default,_result,,\r\n"
        ",result,table,_value\r\n,,0,not-a-number\r\n",
    ],
    ids=["html", "ragged", "bad-double"],
)
async def test_garbage_csv_is_an_error(
    api: InfluxApi, registry: ProviderRegistry, body: str
) -> None:
    api.script.append(Canned(200, body, {"Content-Type": "text/csv; charset=utf-8"}))
    outcome = await measure_metric(registry, metric(successCondition="true"))
    assert outcome.phase == "Error", outcome
    assert outcome.message.startswith(f"influxdb at {api.url}/api/v2/query: "), outcome.message


async def test_identical_queries_falling_due_together_share_one_request(api: InfluxApi) -> None:
    api.tables[QUERY] = [value_table([2.0])]
    async with ProviderRegistry(secrets=secrets_for(api)) as registry:
        readings = await asyncio.gather(
            *(registry.measure("influxdb", {"query": QUERY}) for _ in range(12))
        )
        assert registry.pooled() == 1
    assert {r.value for r in readings} == {"[2]"}
    assert len(api.requests) == 1


async def test_series_reads_the_flux_answer_as_floats(api: InfluxApi) -> None:
    api.tables["range query"] = [value_table([1, 2.5, 4])]
    end = datetime.now(UTC)
    async with ProviderRegistry(secrets=secrets_for(api)) as registry:
        values = await registry.series(
            "influxdb", {}, "range query", end - timedelta(minutes=5), end, 60
        )
    assert values == [1.0, 2.5, 4.0]


def test_the_door_checks_the_block() -> None:
    check_block("influxdb", {"query": QUERY, "profile": "influx-prod"})
    with pytest.raises(ProviderConfigError) as caught:
        check_block("influxdb", {"profile": "x"})
    assert caught.value.field == "query"


# ---------------------------------------------------------------- the rig against the library


def library_parse(text: str) -> list[list[dict[str, Any]]]:
    """The influxdb-client library's own annotated-CSV parser, over `text`."""
    import io

    reader = io.BytesIO(text.encode())  # iterated line by line, as the library iterates a body
    parser = FluxCsvParser(response=reader, serialization_mode=FluxSerializationMode.tables)
    with parser as tables_parser:
        tables = tables_parser.generator()
        list(tables)
    return [[dict(record.values) for record in table.records] for table in parser.tables]


def test_the_rigs_csv_reads_back_through_the_library_parser() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    table = Table(
        [
            Column("_time", "dateTime:RFC3339"),
            Column("_value", "double"),
            Column("count", "long"),
            Column("ok", "boolean"),
            Column("host", "string", group=True),
        ],
        [
            [start, 1.5, 7, True, 'web,"1"'],
            [start + timedelta(minutes=1), float("nan"), -3, False, "web-2"],
        ],
    )
    (records,) = library_parse(annotated_csv([table], ["datatype", "group", "default"]))
    assert records[0]["_value"] == 1.5
    assert records[1]["_value"] != records[1]["_value"]  # NaN
    assert [r["count"] for r in records] == [7, -3]
    assert [r["ok"] for r in records] == [True, False]
    assert [r["host"] for r in records] == ['web,"1"', "web-2"]
    assert [r["_time"] for r in records] == [start, start + timedelta(minutes=1)]
    assert [r["result"] for r in records] == ["_result", "_result"]
    assert [r["table"] for r in records] == [0, 0]


def test_the_rig_writes_what_influxdbs_docs_show() -> None:
    # The annotated CSV example of InfluxDB 2's documentation (one table, group keys).
    documented = (
        "#group,false,false,true,true,false,false,true,true,true,true\r\n"
        "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,"
        "string,string,string\r\n"
        "#default,_result,,,,,,,,,\r\n"
        ",result,table,_start,_stop,_time,_value,_field,_measurement,cpu,host\r\n"
        ",,0,2020-04-28T12:00:00Z,2020-04-28T12:10:00Z,2020-04-28T12:01:00Z,7.1,usage_user,cpu,"
        "cpu0,host1\r\n"
        ",,0,2020-04-28T12:00:00Z,2020-04-28T12:10:00Z,2020-04-28T12:02:00Z,7.25,usage_user,cpu,"
        "cpu0,host1\r\n\r\n"
    )
    t0 = datetime(2020, 4, 28, 12, tzinfo=UTC)
    table = Table(
        [
            Column("_start", "dateTime:RFC3339", group=True),
            Column("_stop", "dateTime:RFC3339", group=True),
            Column("_time", "dateTime:RFC3339"),
            Column("_value", "double"),
            Column("_field", "string", group=True),
            Column("_measurement", "string", group=True),
            Column("cpu", "string", group=True),
            Column("host", "string", group=True),
        ],
        [
            [
                t0,
                t0 + timedelta(minutes=10),
                t0 + timedelta(minutes=m),
                v,
                "usage_user",
                "cpu",
                "cpu0",
                "host1",
            ]
            for m, v in ((1, 7.1), (2, 7.25))
        ],
    )
    ours = annotated_csv([table], ["group", "datatype", "default"])
    assert ours == documented
    assert library_parse(ours) == library_parse(documented)

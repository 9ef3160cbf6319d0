"""Pure parts of the Prometheus provider: Argo's value spelling, result shapes, config."""

from __future__ import annotations

import math
from typing import Any

import pytest

from providers.base import ProviderBadBody, ProviderConfigError
from providers.prometheus import (
    PrometheusProvider,
    QuerySettings,
    decode_result,
    decode_series,
    go_duration_seconds,
    go_float,
    parse_answer,
    redact_address,
    resolve_time,
    sigv4_enabled,
    value_string,
)
from tests.vectors import case_id, load_argo


@pytest.mark.parametrize(
    ("value", "spelled"),
    [
        (10.0, "10"),
        (0.99, "0.99"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e21, "1000000000000000000000"),
        (1e-7, "0.0000001"),
        (-1.5, "-1.5"),
        (-0.0, "-0"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
    ],
)
def test_go_float_matches_strconv_format_float_f_minus_one(value: float, spelled: str) -> None:
    assert go_float(value) == spelled


def test_vector_value_is_bracketed_without_spaces() -> None:
    assert value_string([11.0, 12.0, 13.0, 14.0]) == "[11,12,13,14]"
    assert value_string([]) == "[]"
    assert value_string(0.5) == "0.5"


def _prometheus_value_cases() -> list[Any]:
    cases = [
        case
        for case in load_argo("argo-expr.json")
        if str(case.get("source", "")).startswith("metricproviders/prometheus")
        and "expect_value_string" in case
    ]
    return [pytest.param(case, id=case_id("argo-expr.json", "cases", case)) for case in cases]


@pytest.mark.parametrize("case", _prometheus_value_cases())
def test_value_string_matches_argo_vectors(case: dict[str, Any]) -> None:
    assert value_string(case["result"]) == case["expect_value_string"]


def _vector(*values: str) -> dict[str, Any]:
    return {
        "resultType": "vector",
        "result": [{"metric": {"i": str(i)}, "value": [1.0, v]} for i, v in enumerate(values)],
    }


def test_vector_becomes_a_list_of_floats_including_nan_and_inf() -> None:
    result = decode_result(_vector("0.5", "NaN", "+Inf", "-Inf"))
    assert isinstance(result, list)
    assert result[0] == 0.5 and math.isnan(result[1])
    assert result[2:] == [math.inf, -math.inf]


def test_scalar_becomes_a_float() -> None:
    assert decode_result({"resultType": "scalar", "result": [1.0, "42"]}) == 42.0


def test_matrix_is_flattened_series_by_series() -> None:
    data = {
        "resultType": "matrix",
        "result": [
            {"metric": {}, "values": [[1, "11"], [2, "12"]]},
            {"metric": {}, "values": [[1, "13"], [2, "14"]]},
        ],
    }
    assert decode_result(data) == [11.0, 12.0, 13.0, 14.0]


def test_string_result_is_refused() -> None:
    with pytest.raises(ProviderBadBody, match="string"):
        decode_result({"resultType": "string", "result": [1.0, "hello"]})


def test_series_fills_missing_steps_with_nan() -> None:
    data = {"resultType": "matrix", "result": [{"metric": {}, "values": [[100, "1"], [120, "3"]]}]}
    values = decode_series(data, 100.0, 130.0, 10.0)
    assert values[0] == 1.0 and math.isnan(values[1]) and values[2] == 3.0 and math.isnan(values[3])


def test_answer_with_error_status_names_the_error() -> None:
    body = b'{"status":"error","errorType":"bad_data","error":"parse error"}'
    with pytest.raises(ProviderBadBody, match="bad_data parse error"):
        parse_answer(200, body)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now()", 1000.0),
        ('now() - duration("5m")', 700.0),
        ("now() - duration('1m30s')", 910.0),
        ('now() + duration("10s")', 1010.0),
        ("500", 500.0),
        ("1970-01-01T00:01:40Z", 100.0),
    ],
)
def test_range_query_bounds(text: str, expected: float) -> None:
    assert resolve_time(text, 1000.0) == pytest.approx(expected)


def test_unreadable_range_bound_says_what_is_accepted() -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        resolve_time("yesterday", 1000.0)


def test_timeout_defaults_to_thirty_seconds_and_zero_is_kept() -> None:
    assert QuerySettings.parse({"query": "up"}).timeout_s == 30.0
    assert QuerySettings.parse({"query": "up", "timeout": 0}).timeout_s == 0.0


def test_missing_query_is_a_config_error() -> None:
    with pytest.raises(ProviderConfigError, match="query"):
        QuerySettings.parse({"address": "http://p:9090"})


def test_address_must_be_a_url() -> None:
    with pytest.raises(ProviderConfigError, match="url"):
        PrometheusProvider.pool_key({"address": "prometheus:9090"}, lambda n, k: None)


def test_sigv4_follows_argo_address_rule_unless_explicit() -> None:
    amp = "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-1"
    assert sigv4_enabled({"address": amp})
    assert not sigv4_enabled({"address": "http://127.0.0.1:9090"})
    assert sigv4_enabled(
        {"address": "http://127.0.0.1:9090", "authentication": {"sigv4": {"enabled": True}}}
    )
    assert not sigv4_enabled({"address": amp, "authentication": {"sigv4": {"enabled": False}}})


def test_pool_keys_separate_credentials_without_holding_them() -> None:
    def with_password(password: str) -> dict[str, Any]:
        return {
            "address": "http://p:9090",
            "query": "up",
            "authentication": {"basicAuth": {"username": "u", "password": password}},
        }

    key_a = PrometheusProvider.pool_key(with_password("alpha-secret"), lambda n, k: None)
    key_b = PrometheusProvider.pool_key(with_password("beta-secret"), lambda n, k: None)
    assert key_a != key_b
    assert "alpha-secret" not in repr(key_a)


def test_identical_queries_share_a_request_key() -> None:
    config = {"address": "http://p:9090", "query": "up", "timeout": 5}
    assert PrometheusProvider.request_key(config) == PrometheusProvider.request_key(dict(config))
    other = {**config, "query": "up == 1"}
    assert PrometheusProvider.request_key(config) != PrometheusProvider.request_key(other)


def test_userinfo_is_removed_from_shown_addresses() -> None:
    assert redact_address("http://u:p@host:9090/prom") == "http://host:9090/prom"
    assert redact_address("http://host:9090") == "http://host:9090"


def test_address_falls_back_to_argo_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARGO_ROLLOUTS_PROMETHEUS_ADDRESS", "http://prom.monitoring:9090/")
    key = PrometheusProvider.pool_key({"query": "up"}, lambda n, k: None)
    assert key[1] == "http://prom.monitoring:9090"


def test_missing_address_names_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARGO_ROLLOUTS_PROMETHEUS_ADDRESS", raising=False)
    with pytest.raises(ProviderConfigError, match="ARGO_ROLLOUTS_PROMETHEUS_ADDRESS"):
        PrometheusProvider.pool_key({"query": "up"}, lambda n, k: None)


@pytest.mark.parametrize(("text", "seconds"), [("1m30s", 90.0), ("250ms", 0.25), ("0", 0.0)])
def test_go_durations(text: str, seconds: float) -> None:
    assert go_duration_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "1d", "m"])
def test_bad_go_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        go_duration_seconds(text)

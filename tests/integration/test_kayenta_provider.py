"""Argo's kayenta provider (providers/kayenta.py) against tests/rigs/kayenta_api.py.

Each case ends in the phase and message the engine records (tests/rigs/phases.py); the
calls are compared with the ones Argo's metricproviders/kayenta/kayenta.go makes.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from analysisd.engine.measure import judge_reading, provider_block
from analysisd.spec import Metric
from providers.base import ProviderConfigError, ProviderUnsupported
from providers.kayenta import evaluate, payload
from providers.registry import LimitsConfig, ProviderRegistry, check_block
from tests.e2e.rig import running_daemon, settings_for
from tests.rigs.kayenta_api import Canned, KayentaApi
from tests.rigs.phases import measure_metric

pytestmark = pytest.mark.integration

APP = "checkout"
CONFIG = "checkout-canary"
SETTINGS = {"kayenta": {"resumeDelaySeconds": 0.02}}


def block(api: KayentaApi, **extra: Any) -> dict[str, Any]:
    window = {"region": "eu-west-1", "step": 60, "start": "2026-12-05T07:00:00Z"}
    window["end"] = "2026-12-05T07:30:00Z"
    return {
        "address": api.url,
        "application": APP,
        "canaryConfigName": CONFIG,
        "metricsAccountName": "prom-main",
        "configurationAccountName": "configs",
        "storageAccountName": "store",
        "threshold": {"pass": 90, "marginal": 75},
        "scopes": [
            {
                "name": "default",
                "controlScope": {"scope": "app=checkout,version=stable", **window},
                "experimentScope": {"scope": "app=checkout,version=canary", **window},
            }
        ],
        **extra,
    }


def metric(api: KayentaApi, **extra: Any) -> dict[str, Any]:
    return {"name": "canary", "provider": {"kayenta": block(api, **extra)}}


@pytest.fixture
async def api() -> AsyncIterator[KayentaApi]:
    async with KayentaApi() as server:
        server.add_config("another-config", APP)
        server.add_config(CONFIG, APP)
        yield server


@pytest.fixture
async def registry() -> AsyncIterator[ProviderRegistry]:
    limits = LimitsConfig(coalesce_window=0, max_attempts=1)
    async with ProviderRegistry(
        secrets=lambda s, k: None, limits=limits, settings=SETTINGS
    ) as instance:
        yield instance


def config_id(api: KayentaApi) -> str:
    return next(i for i, (name, _) in api.configs.items() if name == CONFIG)


async def test_a_passing_score_is_successful_with_argos_calls_and_metadata(
    api: KayentaApi, registry: ProviderRegistry
) -> None:
    api.polls_to_complete = 3
    spec = Metric.model_validate(metric(api))
    kind, config = provider_block(spec)
    reading = await registry.bind(kind, config).measure()
    phase, message, value, metadata = judge_reading(spec, kind, reading, None)
    assert (phase, message, value) == ("Successful", "", "95")
    assert metadata is not None
    execution = metadata["canaryExecutionId"]
    assert execution in api.executions

    lookup, start, *polls = api.requests
    assert (lookup.method, lookup.path) == ("GET", "/canaryConfig")
    # Argo passes the storage account as configurationAccountName here.
    assert lookup.query == {"application": APP, "configurationAccountName": "store"}
    assert (start.method, start.path) == ("POST", f"/canary/{config_id(api)}")
    assert start.query == {
        "application": APP,
        "metricsAccountName": "prom-main",
        "configurationAccountName": "configs",
        "storageAccountName": "store",
    }
    assert start.headers["Content-Type"] == "application/json"
    assert "Authorization" not in start.headers
    window = (
        '"region":"eu-west-1","step":60,"start":"2026-12-05T07:00:00Z","end":"2026-12-05T07:30:00Z"'
    )
    # Argo's jobPayloadFormat, character for character.
    assert start.body == (
        '\n\t\t\t\t\t\t\t{\n\t\t\t\t\t\t\t\t"scopes": {\n\t\t\t\t\t\t\t\t\t\t'
        '"default":{"controlScope": {"scope":"app=checkout,version=stable",' + window + "}, "
        '"experimentScope": {"scope":"app=checkout,version=canary",' + window + "}}"
        "\n\t\t\t\t\t\t\t\t},\n"
        '                                "thresholds" : {\n'
        '                                    "pass": 90,\n'
        '                                    "marginal": 75\n'
        "                                }\n"
        "                            }"
    )
    assert json.loads(start.body)["thresholds"] == {"pass": 90, "marginal": 75}
    assert [(p.method, p.path) for p in polls] == [("GET", f"/canary/{execution}")] * 3


async def test_each_measurement_is_an_execution_of_its_own_even_inside_the_reuse_window(
    api: KayentaApi,
) -> None:
    # A 600 s reuse window would hand a second measurement of the same binding the
    # first one's score; a kayenta measurement is an execution, never shared or reused.
    limits = LimitsConfig(coalesce_window=600, max_attempts=1)
    spec = Metric.model_validate(metric(api))
    kind, config = provider_block(spec)
    async with ProviderRegistry(
        secrets=lambda s, k: None, limits=limits, settings=SETTINGS
    ) as registry:
        bound = registry.bind(kind, config)
        first = await bound.measure()
        second = await bound.measure()
    ids = [reading.metadata["canaryExecutionId"] for reading in (first, second)]
    assert ids[0] != ids[1]
    assert set(ids) <= set(api.executions)
    starts = [r for r in api.requests if r.method == "POST"]
    assert len(starts) == 2


@pytest.mark.parametrize(
    ("score", "phase", "value"),
    [
        (90.0, "Successful", "90"),
        (89.99, "Inconclusive", "89"),
        (75.0, "Inconclusive", "75"),
        (74.6, "Failed", "74"),
        (0.0, "Failed", "0"),
    ],
)
async def test_the_score_truncated_to_an_int_decides_as_argo_does(
    api: KayentaApi, registry: ProviderRegistry, score: float, phase: str, value: str
) -> None:
    api.score = score
    outcome = await measure_metric(registry, metric(api))
    assert (outcome.phase, outcome.message, outcome.value) == (phase, "", value)


def test_evaluate_is_argos_evaluate_result() -> None:
    assert [evaluate(s, 90, 75) for s in (100, 90, 89, 75, 74, -1)] == [
        "Successful",
        "Successful",
        "Inconclusive",
        "Inconclusive",
        "Failed",
        "Failed",
    ]


async def test_a_config_name_not_listed_is_an_error_naming_it(
    api: KayentaApi, registry: ProviderRegistry
) -> None:
    outcome = await measure_metric(registry, metric(api, canaryConfigName="no-such-config"))
    assert outcome.phase == "Error"
    assert outcome.message == (
        f"kayenta at {api.url}/canaryConfig?application={APP}&configurationAccountName=store: "
        f"no canary config named 'no-such-config' for application '{APP}' (2 listed)"
    )
    assert [r.method for r in api.requests] == ["GET"]  # nothing started


@pytest.mark.parametrize(
    ("canned", "where", "expected"),
    [
        (
            Canned(401, '{"error":"Unauthorized"}', path_prefix="/canaryConfig"),
            "/canaryConfig?application=checkout&configurationAccountName=store",
            'Invalid Response: {"error":"Unauthorized"} (HTTP 401)',
        ),
        (
            Canned(404, "", path_prefix="/canaryConfig"),
            "/canaryConfig?application=checkout&configurationAccountName=store",
            "Invalid Response (HTTP 404)",
        ),
        (
            Canned(400, '{"message":"scopes are required"}', path_prefix="/canary/"),
            "/canary/{id}?application=checkout&metricsAccountName=prom-main"
            "&configurationAccountName=configs&storageAccountName=store",
            'Invalid Response: {"message":"scopes are required"} (HTTP 400)',
        ),
        (
            Canned(500, "boom", path_prefix="/canaryConfig"),
            "/canaryConfig?application=checkout&configurationAccountName=store",
            "Invalid Response: boom (HTTP 500)",
        ),
    ],
    ids=["401-lookup", "404-lookup", "400-start", "500-lookup"],
)
async def test_an_answer_other_than_200_is_argos_invalid_response(
    api: KayentaApi, registry: ProviderRegistry, canned: Canned, where: str, expected: str
) -> None:
    api.script.append(canned)
    outcome = await measure_metric(registry, metric(api))
    assert outcome.phase == "Error"
    shown = where.replace("{id}", config_id(api))
    assert outcome.message == f"kayenta at {api.url}{shown}: {expected}"
    assert api.executions == {}


async def test_a_5xx_while_polling_is_an_error_naming_the_execution(
    api: KayentaApi, registry: ProviderRegistry
) -> None:
    api.polls_to_complete = 5
    api.script.append(Canned(503, "", path_prefix="/canary/01"))
    outcome = await measure_metric(registry, metric(api))
    (execution,) = api.executions
    assert outcome.phase == "Error"
    assert (
        outcome.message == f"kayenta at {api.url}/canary/{execution}: Invalid Response (HTTP 503)"
    )


async def test_429_on_a_poll_waits_for_retry_after_and_polls_the_same_execution(
    api: KayentaApi,
) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    limits = LimitsConfig(coalesce_window=0, max_attempts=2)
    async with ProviderRegistry(
        secrets=lambda s, k: None, limits=limits, sleep=sleep, settings=SETTINGS
    ) as registry:
        api.polls_to_complete = 2
        api.script.append(Canned(429, "slow down", {"Retry-After": "3"}, path_prefix="/canary/01"))
        outcome = await measure_metric(registry, metric(api))
        assert (outcome.phase, outcome.value) == ("Successful", "95")
        assert any(2.9 <= w <= 3.5 for w in waits), waits
        assert [r.method for r in api.requests].count("POST") == 1  # not started again
        assert len(api.executions) == 1

        limited = Canned(429, "slow down", {"Retry-After": "3"}, path_prefix="/canaryConfig")
        api.script.extend([limited, limited])
        exhausted = await measure_metric(registry, metric(api))
    assert exhausted.phase == "Error"
    assert exhausted.message == (
        f"kayenta at {api.url}/canaryConfig?application={APP}&configurationAccountName=store: "
        "Invalid Response: slow down (HTTP 429): rate limited; retry after 3s"
    )


async def test_a_slow_answer_is_a_timeout(api: KayentaApi, registry: ProviderRegistry) -> None:
    api.script.append(Canned(200, "[]", delay_s=3, path_prefix="/canaryConfig"))
    outcome = await measure_metric(registry, metric(api, timeout=0.3))
    assert outcome.phase == "Error"
    assert outcome.message == (
        f"kayenta at {api.url}/canaryConfig?application={APP}&configurationAccountName=store "
        "did not answer within 0.3s"
    )


@pytest.mark.parametrize(
    ("canned", "expected"),
    [
        (
            Canned(200, "<html>oops</html>", path_prefix="/canaryConfig"),
            "/canaryConfig?application=checkout&configurationAccountName=store: HTTP 200 but "
            "the body is not JSON (Expecting value: line 1 column 1 (char 0)): '<html>oops</html>'",
        ),
        (
            Canned(200, '{"id": "x"}', path_prefix="/canaryConfig"),
            "/canaryConfig?application=checkout&configurationAccountName=store: json: cannot "
            "unmarshal object into Go value of type []kayenta.canaryConfig",
        ),
        (
            Canned(200, '{"canaryExecutionId": ""}', path_prefix="/canary/"),
            "/canary/{id}?application=checkout&metricsAccountName=prom-main"
            "&configurationAccountName=configs&storageAccountName=store: Invalid canaryExecutionId",
        ),
        (
            Canned(200, '{"status": "running"}', path_prefix="/canary/01"),
            "/canary/{execution}: Missing Complete Status",
        ),
        (
            Canned(200, '{"complete": "yes"}', path_prefix="/canary/01"),
            "/canary/{execution}: .complete accessor error: yes is of the type string, "
            "expected bool",
        ),
        (
            Canned(
                200, '{"complete": true, "result": {"judgeResult": {}}}', path_prefix="/canary/01"
            ),
            "/canary/{execution}: Missing Score",
        ),
        (
            Canned(
                200,
                '{"complete": true, "result": {"judgeResult": {"score": {"score": "95"}}}}',
                path_prefix="/canary/01",
            ),
            "/canary/{execution}: .result.judgeResult.score.score accessor error: 95 is of the "
            "type string, expected float64",
        ),
    ],
    ids=[
        "html",
        "object-not-list",
        "empty-id",
        "no-complete",
        "complete-string",
        "no-score",
        "score-string",
    ],
)
async def test_garbage_bodies_are_errors_with_argos_messages(
    api: KayentaApi, registry: ProviderRegistry, canned: Canned, expected: str
) -> None:
    api.script.append(canned)
    outcome = await measure_metric(registry, metric(api))
    assert outcome.phase == "Error"
    execution = next(iter(api.executions), "")
    shown = expected.replace("{id}", config_id(api)).replace("{execution}", execution)
    assert outcome.message == f"kayenta at {api.url}{shown}"


async def test_an_address_with_userinfo_sends_basic_auth_and_never_shows_it(
    api: KayentaApi, registry: ProviderRegistry
) -> None:
    host = api.url.removeprefix("http://")
    address = f"http://argo:s3cret-token@{host}"
    api.script.append(Canned(403, "denied", path_prefix="/canaryConfig"))
    outcome = await measure_metric(registry, metric(api, address=address))
    assert outcome.phase == "Error"
    assert "s3cret-token" not in outcome.message and outcome.message.startswith(
        f"kayenta at {api.url}/canaryConfig"
    )
    assert api.requests[0].headers["Authorization"] == (
        "Basic " + base64.b64encode(b"argo:s3cret-token").decode()
    )


async def test_an_execution_that_never_completes_ends_at_the_measurement_timeout(
    api: KayentaApi, tmp_path: Path
) -> None:
    """The daemon's measurementTimeout cuts the polling off (Argo would poll for ever)."""
    api.never_complete = True
    settings = settings_for(tmp_path, providers=SETTINGS, measurement_timeout=1.0)
    run = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": "stuck-canary"},
        "spec": {"metrics": [metric(api)]},
    }
    async with running_daemon(settings) as (_, base), aiohttp.ClientSession() as http:
        runs = f"{base}/api/v1/namespaces/shop/analysisruns"
        async with http.post(runs, json=run) as response:
            assert response.status == 201, await response.text()
        status: dict[str, Any] = {}
        for _ in range(1500):  # until the first measurement is recorded
            async with http.get(f"{runs}/stuck-canary") as response:
                status = (await response.json()).get("status") or {}
            if any(r.get("measurements") for r in status.get("metricResults") or ()):
                break
            await asyncio.sleep(0.02)
    (result,) = status["metricResults"]
    assert result["error"] == 1 and result["consecutiveError"] == 1, result
    first = result["measurements"][0]
    assert first["phase"] == "Error"
    assert first["message"] == "canary: measurement timed out after 1s"
    (execution,) = api.executions
    polls = [r for r in api.requests if r.path == f"/canary/{execution}"]
    assert len(polls) >= 2  # it was polled, never complete, until cut off


def test_the_door_checks_the_block() -> None:
    api = KayentaApi()
    api.url = "http://127.0.0.1:9"
    check_block("kayenta", block(api))
    cases = [
        ({"address": "kayenta:8090"}, "address"),
        ({"application": ""}, "application"),
        ({"threshold": None}, "threshold"),
        ({"threshold": {"pass": "ninety", "marginal": 75}}, "threshold.pass"),
        ({"scopes": []}, "scopes"),
    ]
    for change, field in cases:
        with pytest.raises(ProviderConfigError) as caught:
            check_block("kayenta", {**block(api), **change})
        assert caught.value.field == field, (change, caught.value)
    broken = block(api)
    broken["scopes"][0]["controlScope"]["step"] = "60"
    with pytest.raises(ProviderConfigError) as caught:
        check_block("kayenta", broken)
    assert caught.value.field == "scopes[0].controlScope.step"


def test_argos_docs_thresholds_spelling_is_read_and_extra_scope_fields_are_dropped() -> None:
    api = KayentaApi()
    api.url = "http://127.0.0.1:9"
    config = block(api)
    config["thresholds"] = config.pop("threshold")
    config["scopes"][0]["controlScope"]["location"] = "eu"  # not a ScopeDetail field
    body = json.loads(payload(config))
    assert body["thresholds"] == {"pass": 90, "marginal": 75}
    assert list(body["scopes"]["default"]["controlScope"]) == [
        "scope",
        "region",
        "step",
        "start",
        "end",
    ]


async def test_a_kayenta_metric_has_no_range_data(registry: ProviderRegistry) -> None:
    with pytest.raises(ProviderUnsupported):
        await registry.series("kayenta", {"address": "http://127.0.0.1:9"}, "q", *_window(), 60)


def _window() -> tuple[Any, Any]:
    from datetime import UTC, datetime, timedelta

    end = datetime.now(UTC)
    return end - timedelta(minutes=5), end

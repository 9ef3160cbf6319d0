"""JudgeMetric and the `judge:` provider block, over an in-memory series source."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from analysisd.engine import judging as metric_module
from analysisd.engine.judge_block import parse_judge_block
from analysisd.engine.judging import JudgeMetric, named_configs
from analysisd.judge.errors import ConfigError
from analysisd.judge.metric import verdict_for_score
from providers.base import ProviderHTTPError

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
STABLE = [10.0, 11.0, 9.5, 10.2, 10.8, 9.9, 10.1, 10.4, 10.6, 9.7]
CANARY_CONFIG = {
    "metrics": [
        {
            "name": "errors",
            "groups": ["service"],
            "analysisConfigurations": {"canary": {"direction": "increase"}},
        }
    ],
    "classifier": {"groupWeights": {"service": 100}},
}


class SeriesByQuery:
    """Answers series() from a dict of query -> values and records every call."""

    def __init__(self, answers: Mapping[str, list[float]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, Mapping[str, Any], str, datetime, datetime, float]] = []

    async def series(
        self,
        kind: str,
        config: Mapping[str, Any],
        query: str,
        start: datetime,
        end: datetime,
        step: float,
    ) -> list[float]:
        self.calls.append((kind, config, query, start, end, step))
        return list(self.answers[query])


def block(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "source": {"prometheus": {"address": "http://127.0.0.1:9090"}},
        "lookback": "10m",
        "step": "1m",
        "scopes": {"baseline": 'version="stable"', "canary": 'version="canary"'},
        "queries": {"errors": "sum(rate(errors{${scope}}[1m]))"},
        "canaryConfig": CANARY_CONFIG,
    }
    base.update(overrides)
    return base


def source_with(canary: list[float]) -> SeriesByQuery:
    return SeriesByQuery(
        {
            'sum(rate(errors{version="stable"}[1m]))': STABLE,
            'sum(rate(errors{version="canary"}[1m]))': canary,
        }
    )


async def test_scope_placeholder_is_filled_per_side_and_window_ends_now() -> None:
    source = source_with(STABLE)
    await JudgeMetric(source, clock=lambda: NOW).measure(block())
    queries = sorted(call[2] for call in source.calls)
    assert queries == [
        'sum(rate(errors{version="canary"}[1m]))',
        'sum(rate(errors{version="stable"}[1m]))',
    ]
    kind, config, _, start, end, step = source.calls[0]
    assert (kind, dict(config)) == ("prometheus", {"address": "http://127.0.0.1:9090"})
    assert (start, end, step) == (NOW - timedelta(minutes=10), NOW, 60.0)


async def test_identical_canary_passes_with_score_100() -> None:
    reading = await JudgeMetric(source_with(STABLE), clock=lambda: NOW).measure(block())
    assert reading.result["score"] == 100.0
    assert reading.result["classification"] == "Pass"
    assert reading.value == "100"
    assert verdict_for_score(reading.result) == "Successful"
    assert reading.metadata["errors.classification"] == "Pass"
    assert reading.metadata["errors.why"] == "canary errors and baseline data are identical: Pass"
    assert reading.metadata["errors.baseline"].startswith("n=10 mean=")


async def test_higher_canary_fails_and_exposes_per_metric_evidence() -> None:
    canary = [v * 3 for v in STABLE]
    reading = await JudgeMetric(source_with(canary), clock=lambda: NOW).measure(block())
    errors = reading.result["metrics"]["errors"]
    assert errors["classification"] == "High"
    assert errors["interval"][0] > 0
    assert errors["effectSize"] == pytest.approx(3.0)
    assert (errors["baselineCount"], errors["canaryCount"]) == (10, 10)
    assert reading.result["score"] == 0.0
    assert verdict_for_score(reading.result) == "Failed"


async def test_separate_baseline_and_canary_queries() -> None:
    source = SeriesByQuery({"b": STABLE, "c": STABLE})
    queries = {"errors": {"baseline": "b", "canary": "c"}}
    reading = await JudgeMetric(source, clock=lambda: NOW).measure(block(queries=queries))
    assert sorted(call[2] for call in source.calls) == ["b", "c"]
    assert reading.result["classification"] == "Pass"


async def test_judging_runs_in_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[int] = []
    real_judge = metric_module.judge  # type: ignore[attr-defined]

    def recording_judge(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return real_judge(*args, **kwargs)

    monkeypatch.setattr(metric_module, "judge", recording_judge)
    await JudgeMetric(source_with(STABLE), clock=lambda: NOW).measure(block())
    assert threads and threads[0] != threading.get_ident()


async def test_canary_config_by_name_from_the_config_dir(tmp_path: Path) -> None:
    (tmp_path / "checkout.json").write_text(json.dumps(CANARY_CONFIG))
    spec = block(canaryConfigName="checkout")
    del spec["canaryConfig"]
    metric = JudgeMetric(source_with(STABLE), config_dir=tmp_path, clock=lambda: NOW)
    reading = await metric.measure(spec)
    assert reading.result["classification"] == "Pass"


async def test_canary_config_dir_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "checkout.json").write_text(json.dumps(CANARY_CONFIG))
    spec = block(canaryConfigName="checkout")
    del spec["canaryConfig"]
    monkeypatch.setenv("ANALYSISD_CANARY_CONFIG_DIR", str(tmp_path))
    reading = await JudgeMetric(source_with(STABLE), clock=lambda: NOW).measure(spec)
    assert reading.result["classification"] == "Pass"
    monkeypatch.delenv("ANALYSISD_CANARY_CONFIG_DIR")
    with pytest.raises(ConfigError, match="ANALYSISD_CANARY_CONFIG_DIR"):
        await JudgeMetric(source_with(STABLE), clock=lambda: NOW).measure(spec)


def test_verdict_for_score_follows_argo_kayenta_mapping() -> None:
    assert verdict_for_score({"score": 95, "pass": 95, "marginal": 75}) == "Successful"
    assert verdict_for_score({"score": 80, "pass": 95, "marginal": 75}) == "Inconclusive"
    assert verdict_for_score({"score": 75, "pass": 95, "marginal": 75}) == "Inconclusive"
    assert verdict_for_score({"score": 74.99, "pass": 95, "marginal": 75}) == "Failed"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"source": None}, "judge.source: required"),
        ({"source": {"graphite": {}}}, "judge.source.graphite: cannot fetch series"),
        ({"queries": {"errors": "sum(rate(errors[1m]))"}}, r"no \$\{scope\} placeholder"),
        ({"queries": {"errors": {"baseline": "b"}}}, "needs both baseline and canary"),
        ({"queries": {"latency": "x{${scope}}"}}, "the canary config has no metric 'latency'"),
        ({"queries": {}}, "no query for canary config metric 'errors'"),
        ({"queries": ["x"]}, "judge.queries: expected metric name -> query"),
        ({"lookback": "10 minutes"}, "judge.lookback"),
        ({"lookback": None}, "judge.lookback: required"),
        ({"step": "20m"}, "longer than judge.lookback"),
        ({"thresholds": {"pass": 50, "marginal": 60}}, "must not exceed"),
        ({"canaryConfigName": "x"}, "exactly one of canaryConfig"),
        ({"colour": "blue"}, "judge.colour: unknown setting"),
        ({"canaryConfig": {"metrics": []}}, "judge.canaryConfig.metrics: required"),
    ],
)
def test_bad_judge_blocks_name_the_field(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_judge_block(block(**overrides))


def test_config_name_without_directory_or_escaping_it_is_refused(tmp_path: Path) -> None:
    spec = block(canaryConfigName="checkout")
    del spec["canaryConfig"]
    with pytest.raises(ConfigError, match="no canary config directory"):
        parse_judge_block(spec)
    spec["canaryConfigName"] = "../etc/passwd"
    with pytest.raises(ConfigError, match="not a plain config name"):
        parse_judge_block(spec, named=named_configs(tmp_path))


def test_a_config_metric_without_a_query_is_refused() -> None:
    two_metrics = {
        "metrics": [
            {"name": "errors", "groups": ["service"]},
            {"name": "latency", "groups": ["service"]},
        ]
    }
    with pytest.raises(ConfigError, match="no query for canary config metric 'latency'"):
        parse_judge_block(block(canaryConfig=two_metrics))


class FailingSource(SeriesByQuery):
    async def series(
        self,
        kind: str,
        config: Mapping[str, Any],
        query: str,
        start: datetime,
        end: datetime,
        step: float,
    ) -> list[float]:
        if "canary" in query:
            raise ProviderHTTPError(
                f"prometheus: query {query} answered 503", status=503, provider="prometheus"
            )
        return await super().series(kind, config, query, start, end, step)


async def test_a_failing_fetch_raises_the_provider_error_itself() -> None:
    source = FailingSource(source_with(STABLE).answers)
    with pytest.raises(ProviderHTTPError, match="answered 503") as caught:
        await JudgeMetric(source, clock=lambda: NOW).measure(block())
    assert caught.value.status == 503


async def test_kayenta_inline_template_serves_as_the_query() -> None:
    config = {
        "judge": {"name": "NetflixACAJudge-v1.0"},
        "metrics": [
            {
                "name": "errors",
                "groups": ["service"],
                "query": {
                    "type": "prometheus",
                    "customInlineTemplate": "PromQL:sum(rate(errors{${scope}}[1m]))",
                },
            }
        ],
    }
    spec = block(canaryConfig=config)
    del spec["queries"]
    source = source_with(STABLE)
    reading = await JudgeMetric(source, clock=lambda: NOW).measure(spec)
    assert reading.result["classification"] == "Pass"
    assert reading.result["warnings"] == []
    assert len(source.calls) == 2

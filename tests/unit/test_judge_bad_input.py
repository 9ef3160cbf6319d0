"""Bad or awkward input to the judge: each has a defined outcome and a message a user can act on."""

from __future__ import annotations

import math
from typing import Any

import pytest

from analysisd.judge.classifier import Label, NaNStrategy, classify
from analysisd.judge.config import parse_canary_config
from analysisd.judge.errors import ConfigError, MannWhitneyError, SeriesError
from analysisd.judge.judge import judge
from analysisd.judge.mannwhitney import mann_whitney
from analysisd.judge.scorer import ScoreLabel

NAN = math.nan
BASELINE = [10.0, 11.0, 9.5, 10.2, 10.8, 9.9, 10.1, 10.4]


def config(canary: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    metric = {"name": "m", "groups": ["g"], "analysisConfigurations": {"canary": canary or {}}}
    return {"metrics": [metric], **extra}


def judge_one(baseline: list[Any], canary: list[Any], **settings: Any) -> Any:
    return judge(parse_canary_config(config(settings)), {"m": (baseline, canary)})


def test_empty_canary_series_is_nodata_and_fails_the_canary() -> None:
    result = judge_one(BASELINE, [])
    metric = result.metrics[0]
    assert metric.classification is Label.NODATA
    assert metric.outcome.reason == "Missing data for m"
    # A lone Nodata metric is 100% of the metrics: Kayenta forces the score to 0.
    assert result.score == 0.0
    assert result.classification is ScoreLabel.FAIL
    assert result.reason == "Canary Failed: 50% or more metrics returned NODATA"


def test_empty_series_with_must_have_data_is_nodata_fail_metric() -> None:
    outcome = classify(BASELINE, [], data_required=True, name="m")
    assert outcome.classification is Label.NODATA_FAIL_METRIC
    assert not outcome.critical


def test_empty_series_with_replace_strategy_passes() -> None:
    outcome = classify(BASELINE, [], nan_strategy=NaNStrategy.REPLACE)
    assert outcome.classification is Label.PASS


def test_all_nan_canary_is_removed_to_nodata() -> None:
    result = judge_one(BASELINE, [NAN, "NaN", None])
    assert result.metrics[0].classification is Label.NODATA
    assert result.metrics[0].canary_points == 3
    assert result.metrics[0].canary_stats.count == 0


def test_all_nan_canary_with_replace_becomes_zeros_and_reads_low() -> None:
    result = judge_one(BASELINE, [NAN] * 8, nanStrategy="replace")
    assert result.metrics[0].classification is Label.LOW
    assert result.metrics[0].canary_stats.max == 0.0


def test_one_point_each_is_judged_with_tiny_noise() -> None:
    outcome = classify([1.0], [3.0])
    assert outcome.classification is Label.HIGH
    assert outcome.noise_added


def test_one_canary_point_against_a_baseline_runs_the_rank_test() -> None:
    outcome = classify(BASELINE, [30.0])
    assert outcome.stage == "mann_whitney"
    assert outcome.classification is Label.HIGH


def test_equal_constant_series_pass_as_identical() -> None:
    outcome = classify([4.0] * 10, [4.0] * 10)
    assert outcome.classification is Label.PASS
    assert outcome.stage == "identical"


def test_different_constant_series_are_separated() -> None:
    assert classify([4.0] * 10, [2.0] * 10).classification is Label.LOW
    assert classify([0.0] * 10, [2.0] * 10).classification is Label.HIGH


def test_constant_series_cannot_give_an_interval() -> None:
    with pytest.raises(MannWhitneyError, match="all observations are tied"):
        mann_whitney([4.0] * 5, [4.0] * 5)


def test_series_of_different_lengths_are_judged_normally() -> None:
    canary = [v * 2 for v in BASELINE[:3]]
    result = judge_one(BASELINE, canary)
    metric = result.metrics[0]
    assert (metric.baseline_stats.count, metric.canary_stats.count) == (8, 3)
    assert metric.classification is Label.HIGH


def test_outliers_are_removed_when_configured() -> None:
    canary = [*BASELINE, 500.0]
    kept = judge_one(BASELINE, canary)
    removed = judge_one(BASELINE, canary, outliers={"strategy": "remove"})
    assert kept.metrics[0].canary_stats.count == 9
    assert removed.metrics[0].canary_stats.count == 8
    assert removed.metrics[0].canary_stats.max < 500.0


def test_non_numeric_point_names_metric_side_and_index() -> None:
    with pytest.raises(SeriesError, match=r"m: canary\[1\]: expected a number, got 'fast'"):
        judge_one(BASELINE, [1.0, "fast"])


def test_infinite_point_is_judged_like_kayenta_by_default() -> None:
    result = judge_one(BASELINE, [*BASELINE, math.inf, math.inf, math.inf])
    assert result.metrics[0].classification in {Label.PASS, Label.HIGH}
    assert result.metrics[0].canary_stats.count == 11


def test_infinite_point_is_refused_when_asked() -> None:
    with pytest.raises(SeriesError, match=r"m: canary\[1\]: infinite value"):
        judge(
            parse_canary_config(config()),
            {"m": (BASELINE, [1.0, math.inf])},
            reject_infinite=True,
        )


def test_series_for_a_metric_the_config_lacks_is_refused() -> None:
    with pytest.raises(ConfigError, match="Could not find metric config for other"):
        judge(parse_canary_config(config()), {"other": (BASELINE, BASELINE)})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "canary config: expected an object"),
        ({}, "metrics: required"),
        ({"metrics": [{"groups": ["g"]}]}, r"metrics\[0\].name: required"),
        ({"metrics": [{"name": "a", "groups": "g"}]}, r"metrics\[0\].groups: expected a list"),
        (
            {"metrics": [{"name": "a"}, {"name": "a"}]},
            r"metrics\[1\].name: duplicate metric name 'a'",
        ),
        (
            config({"effectSize": {"allowedIncrease": "lots"}}),
            r"canary.effectSize.allowedIncrease: expected a number, got 'lots'",
        ),
        (
            config({"outliers": {"strategy": "remove", "outlierFactor": 0}}),
            "outlierFactor: must be greater than zero",
        ),
        (
            config(classifier={"groupWeights": {"g": -5}}),
            "classifier.groupWeights.g: must not be negative",
        ),
    ],
)
def test_invalid_config_names_the_field(data: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_canary_config(data)


def test_marginal_above_pass_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"marginal \(90\) must not exceed scoreThresholds.pass"):
        judge(
            parse_canary_config(config()),
            {"m": (BASELINE, BASELINE)},
            pass_threshold=80,
            marginal_threshold=90,
        )


@pytest.mark.parametrize(
    ("canary", "fragment"),
    [
        ({"direction": "INCREASE"}, "canary.direction: unknown value 'INCREASE'"),
        ({"critical": "true"}, "canary.critical: 'true' is not a boolean"),
        ({"nanStrategy": "zero"}, "canary.nanStrategy: unknown value 'zero'"),
        ({"critcal": True}, "canary.critcal: unknown setting"),
    ],
)
def test_kayenta_silent_fallbacks_warn_and_fail_in_strict_mode(
    canary: dict[str, Any], fragment: str
) -> None:
    lenient = parse_canary_config(config(canary))
    assert any(fragment in warning for warning in lenient.warnings)
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        parse_canary_config(config(canary), strict=True)


def test_weights_not_summing_to_100_warn() -> None:
    data = {
        "metrics": [{"name": "a", "groups": ["x"]}, {"name": "b", "groups": ["y"]}],
        "classifier": {"groupWeights": {"x": 30, "y": 30}},
    }
    parsed = parse_canary_config(data)
    assert any("weights sum to 60, not 100" in w for w in parsed.warnings)


def test_another_kayenta_judge_name_warns() -> None:
    parsed = parse_canary_config({**config(), "judge": {"name": "dredd-v1.0"}})
    assert any("judge.name: 'dredd-v1.0'" in w for w in parsed.warnings)

"""Kayenta behaviours the vectors do not pin down (issue 15), each as a case derived from
Kayenta's source (spinnaker/kayenta kayenta-judge, kayenta-mannwhitney) or from R."""

from __future__ import annotations

import math
from typing import Any

import pytest

from analysisd.judge.classifier import Label
from analysisd.judge.config import effective_settings, parse_canary_config
from analysisd.judge.judge import judge
from analysisd.judge.mannwhitney import normal_quantile
from analysisd.judge.scorer import ScoredMetric, score
from analysisd.judge.transforms import iqr_outliers

INF = math.inf


def one_metric(canary: dict[str, Any] | None = None) -> dict[str, Any]:
    block = {"canary": canary or {}}
    return {"metrics": [{"name": "m", "groups": ["g"], "analysisConfigurations": block}]}


# R 4.2.2 qnorm is Wichura's AS241 (src/nmath/qnorm.c); these are its doubles.
# scipy's ndtri, which the judge used, is 1-2 ulp off at each of them.
@pytest.mark.parametrize(
    ("p", "expected"),
    [(0.05, -1.6448536269514726), (0.025, -1.9599639845400538), (0.005, -2.5758293035489)],
    ids=["conf-0.90", "conf-0.95", "conf-0.99"],
)
def test_normal_quantile_is_rs_qnorm_to_the_last_bit(p: float, expected: float) -> None:
    assert normal_quantile(p) == expected


# IQRDetector(reduceSensitivity = true): fences min(P1, Q1 - f*IQR), max(P99, Q3 + f*IQR).
@pytest.mark.parametrize(
    ("data", "flags"),
    [
        # 50 lies beyond Q3 + 3*IQR (25.75) but below P99 (895.5): kept; 1000 is not.
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 50, 1000], [False] * 11 + [True]),
        # and the same on the low side.
        ([-1000, -50, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [True] + [False] * 11),
    ],
    ids=["upper-floor-p99", "lower-floor-p1"],
)
def test_reduced_sensitivity_fences_reach_the_1st_and_99th_percentiles(
    data: list[float], flags: list[bool]
) -> None:
    assert iqr_outliers([float(v) for v in data], 3.0, reduce_sensitivity=True) == flags


def test_judge_outlier_removal_keeps_points_inside_the_percentile_floor() -> None:
    config = parse_canary_config(one_metric({"outliers": {"strategy": "remove"}}))
    data = [1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 50, 1000]
    result = judge(config, {"m": (data, data)})
    assert result.metrics[0].canary_stats.count == 11


def test_cles_thresholds_default_to_one_half() -> None:
    config = parse_canary_config(one_metric({"effectSize": {"measure": "cles"}}))
    settings = effective_settings(config.metrics[0])
    for key in ("allowedIncrease", "allowedDecrease", "criticalIncrease", "criticalDecrease"):
        assert settings[key] == 0.5, key


def test_cles_explicit_threshold_is_kept() -> None:
    config = parse_canary_config(
        one_metric({"effectSize": {"measure": "cles", "allowedIncrease": 0.9}})
    )
    settings = effective_settings(config.metrics[0])
    assert settings["allowedIncrease"] == 0.9
    assert settings["criticalIncrease"] == 0.5


def test_cles_metric_shifted_up_is_high_with_default_thresholds() -> None:
    # CLES 0.7975 >= 0.5: High (with the old 1.0 default a CLES metric was never High).
    config = parse_canary_config(one_metric({"effectSize": {"measure": "cles"}}))
    baseline = [10.0, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20] * 2
    canary = [v + 4 for v in baseline]
    result = judge(config, {"m": (baseline, canary)})
    assert result.metrics[0].classification is Label.HIGH
    assert result.metrics[0].outcome.effect_size == pytest.approx(0.7975206611570248, abs=1e-12)
    assert result.score == 0.0


def test_error_result_is_never_critical() -> None:
    # One point against one point at the same rank: "all observations are tied" -> Error.
    data = {
        "metrics": [
            {
                "name": "e",
                "groups": ["a"],
                "analysisConfigurations": {"canary": {"critical": True}},
            },
            {"name": "p", "groups": ["a"]},
        ]
    }
    result = judge(parse_canary_config(data), {"e": ([0.0], [1.0]), "p": ([1.0, 2], [1.0, 2])})
    error = result.metrics[0]
    assert error.classification is Label.ERROR
    assert error.outcome.critical is False
    assert result.score == 100.0
    assert result.reason is None


@pytest.mark.parametrize(
    ("results", "weights", "expected"),
    [
        # a = 66.67 (2 of 3), b only Error -> counts 100; no weights: 50/50 -> 83.33
        (
            [("Pass", "a"), ("Pass", "a"), ("High", "a"), ("Error", "b")],
            {},
            83.33,
        ),
        # a weighted 60 (score 50); b (no data -> 100) and c (0) share the other 40
        (
            [("Pass", "a"), ("High", "a"), ("Error", "b"), ("High", "c")],
            {"a": 60.0},
            50.0,
        ),
        # every group without data: 100
        ([("Error", "a"), ("Error", "b")], {}, 100.0),
    ],
    ids=["nodata-group-counts-100", "unweighted-share-counts-nodata-groups", "all-nodata"],
)
def test_group_without_data_counts_as_100_and_shares_weight(
    results: list[tuple[str, str]], weights: dict[str, float], expected: float
) -> None:
    scored = [ScoredMetric(Label(label), [group]) for label, group in results]
    outcome = score(scored, weights)
    assert outcome.summary_score == expected


def test_infinite_points_are_judged_not_refused() -> None:
    # Kayenta ranks +Inf; muMax = +Inf - 1 = +Inf, and R's zeroin (Kayenta's Brent port)
    # stops at once on an infinite end: tol_act = 2*eps*|b| + tol/2 is +Inf there.
    # So the interval is [+Inf, +Inf], the bound 0.25*|estimate| is +Inf, and
    # lower > bound is false: Pass, exactly as Kayenta would report.
    config = parse_canary_config(one_metric())
    canary = [100.0 + i for i in range(9)] + [INF]
    baseline = [1.0 + i for i in range(10)]
    result = judge(config, {"m": (baseline, canary)})
    metric = result.metrics[0]
    assert metric.classification is Label.PASS
    assert metric.canary_stats.count == 10
    assert metric.outcome.ci_lower == INF and metric.outcome.ci_upper == INF


def test_infinities_on_both_sides_are_ranked_as_kayenta_ranks_nan() -> None:
    # x - mu = +Inf - +Inf is NaN, which NaturalRanking(NaNStrategy.MAXIMAL) ranks as +Inf.
    config = parse_canary_config(one_metric())
    result = judge(config, {"m": ([1.0, 2, 3, 4, INF], [INF] * 5)})
    assert result.metrics[0].classification is Label.PASS
    assert result.metrics[0].outcome.stage == "mann_whitney"


def test_string_boolean_warning_says_kayenta_fails_the_judgement() -> None:
    config = parse_canary_config(one_metric({"critical": "true"}))
    assert any("Kayenta would fail the whole judgement" in warning for warning in config.warnings)
    assert config.metrics[0].critical is False

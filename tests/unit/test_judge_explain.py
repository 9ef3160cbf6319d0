"""Each metric's explanation: the evidence and one sentence a person can act on."""

from __future__ import annotations

import math
from typing import Any

import pytest

from analysisd.judge.config import parse_canary_config
from analysisd.judge.judge import MetricResult, judge

BASELINE = [100.0, 102.0, 98.0, 101.0, 99.0, 100.5, 99.5, 100.2, 101.2, 98.8]


def judge_one(baseline: list[Any], canary: list[Any], **canary_cfg: Any) -> MetricResult:
    block = {"canary": canary_cfg}
    config = parse_canary_config(
        {"metrics": [{"name": "latency", "groups": ["g"], "analysisConfigurations": block}]}
    )
    return judge(config, {"latency": (baseline, canary)}).metrics[0]


def test_high_critical_metric_says_how_much_higher_and_which_threshold() -> None:
    metric = judge_one(
        BASELINE,
        [v * 1.31 for v in BASELINE],
        critical=True,
        effectSize={"allowedIncrease": 1.1, "criticalIncrease": 1.2},
    )
    assert metric.explanation.why == (
        "canary latency is 31% higher than baseline (mean ratio 1.31 \u2265 allowed 1.1):"
        " High, critical"
    )


def test_low_metric_names_the_decrease_threshold() -> None:
    metric = judge_one(BASELINE, [v * 0.5 for v in BASELINE])
    assert metric.explanation.why == (
        "canary latency is 50% lower than baseline (mean ratio 0.5 \u2264 allowed 1): Low"
    )


def test_shift_within_the_allowed_effect_passes_and_says_so() -> None:
    metric = judge_one(BASELINE, [v * 1.05 for v in BASELINE], effectSize={"allowedIncrease": 1.1})
    assert metric.explanation.why == (
        "canary latency is 5% higher than baseline, within the allowed effect"
        " (mean ratio 1.05 < allowed 1.1): Pass"
    )


def test_shift_against_the_direction_passes_and_says_so() -> None:
    metric = judge_one(BASELINE, [v * 0.5 for v in BASELINE], direction="increase")
    assert metric.explanation.why == (
        "canary latency is 50% lower than baseline, but only increases count"
        " (direction increase): Pass"
    )


def test_overlapping_samples_pass_because_the_interval_reaches_the_band() -> None:
    metric = judge_one(BASELINE, [*reversed(BASELINE[1:]), 100.1])
    why = metric.explanation.why
    assert why.startswith("canary latency is ")
    assert "but the 98% interval of the shift [" in why
    assert why.endswith("around zero: Pass")


def test_cles_metric_reads_as_a_share_of_pairs() -> None:
    metric = judge_one(BASELINE, [v + 5 for v in BASELINE], effectSize={"measure": "cles"})
    assert metric.explanation.why == (
        "canary latency is above baseline in 100% of canary/baseline pairs"
        " (CLES 1 \u2265 allowed 0.5): High"
    )
    effect = metric.as_dict()["effect"]
    assert (effect["name"], effect["allowedIncrease"]) == ("CLES", 0.5)


def test_missing_canary_data_names_the_side() -> None:
    assert judge_one(BASELINE, []).explanation.why == "no canary data for latency: Nodata"
    required = judge_one(BASELINE, [], mustHaveData=True).explanation.why
    assert required == "no canary data for latency and the metric must have data: NodataFailMetric"


def test_identical_and_error_outcomes_explain_themselves() -> None:
    assert judge_one(BASELINE, BASELINE).explanation.why == (
        "canary latency and baseline data are identical: Pass"
    )
    assert judge_one([0.0], [1.0]).explanation.why == (
        "latency could not be compared (cannot compute confidence interval when all"
        " observations are tied): Error"
    )


def test_explanation_fields_in_plain_data() -> None:
    data = judge_one(BASELINE, [v * 2 for v in BASELINE], direction="increase").as_dict()
    assert data["baseline"] == {"n": 10, "mean": pytest.approx(100.02), "median": 100.1}
    assert data["canary"]["n"] == 10
    assert data["direction"] == "increase"
    assert data["confLevel"] == 0.98
    assert data["effect"]["value"] == pytest.approx(2.0)
    assert data["interval"][0] > 0 and data["why"].endswith(": High")


def test_infinities_are_json_safe_in_plain_data() -> None:
    data = judge_one([1.0 + i for i in range(10)], [100.0 + i for i in range(9)] + [math.inf])
    plain = data.as_dict()
    assert plain["interval"] == ["+Inf", "+Inf"]
    assert plain["canary"]["mean"] == "+Inf"
    assert data.explanation.why == (
        "canary latency is higher than baseline (mean +Inf vs 5.5), but an infinite point"
        " makes the 98% interval [+Inf, +Inf] or the tolerance band \u00b1+Inf infinite,"
        " so the rank test cannot flag it: Pass"
    )

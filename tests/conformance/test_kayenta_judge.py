"""Every case of vectors/kayenta-judge.json (Kayenta's NetflixACAJudge), one test each."""

from __future__ import annotations

import math
import statistics
from typing import Any

import pytest

from analysisd.judge import stats, transforms
from analysisd.judge.classifier import (
    ClassifierSettings,
    Direction,
    EffectSizeMeasure,
    Label,
    MetricClassification,
    NaNStrategy,
    classify,
    classify_mean_inequality,
)
from analysisd.judge.config import effective_settings, lookup, parse_canary_config
from analysisd.judge.errors import MannWhitneyError
from analysisd.judge.judge import judge
from analysisd.judge.mannwhitney import WilcoxonDiff, mann_whitney, wilcoxon_diff
from analysisd.judge.scorer import (
    ScoredMetric,
    classify_score,
    final_passes,
    interval_stops,
    score,
)
from tests.vectors import case_id, load_plain

FILE = "kayenta-judge.json"
VECTORS = load_plain(FILE)
META = VECTORS["meta"]
SECTIONS = [name for name in VECTORS if name != "meta"]


def cases(section: str) -> list[Any]:
    return [pytest.param(c, id=case_id(FILE, section, c)) for c in VECTORS.get(section, [])]


def num(value: Any) -> float:
    return math.nan if value == "NaN" else float(value)


def nums(values: list[Any]) -> list[float]:
    return [num(v) for v in values]


def close(actual: float | None, expected: Any, tol: float) -> bool:
    assert actual is not None
    want = num(expected)
    if math.isnan(want):
        return math.isnan(actual)
    return abs(actual - want) <= tol


def tol_for(case: dict[str, Any], key: str, default: float = 1e-9) -> float:
    tol = case.get("abs_tol")
    if isinstance(tol, dict):
        return float(tol.get(key, default))
    return float(tol) if tol is not None else default


def test_every_section_has_a_runner() -> None:
    assert set(SECTIONS) <= set(RUNNERS), f"no runner for {set(SECTIONS) - set(RUNNERS)}"


@pytest.mark.parametrize("case", cases("mann_whitney"))
def test_mann_whitney(case: dict[str, Any]) -> None:
    inputs, expected = case["inputs"], case["expected"]
    kind = case["kind"]
    if kind == "wilcoxon_diff":
        value = wilcoxon_diff(inputs["mu"], inputs["zq"], nums(inputs["x"]), nums(inputs["y"]))
        assert close(value, expected["value"], tol_for(case, "value"))
        if "derived" in case:
            assert close(value, case["derived"]["value_full_precision"], 1e-9)
    elif kind == "ci_estimate":
        result = mann_whitney(
            nums(inputs["x_experiment"]), nums(inputs["y_control"]), inputs["conf_level"]
        )
        assert close(result.lower, expected["ci_low"], tol_for(case, "ci"))
        assert close(result.upper, expected["ci_high"], tol_for(case, "ci"))
        assert close(result.estimate, expected["estimate"], tol_for(case, "estimate"))
    elif kind == "intermediates":
        x, y = nums(inputs["x_experiment"]), nums(inputs["y_control"])
        result = mann_whitney(x, y, inputs["conf_level"])
        w = WilcoxonDiff(x, y)
        tol = tol_for(case, "value", 1e-6)
        assert close(result.mu_min, expected["mumin"], tol)
        assert close(result.mu_max, expected["mumax"], tol)
        for k, zq in ((1, expected["zq_lower"]), (2, expected["zq_upper"])):
            assert close(w(result.mu_min, zq), expected[f"f_lower_{k}"], tol)
            assert close(w(result.mu_max, zq), expected[f"f_upper_{k}"], tol)
    else:
        pytest.fail(f"unknown mann_whitney kind {kind!r}")


def run_classifier(inputs: dict[str, Any]) -> MetricClassification:
    cfg, how = inputs["classifier"], inputs["classify"]
    settings = ClassifierSettings(
        tolerance=cfg["tolerance"],
        conf_level=cfg["confLevel"],
        effect_size_thresholds=tuple(cfg["effectSizeThresholds"]),
        critical_thresholds=tuple(cfg["criticalThresholds"]),
        effect_size_measure=EffectSizeMeasure(cfg.get("effectSizeMeasure", "meanRatio")),
    )
    nan_strategy = NaNStrategy(how["nanStrategy"])
    # The classifier sees series after the judge's NaN strategy, as in Kayenta.
    clean = (
        transforms.replace_nans if nan_strategy is NaNStrategy.REPLACE else transforms.remove_nans
    )
    return classify(
        clean(nums(inputs["control"])),
        clean(nums(inputs["experiment"])),
        settings=settings,
        direction=Direction(how["direction"]),
        nan_strategy=nan_strategy,
        critical=how["isCriticalMetric"],
        data_required=how["isDataRequired"],
        name="test-metric",
    )


def check_classification(result: MetricClassification, expected: dict[str, Any]) -> None:
    if "classification" in expected:
        assert result.classification == expected["classification"]
    if "critical" in expected:
        assert result.critical == expected["critical"]
    if expected.get("deviation") is not None:
        assert close(result.deviation, expected["deviation"], 1e-9)
    if expected.get("reason_non_empty"):
        assert result.reason


def check_derived(result: MetricClassification, derived: dict[str, Any]) -> None:
    check_classification(result, derived)
    if "stage" in derived:
        assert result.stage == derived["stage"]
    if derived.get("noise_added"):
        assert result.noise_added
        return  # the numbers depend on the random noise; only the label is stable
    for key, attr in (
        ("ci_low", "ci_lower"),
        ("ci_high", "ci_upper"),
        ("estimate", "estimate"),
        ("effect_size", "effect_size"),
        ("upper_bound", "upper_bound"),
        ("lower_bound", "lower_bound"),
    ):
        if derived.get(key) is not None:
            assert close(getattr(result, attr), derived[key], 1e-9), key


@pytest.mark.parametrize("case", cases("classifier"))
def test_classifier(case: dict[str, Any]) -> None:
    result = run_classifier(case["inputs"])
    check_classification(result, case["expected"])
    check_derived(result, case.get("derived", {}))


@pytest.mark.parametrize("case", cases("mean_inequality_classifier"))
def test_mean_inequality_classifier(case: dict[str, Any]) -> None:
    inputs = case["inputs"]
    label = classify_mean_inequality(
        nums(inputs["control"]), nums(inputs["experiment"]), Direction(inputs["direction"])
    )
    assert label == case["expected"]["classification"]


@pytest.mark.parametrize("case", cases("scorer"))
def test_scorer(case: dict[str, Any]) -> None:
    inputs = case["inputs"]
    results = [
        ScoredMetric(Label(r["classification"]), r["groups"], r["critical"], r.get("muted", False))
        for r in inputs["results"]
    ]
    outcome = score(results, inputs["groupWeights"])
    expected = case["expected"]
    assert outcome.summary_score == pytest.approx(expected["summaryScore"], abs=1e-9)
    groups = {g.name: g for g in outcome.group_scores}
    derived = case.get("derived", {})
    for name, value in {
        **derived.get("groupScores", {}),
        **expected.get("groupScores", {}),
    }.items():
        assert groups[name].score == pytest.approx(value, abs=1e-9)
    for name, no_data in derived.get("groupNoData", {}).items():
        assert groups[name].no_data == no_data
    if "forcedZeroReason" in derived:
        assert outcome.forced_zero_reason == derived["forcedZeroReason"]


@pytest.mark.parametrize("case", cases("score_classifier"))
def test_score_classifier(case: dict[str, Any]) -> None:
    i = case["inputs"]
    assert (
        classify_score(i["score"], i["pass"], i["marginal"]) == case["expected"]["classification"]
    )


@pytest.mark.parametrize("case", cases("orchestrator"))
def test_orchestrator(case: dict[str, Any]) -> None:
    i, expected = case["inputs"], case["expected"]
    if case["kind"] == "final_aggregate":
        passed = final_passes(i["finalCanaryScore"], i["marginal"], i["pass"])
        assert passed == expected["didPassThresholds"]
    elif case["kind"] == "per_interval":
        status = "TERMINAL" if interval_stops(i["canaryScore"], i["marginal"]) else "SUCCEEDED"
        assert status == expected["status"]
    else:
        pytest.fail(f"unknown orchestrator kind {case['kind']!r}")


@pytest.mark.parametrize("case", cases("detectors"))
def test_detectors(case: dict[str, Any]) -> None:
    i = case["inputs"]
    data = nums(i["data"])
    if case["detector"] == "ksigma":
        assert transforms.ksigma_outliers(data, i["k"]) == case["expected"]["outliers"]
        return
    assert case["detector"] == "iqr"
    found = transforms.iqr_outliers(data, i["factor"], i["reduceSensitivity"])
    assert found == case["expected"]["outliers"]
    derived = case.get("derived", {})
    if "judge_mode_reduceSensitivity_true_factor_3" in derived:
        judged = transforms.iqr_outliers(data, 3.0, reduce_sensitivity=True)
        assert judged == derived["judge_mode_reduceSensitivity_true_factor_3"]
    if "reduceSensitivity_true_factor_1.5" in derived:
        reduced = transforms.iqr_outliers(data, 1.5, reduce_sensitivity=True)
        assert reduced == derived["reduceSensitivity_true_factor_1.5"]


def check_sample(values: list[float], expected: dict[str, Any]) -> None:
    assert len(values) == expected["length"]
    low, high = expected["sample_mean_within"]
    assert low <= statistics.mean(values) <= high
    if "sample_sd_within" in expected:
        low, high = expected["sample_sd_within"]
        assert low <= statistics.stdev(values) <= high
    if "sample_variance_within" in expected:
        low, high = expected["sample_variance_within"]
        assert low <= statistics.variance(values) <= high


@pytest.mark.parametrize("case", cases("transforms"))
def test_transforms(case: dict[str, Any]) -> None:
    op, i, expected = case["op"], case["inputs"], case["expected"]
    if op == "removeNaNs":
        assert transforms.remove_nans(nums(i["data"])) == expected["result"]
    elif op == "replaceNaNs":
        assert transforms.replace_nans(nums(i["data"]), i["value"]) == expected["result"]
    elif op == "removeOutliers":
        data = nums(i["data"])
        if i["detector"] == "iqr":
            flags = transforms.iqr_outliers(data, i["factor"], i["reduceSensitivity"])
        else:
            flags = transforms.ksigma_outliers(data, i["k"])
        assert transforms.remove_flagged(data, flags) == expected["result"]
    elif op == "addGaussianNoise":
        rng = transforms.JavaRandom(i["seed"])
        check_sample(
            transforms.add_gaussian_noise(nums(i["data"]), i["mean"], i["stdev"], rng), expected
        )
    elif op == "randomNormal":
        rng = transforms.JavaRandom(i["seed"])
        check_sample(
            transforms.random_normal(i["mean"], i["stdev"], i["numSamples"], rng), expected
        )
    else:
        pytest.fail(f"unknown transform {op!r}")


@pytest.mark.parametrize("case", cases("statistics"))
def test_statistics(case: dict[str, Any]) -> None:
    op, i, expected = case["op"], case["inputs"], case["expected"]
    if op == "summary":
        summary = stats.summary(nums(i["values"])).as_dict()
        for key, value in expected.items():
            assert close(float(summary[key]), value, tol_for(case, key, 1e-12)), key
    elif op == "percentile_r7":
        got_list = [stats.percentile_r7(nums(i["values"]), p) for p in i["p"]]
        for one, want in zip(got_list, expected["result"], strict=True):
            assert close(one, want, tol_for(case, "result", 1e-12))
    elif op == "mean_ratio":
        got = stats.mean_ratio(nums(i["control"]), nums(i["experiment"]))
        assert close(got, expected["result"], 1e-12)
    elif op == "cohen_d":
        got = stats.cohen_d(nums(i["b"]), nums(i["a"]))
        assert close(got, expected["result"], tol_for(case, "result", 1e-9))
    elif op == "cles":
        got = stats.cles(nums(i["control"]), nums(i["experiment"]))
        assert close(got, expected["result"], 1e-12)
    else:
        pytest.fail(f"unknown statistic {op!r}")


def metric_config(analysis_configurations: Any) -> dict[str, Any]:
    return {
        "metrics": [
            {"name": "m", "groups": ["g"], "analysisConfigurations": analysis_configurations}
        ]
    }


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """{"direction": x, "outliers.strategy": y} -> the canary block they stand for."""
    canary: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        node = canary
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return {"canary": canary}


@pytest.mark.parametrize("case", cases("config_parsing"))
def test_config_parsing(case: dict[str, Any]) -> None:
    i, expected = case["inputs"], case["expected"]
    if "lookups" in i:
        got = [lookup(i["map"], path) for path in i["lookups"]]
        assert got == expected["results"]
        return
    ac = i["analysisConfigurations"] if "analysisConfigurations" in i else nest(i)
    config = parse_canary_config(metric_config(ac))
    settings = effective_settings(config.metrics[0])
    for key, value in expected.items():
        assert settings[key] == value, key
    if "analysisConfigurations" not in i:
        # Every value Kayenta silently replaced is reported, and only those.
        replaced = [key for key, value in i.items() if expected.get(key, value) != value]
        assert len(config.warnings) == len(replaced), config.warnings


@pytest.mark.parametrize("case", cases("issue_cases"))
def test_issue_cases(case: dict[str, Any]) -> None:
    i = case["inputs"]
    settings = ClassifierSettings(
        tolerance=i["tolerance"],
        conf_level=i["confLevel"],
        effect_size_thresholds=tuple(i["effectSizeThresholds"]),
        critical_thresholds=tuple(i["criticalThresholds"]),
    )
    result = classify(
        nums(i["control"]),
        nums(i["experiment"]),
        settings=settings,
        direction=Direction(i["direction"]),
        critical=i["isCriticalMetric"],
    )
    check_classification(result, case["reported"])
    check_derived(result, case.get("derived", {}))


@pytest.mark.parametrize("case", cases("judge_end_to_end"))
def test_judge_end_to_end(case: dict[str, Any]) -> None:
    i, expected = case["inputs"], case["expected"]
    config = parse_canary_config(i["canaryConfig"])
    pairs = {
        p["name"]: (p["values"]["control"], p["values"]["experiment"]) for p in i["metricSetPairs"]
    }
    thresholds = i["scoreThresholds"]
    result = judge(
        config, pairs, pass_threshold=thresholds["pass"], marginal_threshold=thresholds["marginal"]
    )
    for metric in result.metrics:
        check_classification(metric.outcome, expected["metrics"][metric.name])
        check_derived(metric.outcome, case.get("derived", {}).get(metric.name, {}))
    assert {g.name: g.score for g in result.group_scores} == pytest.approx(expected["groupScores"])
    assert result.score == pytest.approx(expected["summaryScore"])
    assert result.classification == expected["classification"]
    stops = interval_stops(result.score, thresholds["marginal"])
    assert ("TERMINAL" if stops else "SUCCEEDED") == expected["orchestratorIntervalStatus"]
    passes = final_passes(result.score, thresholds["marginal"], thresholds["pass"])
    assert passes == expected["orchestratorFinalPass"]


def test_all_tied_samples_raise_kayentas_message() -> None:
    with pytest.raises(MannWhitneyError, match="all observations are tied"):
        mann_whitney([2.0, 2.0], [2.0, 2.0])


RUNNERS = {
    "mann_whitney",
    "classifier",
    "mean_inequality_classifier",
    "scorer",
    "score_classifier",
    "orchestrator",
    "detectors",
    "transforms",
    "statistics",
    "config_parsing",
    "issue_cases",
    "judge_end_to_end",
}

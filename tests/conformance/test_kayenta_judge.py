"""Every case of vectors/kayenta-judge.json (Kayenta's NetflixACAJudge), one test each."""

from __future__ import annotations

import math
import re
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
from analysisd.judge.mannwhitney import (
    WilcoxonDiff,
    mann_whitney,
    normal_quantile,
    wilcoxon_diff,
)
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


_SPELLED = {"NaN": math.nan, "Inf": math.inf, "+Inf": math.inf, "-Inf": -math.inf}


def num(value: Any) -> float:
    return _SPELLED[value] if isinstance(value, str) and value in _SPELLED else float(value)


def nums(values: list[Any]) -> list[float]:
    return [num(v) for v in values]


_TOL_TEXT = re.compile(r"\b(abs|rel)\w*\s*[:=]?\s*([0-9][0-9.]*(?:e[-+]?[0-9]+)?)", re.I)


def _tolerance_entry(entry: Any, key: str) -> float | None:
    """A tolerance given as a number, a {field: number} map, or prose ("use abs 1e-9")."""
    if isinstance(entry, bool) or entry is None:
        return None
    if isinstance(entry, int | float):
        return float(entry)
    if isinstance(entry, dict):
        for name in (key, key.split("_")[0], "default", "value"):
            if name in entry:
                return _tolerance_entry(entry[name], key)
    return None


def _meta_tolerance(meta: dict[str, Any], kind: str, key: str) -> float | None:
    found = _tolerance_entry(meta.get(f"{kind}_tol"), key)
    if found is not None:
        return found
    table = meta.get("tolerances")
    if not isinstance(table, dict):
        return None
    for name in (key, key.split("_")[0], "default"):
        entry = table.get(name)
        if isinstance(entry, str):
            for which, number in _TOL_TEXT.findall(entry):
                if which.lower() == kind:
                    return float(number)
        else:
            value = _tolerance_entry(entry, key) if isinstance(entry, dict) else None
            if value is None and isinstance(entry, dict):
                value = _tolerance_entry(entry.get(kind), key)
            if value is None and isinstance(entry, int | float) and kind == "abs":
                value = float(entry)
            if value is not None:
                return value
    return None


def tolerances(
    case: dict[str, Any], key: str, meta: dict[str, Any], default_abs: float = 1e-9
) -> tuple[float, float]:
    """(abs, rel) for one compared field: the case's own, else the file meta's, else the default.

    A case giving either of abs_tol / rel_tol sets both (the other is 0), so a
    case can tighten its file's tolerance as well as loosen it.
    """
    own_abs = _tolerance_entry(case.get("abs_tol"), key)
    own_rel = _tolerance_entry(case.get("rel_tol"), key)
    if own_abs is not None or own_rel is not None:
        return own_abs or 0.0, own_rel or 0.0
    meta_abs = _meta_tolerance(meta, "abs", key)
    meta_rel = _meta_tolerance(meta, "rel", key)
    if meta_abs is not None or meta_rel is not None:
        return meta_abs or 0.0, meta_rel or 0.0
    return default_abs, 0.0


def within(actual: float | None, expected: Any, abs_tol: float, rel_tol: float = 0.0) -> bool:
    assert actual is not None
    want = num(expected)
    if math.isnan(want):
        return math.isnan(actual)
    if math.isinf(want) or math.isinf(actual):
        return actual == want
    return abs(actual - want) <= max(abs_tol, rel_tol * abs(want))


def close_to(
    case: dict[str, Any], key: str, actual: float | None, expected: Any, default_abs: float = 1e-9
) -> bool:
    return within(actual, expected, *tolerances(case, key, META, default_abs))


def test_every_section_has_a_runner() -> None:
    assert set(SECTIONS) <= set(RUNNERS), f"no runner for {set(SECTIONS) - set(RUNNERS)}"


@pytest.mark.parametrize("case", cases("mann_whitney"))
def test_mann_whitney(case: dict[str, Any]) -> None:
    inputs, expected = case["inputs"], case["expected"]
    kind = case["kind"]
    if kind == "wilcoxon_diff":
        value = wilcoxon_diff(inputs["mu"], inputs["zq"], nums(inputs["x"]), nums(inputs["y"]))
        assert close_to(case, "value", value, expected["value"])
        if "value_full_precision" in case.get("derived", {}):
            assert within(value, case["derived"]["value_full_precision"], 1e-9)
    elif kind == "ci_estimate":
        result = mann_whitney(
            nums(inputs["x_experiment"]), nums(inputs["y_control"]), inputs["conf_level"]
        )
        assert close_to(case, "ci_low", result.lower, expected["ci_low"])
        assert close_to(case, "ci_high", result.upper, expected["ci_high"])
        assert close_to(case, "estimate", result.estimate, expected["estimate"])
    elif kind == "intermediates":
        x, y = nums(inputs["x_experiment"]), nums(inputs["y_control"])
        result = mann_whitney(x, y, inputs["conf_level"])
        w = WilcoxonDiff(x, y)
        assert close_to(case, "mumin", result.mu_min, expected["mumin"], 1e-6)
        assert close_to(case, "mumax", result.mu_max, expected["mumax"], 1e-6)
        z_quant = normal_quantile((1.0 - inputs["conf_level"]) / 2)
        for k, zq in ((1, expected["zq_lower"]), (2, expected["zq_upper"])):
            assert close_to(
                case,
                f"zq_{'lower' if k == 1 else 'upper'}",
                -z_quant if k == 1 else z_quant,
                zq,
                1e-6,
            )
            assert close_to(
                case, f"f_lower_{k}", w(result.mu_min, zq), expected[f"f_lower_{k}"], 1e-6
            )
            assert close_to(
                case, f"f_upper_{k}", w(result.mu_max, zq), expected[f"f_upper_{k}"], 1e-6
            )
    elif kind == "normal_quantile":
        value = normal_quantile(inputs["p"])
        assert close_to(case, "value", value, expected["value"])
    else:
        pytest.fail(f"unknown mann_whitney kind {kind!r}")


def settings_from(cfg: dict[str, Any]) -> ClassifierSettings:
    measure = EffectSizeMeasure(cfg.get("effectSizeMeasure", "meanRatio"))
    neutral = 0.5 if measure is EffectSizeMeasure.CLES else 1.0
    return ClassifierSettings(
        tolerance=cfg.get("tolerance", 0.25),
        conf_level=cfg.get("confLevel", 0.98),
        effect_size_thresholds=tuple(cfg.get("effectSizeThresholds", (neutral, neutral))),
        critical_thresholds=tuple(cfg.get("criticalThresholds", (neutral, neutral))),
        effect_size_measure=measure,
    )


def run_classifier(inputs: dict[str, Any]) -> MetricClassification:
    cfg, how = inputs["classifier"], inputs["classify"]
    nan_strategy = NaNStrategy(how.get("nanStrategy", "remove"))
    # The classifier sees series after the judge's NaN strategy, as in Kayenta.
    clean = (
        transforms.replace_nans if nan_strategy is NaNStrategy.REPLACE else transforms.remove_nans
    )
    return classify(
        clean(nums(inputs["control"])),
        clean(nums(inputs["experiment"])),
        settings=settings_from(cfg),
        direction=Direction(how.get("direction", "either")),
        nan_strategy=nan_strategy,
        critical=how.get("isCriticalMetric", False),
        data_required=how.get("isDataRequired", False),
        name="test-metric",
    )


def check_classification(
    case: dict[str, Any], result: MetricClassification, expected: dict[str, Any]
) -> None:
    if "classification" in expected:
        assert result.classification == expected["classification"]
    if "critical" in expected:
        assert result.critical == expected["critical"]
    if expected.get("deviation") is not None:
        assert close_to(case, "deviation", result.deviation, expected["deviation"])
    if expected.get("reason_non_empty"):
        assert result.reason
    for key, attr in (
        ("ci_low", "ci_lower"),
        ("ci_high", "ci_upper"),
        ("estimate", "estimate"),
        ("effect_size", "effect_size"),
        ("upper_bound", "upper_bound"),
        ("lower_bound", "lower_bound"),
    ):
        if expected.get(key) is not None and not result.noise_added:
            assert close_to(case, key, getattr(result, attr), expected[key]), key


def check_derived(
    case: dict[str, Any], result: MetricClassification, derived: dict[str, Any]
) -> None:
    if "stage" in derived:
        assert result.stage == derived["stage"]
    if derived.get("noise_added"):
        assert result.noise_added
        # the numbers depend on the random noise; only the label is stable
        derived = {k: v for k, v in derived.items() if k in ("classification", "critical")}
    check_classification(case, result, derived)


@pytest.mark.parametrize("case", cases("classifier"))
def test_classifier(case: dict[str, Any]) -> None:
    result = run_classifier(case["inputs"])
    check_classification(case, result, case["expected"])
    check_derived(case, result, case.get("derived", {}))


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
        ScoredMetric(
            Label(r["classification"]),
            r.get("groups", []),
            r.get("critical", False),
            r.get("muted", False),
        )
        for r in inputs["results"]
    ]
    outcome = score(results, inputs.get("groupWeights") or {})
    expected = case["expected"]
    if "summaryScore" in expected:
        assert close_to(case, "summaryScore", outcome.summary_score, expected["summaryScore"])
    groups = {g.name: g for g in outcome.group_scores}
    derived = case.get("derived", {})
    for name, value in {
        **derived.get("groupScores", {}),
        **expected.get("groupScores", {}),
    }.items():
        assert close_to(case, "groupScores", groups[name].score, value), name
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


def check_sample(
    case: dict[str, Any], values: list[float], expected: dict[str, Any], draw_matters: bool
) -> None:
    """Check a random draw; without a seed only what does not depend on the draw."""
    for key, want in expected.items():
        if key == "length":
            assert len(values) == want
        elif key in ("result", "values"):
            assert len(values) == len(want)
            for one, value in zip(values, want, strict=True):
                assert close_to(case, key, one, value)
        elif key in ("head", "first", "value"):
            assert close_to(case, key, values[0], want)
        elif key in ("sample_mean_within", "sample_sd_within", "sample_variance_within"):
            if draw_matters:
                continue  # unseeded: the statistic depends on the draw
            low, high = want
            statistic = {
                "sample_mean_within": statistics.mean,
                "sample_sd_within": statistics.stdev,
                "sample_variance_within": statistics.variance,
            }[key]
            got = statistic(values) if len(values) > 1 or key == "sample_mean_within" else 0.0
            assert low <= got <= high, key
        else:
            pytest.fail(f"unknown expectation {key!r} for a random draw")


def draw(inputs: dict[str, Any]) -> tuple[transforms.JavaRandom, bool]:
    """The seeded generator, or an arbitrary one and whether the draw then matters."""
    seed = inputs.get("seed")
    if seed is not None:
        return transforms.JavaRandom(int(seed)), False
    return transforms.JavaRandom(0), float(inputs.get("stdev", 1.0)) != 0.0


@pytest.mark.parametrize("case", cases("transforms"))
def test_transforms(case: dict[str, Any]) -> None:
    op, i, expected = case["op"], case["inputs"], case["expected"]
    if op == "removeNaNs":
        assert transforms.remove_nans(nums(i["data"])) == expected["result"]
    elif op == "replaceNaNs":
        assert transforms.replace_nans(nums(i["data"]), i.get("value", 0.0)) == expected["result"]
    elif op == "removeOutliers":
        data = nums(i["data"])
        if i["detector"] == "iqr":
            flags = transforms.iqr_outliers(
                data, i.get("factor", 1.5), i.get("reduceSensitivity", False)
            )
        else:
            flags = transforms.ksigma_outliers(data, i.get("k", 3.0))
        assert transforms.remove_flagged(data, flags) == expected["result"]
    elif op == "addGaussianNoise":
        rng, draw_matters = draw(i)
        noisy = transforms.add_gaussian_noise(
            nums(i["data"]), i.get("mean", 0.0), i.get("stdev", 1.0), rng
        )
        check_sample(case, noisy, expected, draw_matters)
    elif op == "randomNormal":
        rng, draw_matters = draw(i)
        sample = transforms.random_normal(
            i.get("mean", 0.0), i.get("stdev", 1.0), i.get("numSamples", 1), rng
        )
        check_sample(case, sample, expected, draw_matters)
    else:
        pytest.fail(f"unknown transform {op!r}")


@pytest.mark.parametrize("case", cases("statistics"))
def test_statistics(case: dict[str, Any]) -> None:
    op, i, expected = case["op"], case["inputs"], case["expected"]
    if op == "summary":
        summary = stats.summary(nums(i["values"])).as_dict()
        for key, value in expected.items():
            assert close_to(case, key, float(summary[key]), value, 1e-12), key
    elif op == "percentile_r7":
        got_list = [stats.percentile_r7(nums(i["values"]), p) for p in i["p"]]
        for one, want in zip(got_list, expected["result"], strict=True):
            assert close_to(case, "result", one, want, 1e-12)
    elif op == "mean_ratio":
        got = stats.mean_ratio(nums(i["control"]), nums(i["experiment"]))
        assert close_to(case, "result", got, expected["result"], 1e-12)
    elif op == "cohen_d":
        got = stats.cohen_d(nums(i["b"]), nums(i["a"]))
        assert close_to(case, "result", got, expected["result"], 1e-9)
    elif op == "cles":
        got = stats.cles(nums(i["control"]), nums(i["experiment"]))
        assert close_to(case, "result", got, expected["result"], 1e-12)
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
    result = classify(
        nums(i["control"]),
        nums(i["experiment"]),
        settings=settings_from(i),
        direction=Direction(i.get("direction", "either")),
        critical=i.get("isCriticalMetric", False),
        data_required=i.get("isDataRequired", False),
    )
    derived = case.get("derived") or {}
    # reported: null means nobody reported numbers; the derived values are the expectation.
    expected = case.get("reported") or derived
    assert expected, "an issue case needs reported or derived values"
    check_classification(case, result, {k: v for k, v in expected.items() if k != "stage"})
    check_derived(case, result, derived)


@pytest.mark.parametrize("case", cases("judge_end_to_end"))
def test_judge_end_to_end(case: dict[str, Any]) -> None:
    i, expected = case["inputs"], case["expected"]
    config = parse_canary_config(i["canaryConfig"])
    pairs = {
        p["name"]: (p["values"].get("control", []), p["values"].get("experiment", []))
        for p in i["metricSetPairs"]
    }
    thresholds = i.get("scoreThresholds") or {}
    result = judge(
        config,
        pairs,
        pass_threshold=thresholds.get("pass"),
        marginal_threshold=thresholds.get("marginal"),
    )
    derived = case.get("derived", {})
    for metric in result.metrics:
        if metric.name in expected.get("metrics", {}):
            check_classification(case, metric.outcome, expected["metrics"][metric.name])
        check_derived(case, metric.outcome, derived.get(metric.name, {}))
    if "groupScores" in expected:
        groups = {g.name: g.score for g in result.group_scores}
        for name, value in expected["groupScores"].items():
            assert close_to(case, "groupScores", groups[name], value), name
    if "summaryScore" in expected:
        assert close_to(case, "summaryScore", result.score, expected["summaryScore"])
    if "classification" in expected:
        assert result.classification == expected["classification"]
    marginal, pass_t = thresholds.get("marginal"), thresholds.get("pass")
    if "orchestratorIntervalStatus" in expected:
        stops = interval_stops(result.score, marginal)
        assert ("TERMINAL" if stops else "SUCCEEDED") == expected["orchestratorIntervalStatus"]
    if "orchestratorFinalPass" in expected:
        passes = final_passes(result.score, marginal, pass_t)
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

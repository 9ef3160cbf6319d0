"""Differential property test: analysisd's judge against a plain reference of NetflixACAJudge.

The reference below is written from Kayenta's source (kayenta-judge NetflixACAJudge,
IQRDetector, MannWhitneyClassifier, EffectSizes, WeightedSumScorer, ScoringHelper,
ThresholdScoreClassifier; kayenta-mannwhitney MannWhitney and KayentaBrentSolver),
as directly as Python allows: ranks by sorting, no counting tricks, no numpy. Only
the Gaussian noise for two constant samples is shared (Kayenta's is unseeded; both
sides must draw the same numbers to be compared).

Known and excluded: -0.0 in the data (Scala's `distinct` tells -0.0 from 0.0,
Python sets do not), so the strategies never produce it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from statistics import NormalDist
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysisd.judge.config import parse_canary_config
from analysisd.judge.judge import judge
from analysisd.judge.mannwhitney import mann_whitney
from analysisd.judge.transforms import add_gaussian_noise

# ---------------------------------------------------------------- reference


class Tied(Exception):
    """MannWhitney: cannot compute confidence interval when all observations are tied."""


def ref_percentile(data: Sequence[float], p: float) -> float:
    """commons-math Percentile, EstimationType.R_7."""
    values = sorted(data)
    n = len(values)
    if n == 1:
        return values[0]
    pos = n if p == 100 else 1 + (n - 1) * p / 100
    if pos < 1:
        return values[0]
    if pos >= n:
        return values[n - 1]
    floor = math.floor(pos)
    lower, upper = values[floor - 1], values[floor]
    return lower + (pos - floor) * (upper - lower)


def jmin(a: float, b: float) -> float:
    return math.nan if math.isnan(a) or math.isnan(b) else min(a, b)


def jmax(a: float, b: float) -> float:
    return math.nan if math.isnan(a) or math.isnan(b) else max(a, b)


def ref_remove_outliers(data: list[float], factor: float) -> list[float]:
    """IQRDetector(factor, reduceSensitivity = true) then Transforms.removeOutliers."""
    if not data:
        return data
    p25, p75 = ref_percentile(data, 25), ref_percentile(data, 75)
    iqr = p75 - p25
    lower = jmin(ref_percentile(data, 1), p25 - factor * iqr)
    upper = jmax(ref_percentile(data, 99), p75 + factor * iqr)
    return [x for x in data if not (x > upper or x < lower)]


def ranks(values: list[float]) -> list[float]:
    """NaturalRanking(NaNStrategy.MAXIMAL, TiesStrategy.AVERAGE)."""
    recoded = [math.inf if math.isnan(v) else v for v in values]
    order = sorted(range(len(recoded)), key=lambda i: recoded[i])
    out = [0.0] * len(recoded)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and recoded[order[j + 1]] == recoded[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + 1 + j + 1) / 2
        i = j + 1
    return out


def wilcoxon_diff(mu: float, quantile: float, x: list[float], y: list[float]) -> float:
    nx, ny = float(len(x)), float(len(y))
    dr = ranks([v - mu for v in x] + y)
    ties: dict[float, int] = {}
    for r in dr:
        ties[r] = ties.get(r, 0) + 1
    dz = sum(dr[: len(x)]) - nx * (nx + 1) / 2 - nx * ny / 2
    correction = (0.0 if dz == 0 else math.copysign(1.0, dz)) * 0.5
    tie_sum = sum(t**3 - t for t in ties.values())
    sigma = math.sqrt((nx * ny / 12) * ((nx + ny + 1) - tie_sum / ((nx + ny) * (nx + ny - 1))))
    if sigma == 0:
        raise Tied
    return (dz - correction) / sigma - quantile


def div(a: float, b: float) -> float:
    if b == 0:
        return (
            math.nan
            if a == 0 or math.isnan(a)
            else math.copysign(math.inf, a) * (math.copysign(1.0, b))
        )
    return a / b


def brent(ax: float, bx: float, fa: float, fb: float, f: Any) -> float:
    """KayentaBrentSolver.brentDirect (R's zeroin2), tol 1e-4, 1001 iterations."""
    a, b, c, fc = ax, bx, ax, fa
    tol = 1e-4
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    for _ in range(1001):
        prev_step = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * 2.220446049250313e-16 * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0:
            return b
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:
                t1 = div(fb, fa)
                p = cb * t1
                q = 1.0 - t1
            else:
                q, t1, t2 = div(fa, fc), div(fb, fc), div(fb, fa)
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0.0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(prev_step * q / 2):
                new_step = div(p, q)
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return b


def ref_mann_whitney(x: list[float], y: list[float], conf: float) -> tuple[float, float, float]:
    mu_min, mu_max = min(x) - max(y), max(x) - min(y)

    def root(zq: float) -> float:
        f_lower = wilcoxon_diff(mu_min, zq, x, y)
        f_upper = wilcoxon_diff(mu_max, zq, x, y)
        if f_lower <= 0:
            return mu_min
        if f_upper >= 0:
            return mu_max
        return brent(mu_min, mu_max, f_lower, f_upper, lambda m: wilcoxon_diff(m, zq, x, y))

    z = NormalDist().inv_cdf((1.0 - conf) / 2)
    lower, upper = root(-z), root(z)
    f_lower, f_upper = wilcoxon_diff(mu_min, 0, x, y), wilcoxon_diff(mu_max, 0, x, y)
    estimate = brent(mu_min, mu_max, f_lower, f_upper, lambda m: wilcoxon_diff(m, 0, x, y))
    return lower, upper, estimate


def mean(values: list[float]) -> float:
    """commons-math StatUtils.mean (Kayenta's EffectSizes): the sum's mean plus the mean
    residual. A plain sum / n differs in the last bit, e.g. a meanRatio of exactly 0.8."""
    xbar = sum(values) / len(values)
    return xbar + sum(v - xbar for v in values) / len(values)


def ref_effect(control: list[float], experiment: list[float], measure: str) -> float:
    if measure == "cles":
        m, n = len(experiment), len(control)
        r1 = sum(ranks(experiment + control)[:m])
        return (2 * r1 - m * (m + 1)) / (2 * n * m)
    cm, em = mean(control), mean(experiment)
    return math.nan if cm == 0.0 or em == 0.0 else em / cm


def ref_classify(
    control: list[float], experiment: list[float], cfg: dict[str, Any]
) -> tuple[str, bool]:
    """MannWhitneyClassifier.classify -> (label, critical)."""
    critical, required = cfg["critical"], cfg["mustHaveData"]
    if not experiment or not control:
        if cfg["nanStrategy"] == "remove":
            if required and not critical:
                return "NodataFailMetric", False
            return "Nodata", critical
        return "Pass", False
    if sorted(experiment) == sorted(control):
        return "Pass", False
    if len(set(experiment) | set(control)) == 1:
        return "Pass", False
    if len(set(experiment)) == 1 and len(set(control)) == 1:
        experiment = add_gaussian_noise(experiment, 0.0, experiment[0] * 1e-5)
        control = add_gaussian_noise(control, 0.0, control[0] * 1e-5)
    lower, upper, estimate = ref_mann_whitney(experiment, control, 0.98)
    effect = ref_effect(control, experiment, cfg["measure"])
    bound = 0.25 * abs(estimate)
    allowed_dec, allowed_inc = cfg["allowed"]
    crit_dec, crit_inc = cfg["criticalThresholds"]
    direction = cfg["direction"]
    high = (
        direction in ("increase", "either")
        and lower > bound
        and (math.isnan(effect) or effect >= allowed_inc)
    )
    low = (
        direction in ("decrease", "either")
        and upper < -bound
        and (math.isnan(effect) or effect <= allowed_dec)
    )
    label = "High" if high else "Low" if low else "Pass"
    if critical and label == "High" and (math.isnan(effect) or effect >= crit_inc):
        return "High", True
    if critical and label == "Low" and (math.isnan(effect) or effect <= crit_dec):
        return "Low", True
    return label, False


def ref_metric(baseline: list[float], canary: list[float], cfg: dict[str, Any]) -> tuple[str, bool]:
    def transform(values: list[float]) -> list[float]:
        if cfg["nanStrategy"] == "remove":
            data = [v for v in values if not math.isnan(v)]
        else:
            data = [0.0 if math.isnan(v) else v for v in values]
        if cfg["outliers"] == "remove":
            data = ref_remove_outliers(data, cfg["factor"])
        return data

    try:
        return ref_classify(transform(baseline), transform(canary), cfg)
    except Tied:
        return "Error", False  # NetflixACAJudge's catch block: no .critical(...)


def round_half_up(value: float) -> float:
    return float(Decimal(repr(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def ref_score(
    results: list[tuple[str, bool, list[str], bool]], weights: dict[str, float]
) -> tuple[dict[str, float], float]:
    """ScoringHelper (muted out) + WeightedSumScorer -> (group scores, summary score)."""
    scored = [r for r in results if not r[3]]
    labels: dict[str, list[str]] = {}
    for label, _, groups, _ in scored:
        for group in groups:
            labels.setdefault(group, []).append(label)
    group_scores: dict[str, float] = {}
    no_data: dict[str, bool] = {}
    for group, group_labels in labels.items():
        passed = group_labels.count("Pass")
        total = passed + sum(group_labels.count(k) for k in ("High", "Low", "NodataFailMetric"))
        no_data[group] = total == 0
        group_scores[group] = 0.0 if total == 0 else passed / total * 100
    if any(critical and label != "Pass" for label, critical, _, _ in scored):
        return group_scores, 0.0
    nodata = sum(1 for r in scored if r[0] == "Nodata")
    if scored and nodata / len(scored) * 100 >= 50:
        return group_scores, 0.0
    unweighted = set(labels) - set(weights)
    shared = (100 - sum(weights.values())) / len(unweighted) if unweighted else 0.0
    summary = 0.0
    for group, group_score in group_scores.items():
        effective = 100.0 if no_data[group] else group_score
        summary += effective * (weights.get(group, shared) / 100)
    return group_scores, round_half_up(summary)


def ref_verdict(score: float, pass_t: float, marginal_t: float) -> str:
    return "Pass" if score >= pass_t else "Marginal" if score >= marginal_t else "Fail"


# ---------------------------------------------------------------- strategies

GROUPS = ["latency", "errors", "saturation"]
values = st.one_of(
    st.integers(-3, 12).map(float),
    st.integers(0, 400).map(lambda v: v / 8),
    st.sampled_from([math.nan, math.nan, math.inf, -math.inf, 1000.0]),
)
series = st.lists(values, max_size=16)


@st.composite
def metric_configs(draw: Any, index: int) -> dict[str, Any]:
    measure = draw(st.sampled_from(["meanRatio", "cles"]))
    neutral = 0.5 if measure == "cles" else 1.0
    thresholds = {
        key: draw(st.one_of(st.none(), st.sampled_from([neutral * 0.8, neutral, neutral * 1.2])))
        for key in ("allowedIncrease", "allowedDecrease", "criticalIncrease", "criticalDecrease")
    }
    effect = {"measure": measure, **{k: v for k, v in thresholds.items() if v is not None}}
    canary = {
        "direction": draw(st.sampled_from(["increase", "decrease", "either"])),
        "nanStrategy": draw(st.sampled_from(["remove", "replace"])),
        "critical": draw(st.booleans()),
        "mustHaveData": draw(st.booleans()),
        "muted": draw(st.booleans()),
        "effectSize": effect,
        "outliers": {
            "strategy": draw(st.sampled_from(["keep", "remove"])),
            "outlierFactor": draw(st.sampled_from([0.5, 1.5, 3.0])),
        },
    }
    groups = draw(st.lists(st.sampled_from(GROUPS), min_size=1, max_size=2, unique=True))
    return {"name": f"m{index}", "groups": groups, "analysisConfigurations": {"canary": canary}}


@st.composite
def judgements(draw: Any) -> tuple[dict[str, Any], dict[str, tuple[list[float], list[float]]]]:
    count = draw(st.integers(1, 5))
    metrics = [draw(metric_configs(i)) for i in range(count)]
    weighted = draw(st.lists(st.sampled_from(GROUPS), unique=True, max_size=3))
    weights = {g: float(draw(st.sampled_from([10, 25, 40, 50]))) for g in weighted}
    pass_t = float(draw(st.sampled_from([60, 80, 95, 100])))
    marginal_t = float(draw(st.sampled_from([0, 50, 75])))
    config = {
        "metrics": metrics,
        "classifier": {
            "groupWeights": weights,
            "scoreThresholds": {"pass": pass_t, "marginal": min(marginal_t, pass_t)},
        },
    }
    pairs = {m["name"]: draw(pairs_of_series()) for m in metrics}
    return config, pairs


@st.composite
def pairs_of_series(draw: Any) -> tuple[list[float], list[float]]:
    """Unrelated series, a scaled/shifted canary (High/Low territory), or two constants."""
    kind = draw(st.sampled_from(["unrelated", "shifted", "shifted", "constant"]))
    if kind == "constant":
        level = st.integers(0, 20).map(float)
        baseline = [draw(level)] * draw(st.integers(1, 8))
        return baseline, [draw(level)] * draw(st.integers(1, 8))
    if kind == "unrelated":
        return draw(series), draw(series)
    centre = draw(st.integers(5, 100))
    spread = st.integers(0, 24).map(lambda v: centre + v / 8)
    baseline = draw(st.lists(spread, min_size=5, max_size=30))
    baseline += draw(st.lists(values, max_size=3))
    factor = draw(st.sampled_from([0.5, 0.8, 0.95, 1.05, 1.25, 2.0]))
    offset = draw(st.sampled_from([0.0, 0.0, 1.0, -1.0]))
    return baseline, [v * factor + offset for v in baseline] + draw(st.lists(values, max_size=3))


def reference_settings(metric: dict[str, Any]) -> dict[str, Any]:
    canary = metric["analysisConfigurations"]["canary"]
    effect = canary["effectSize"]
    neutral = 0.5 if effect["measure"] == "cles" else 1.0
    return {
        "direction": canary["direction"],
        "nanStrategy": canary["nanStrategy"],
        "critical": canary["critical"],
        "mustHaveData": canary["mustHaveData"],
        "measure": effect["measure"],
        "allowed": (
            effect.get("allowedDecrease", neutral),
            effect.get("allowedIncrease", neutral),
        ),
        "criticalThresholds": (
            effect.get("criticalDecrease", neutral),
            effect.get("criticalIncrease", neutral),
        ),
        "outliers": canary["outliers"]["strategy"],
        "factor": canary["outliers"]["outlierFactor"],
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(judgements())
def test_judge_agrees_with_the_plain_reference(
    case: tuple[dict[str, Any], dict[str, tuple[list[float], list[float]]]],
) -> None:
    data, pairs = case
    thresholds = data["classifier"]["scoreThresholds"]
    result = judge(parse_canary_config(data), pairs)

    expected: list[tuple[str, bool, list[str], bool]] = []
    for metric in data["metrics"]:
        baseline, canary = pairs[metric["name"]]
        label, critical = ref_metric(baseline, canary, reference_settings(metric))
        muted = metric["analysisConfigurations"]["canary"]["muted"]
        expected.append((label, critical, metric["groups"], muted))
    got = [(m.classification.value, m.outcome.critical) for m in result.metrics]
    assert got == [(label, critical) for label, critical, _, _ in expected]

    group_scores, summary = ref_score(expected, data["classifier"]["groupWeights"])
    assert {g.name: g.score for g in result.group_scores} == group_scores
    assert result.score == summary
    verdict = ref_verdict(summary, thresholds["pass"], thresholds["marginal"])
    assert result.classification.value == verdict


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 200).map(lambda v: v / 8), min_size=2, max_size=25),
    st.lists(st.integers(0, 200).map(lambda v: v / 8), min_size=2, max_size=25),
    st.sampled_from([0.8, 0.9, 0.95, 0.98, 0.99]),
)
def test_interval_and_estimate_are_the_references_to_the_last_bit(
    canary: list[float], baseline: list[float], conf: float
) -> None:
    try:
        expected = ref_mann_whitney(canary, baseline, conf)
    except Tied:
        return
    got = mann_whitney(canary, baseline, conf)
    assert (got.lower, got.upper, got.estimate) == expected

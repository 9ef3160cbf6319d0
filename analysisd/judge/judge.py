"""NetflixACAJudge: transform, classify and score every metric of one canary judgement.

Pure: series in, JudgeResult out. Per metric: NaN strategy (remove, or
replace with 0), optional IQR outlier removal (factor from the config, R-7
percentiles), descriptive statistics, then the Mann-Whitney classifier; a
classifier failure becomes an Error result, as in Kayenta. Then the weighted
group scores, forced zeros (critical failure, >= 50% Nodata) and thresholds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analysisd.judge.classifier import Label, MetricClassification, NaNStrategy, classify
from analysisd.judge.config import CanaryConfig, MetricConfig, check_thresholds
from analysisd.judge.errors import JudgeError, SeriesError
from analysisd.judge.explain import Explanation, explain, json_number
from analysisd.judge.scorer import GroupScore, ScoredMetric, ScoreLabel, classify_score, score
from analysisd.judge.stats import Summary, summary
from analysisd.judge.transforms import iqr_outliers, remove_flagged, remove_nans, replace_nans

DEFAULT_PASS = 95.0
DEFAULT_MARGINAL = 75.0


@dataclass(frozen=True, slots=True)
class MetricResult:
    """One metric's judgement with the evidence a user needs to trust it."""

    name: str
    groups: tuple[str, ...]
    muted: bool
    outcome: MetricClassification
    canary_stats: Summary
    baseline_stats: Summary
    canary_points: int  # before NaN/outlier handling
    baseline_points: int
    explanation: Explanation
    # The judged samples (after NaN strategy and outlier removal), for plots.
    baseline_values: Sequence[float] = ()
    canary_values: Sequence[float] = ()

    @property
    def classification(self) -> Label:
        return self.outcome.classification

    def as_dict(self) -> dict[str, Any]:
        o = self.outcome

        def pair(a: float | None, b: float | None) -> list[Any] | None:
            return None if a is None or b is None else [json_number(a), json_number(b)]

        return {
            "classification": o.classification.value,
            "reason": o.reason or "",
            "critical": o.critical,
            "muted": self.muted,
            "groups": list(self.groups),
            "stage": o.stage,
            "deviation": _finite(o.deviation),
            "effectSize": None if o.effect_size is None else json_number(o.effect_size),
            "interval": pair(o.ci_lower, o.ci_upper),
            "estimate": None if o.estimate is None else json_number(o.estimate),
            "pValue": o.p_value,
            "bounds": pair(o.lower_bound, o.upper_bound),
            "noiseAdded": o.noise_added,
            "canaryCount": self.canary_stats.count,
            "baselineCount": self.baseline_stats.count,
            "canaryPoints": self.canary_points,
            "baselinePoints": self.baseline_points,
            "canaryStats": {k: _plain(v) for k, v in self.canary_stats.as_dict().items()},
            "baselineStats": {k: _plain(v) for k, v in self.baseline_stats.as_dict().items()},
            **self.explanation.as_dict(),
        }


def _plain(value: float | int) -> Any:
    return value if isinstance(value, int) else json_number(value)


@dataclass(frozen=True, slots=True)
class JudgeResult:
    """The summary score, its classification, group scores and every metric's result."""

    score: float
    classification: ScoreLabel
    reason: str | None
    pass_threshold: float
    marginal_threshold: float
    group_scores: tuple[GroupScore, ...]
    metrics: tuple[MetricResult, ...]
    warnings: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """Plain data: what conditions see as `result` and what is stored as metadata."""
        return {
            "score": self.score,
            "classification": self.classification.value,
            "reason": self.reason or "",
            "pass": self.pass_threshold,
            "marginal": self.marginal_threshold,
            "groups": {g.name: g.score for g in self.group_scores},
            "metrics": {m.name: m.as_dict() for m in self.metrics},
            "warnings": list(self.warnings),
        }


def _finite(value: float | None) -> float | str | None:
    return None if value is None else json_number(value)


_SPELLED = {
    "NaN": math.nan,
    "+Inf": math.inf,
    "Inf": math.inf,
    "-Inf": -math.inf,
    "Infinity": math.inf,
    "+Infinity": math.inf,
    "-Infinity": -math.inf,
}


def to_series(values: Sequence[Any], where: str, *, reject_infinite: bool = False) -> list[float]:
    """Numbers (or "NaN"/None for missing points, "+Inf"/"-Inf") -> floats.

    Infinities are kept and judged, as Kayenta does; `reject_infinite` makes
    one a SeriesError instead. Anything else is a SeriesError.
    """
    out: list[float] = []
    for i, value in enumerate(values):
        if value is None:
            out.append(math.nan)
            continue
        if isinstance(value, str) and value in _SPELLED:
            number = _SPELLED[value]
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise SeriesError(f"{where}[{i}]: expected a number, got {value!r}")
        else:
            number = float(value)
        if reject_infinite and math.isinf(number):
            raise SeriesError(
                f"{where}[{i}]: infinite value (refused because infinities are rejected)"
            )
        out.append(number)
    return out


def transform(values: Sequence[float], metric: MetricConfig) -> list[float]:
    """NaN strategy, then (if configured) IQR outlier removal."""
    if metric.nan_strategy is NaNStrategy.REPLACE:
        data = replace_nans(values, 0.0)
    else:
        data = remove_nans(values)
    if metric.remove_outliers:
        data = remove_flagged(
            data, iqr_outliers(data, metric.outlier_factor, reduce_sensitivity=True)
        )
    return data


def classify_metric(
    metric: MetricConfig, baseline: Sequence[float], canary: Sequence[float]
) -> MetricResult:
    control = transform(baseline, metric)
    experiment = transform(canary, metric)
    try:
        outcome = classify(
            control,
            experiment,
            settings=metric.classifier,
            direction=metric.direction,
            nan_strategy=metric.nan_strategy,
            critical=metric.critical,
            data_required=metric.must_have_data,
            name=metric.name,
        )
    except JudgeError as exc:
        # Kayenta's catch block builds the result without .critical(...), so an
        # Error is never critical: it cannot zero the score by itself.
        outcome = MetricClassification(
            Label.ERROR, f"Metric Classification Failed: {exc}", math.nan, False, "error"
        )
    canary_stats, baseline_stats = summary(experiment), summary(control)
    return MetricResult(
        name=metric.name,
        groups=metric.groups,
        muted=metric.muted,
        outcome=outcome,
        canary_stats=canary_stats,
        baseline_stats=baseline_stats,
        canary_points=len(canary),
        baseline_points=len(baseline),
        explanation=explain(metric, outcome, baseline_stats, canary_stats),
        baseline_values=control,
        canary_values=experiment,
    )


def judge(
    config: CanaryConfig,
    pairs: Mapping[str, tuple[Sequence[Any], Sequence[Any]]],
    *,
    pass_threshold: float | None = None,
    marginal_threshold: float | None = None,
    reject_infinite: bool = False,
) -> JudgeResult:
    """Judge {metric name: (baseline values, canary values)} under `config`.

    Thresholds default to the config's classifier.scoreThresholds, then 95/75.
    A pair naming a metric the config lacks is an error (Kayenta's message).
    """
    pass_t = pass_threshold if pass_threshold is not None else config.pass_threshold
    marginal_t = marginal_threshold if marginal_threshold is not None else config.marginal_threshold
    pass_t = DEFAULT_PASS if pass_t is None else pass_t
    marginal_t = DEFAULT_MARGINAL if marginal_t is None else marginal_t
    check_thresholds(pass_t, marginal_t)

    results = []
    for name, (baseline, canary) in pairs.items():
        metric = config.metric(name)
        results.append(
            classify_metric(
                metric,
                to_series(baseline, f"{name}: baseline", reject_infinite=reject_infinite),
                to_series(canary, f"{name}: canary", reject_infinite=reject_infinite),
            )
        )
    scores = score(
        (
            ScoredMetric(r.classification, r.groups, r.outcome.critical, r.muted, r.outcome.reason)
            for r in results
        ),
        config.group_weights,
    )
    return JudgeResult(
        score=scores.summary_score,
        classification=classify_score(scores.summary_score, pass_t, marginal_t),
        reason=scores.reason,
        pass_threshold=pass_t,
        marginal_threshold=marginal_t,
        group_scores=scores.group_scores,
        metrics=tuple(results),
        warnings=config.warnings,
    )

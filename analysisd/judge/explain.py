"""Why a metric got its label: the evidence and one sentence a person can act on (pure).

The classifier's own reason (Kayenta's classificationReason) restates the
class ("latency was classified as High"). An Explanation says what was
compared, by how much the canary differs, which threshold decided, and the
outcome: "canary latency is 31% higher than baseline (mean ratio 1.31 >=
allowed 1.10): High, critical".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from analysisd.judge.classifier import (
    Direction,
    EffectSizeMeasure,
    Label,
    MetricClassification,
)
from analysisd.judge.config import MetricConfig
from analysisd.judge.stats import Summary

EFFECT_NAMES = {EffectSizeMeasure.MEAN_RATIO: "mean ratio", EffectSizeMeasure.CLES: "CLES"}


@dataclass(frozen=True, slots=True)
class Side:
    n: int
    mean: float
    median: float

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": json_number(self.mean), "median": json_number(self.median)}

    def text(self) -> str:
        if self.n == 0:
            return "n=0"
        return f"n={self.n} mean={fmt(self.mean)} median={fmt(self.median)}"


@dataclass(frozen=True, slots=True)
class Effect:
    """The effect size, its name, and the thresholds that gate High/Low."""

    measure: EffectSizeMeasure
    value: float | None
    allowed_increase: float
    allowed_decrease: float
    critical_increase: float
    critical_decrease: float

    @property
    def name(self) -> str:
        return EFFECT_NAMES[self.measure]

    def as_dict(self) -> dict[str, Any]:
        return {
            "measure": self.measure.value,
            "name": self.name,
            "value": None if self.value is None else json_number(self.value),
            "allowedIncrease": self.allowed_increase,
            "allowedDecrease": self.allowed_decrease,
            "criticalIncrease": self.critical_increase,
            "criticalDecrease": self.critical_decrease,
        }

    def text(self) -> str:
        value = "-" if self.value is None else fmt(self.value)
        return (
            f"{self.name} {value} (allowed: increase {fmt(self.allowed_increase)},"
            f" decrease {fmt(self.allowed_decrease)}; critical: increase"
            f" {fmt(self.critical_increase)}, decrease {fmt(self.critical_decrease)})"
        )


@dataclass(frozen=True, slots=True)
class Explanation:
    baseline: Side
    canary: Side
    interval: tuple[float, float] | None
    conf_level: float
    effect: Effect
    direction: Direction
    why: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline.as_dict(),
            "canary": self.canary.as_dict(),
            "interval": None
            if self.interval is None
            else [json_number(self.interval[0]), json_number(self.interval[1])],
            "confLevel": self.conf_level,
            "effect": self.effect.as_dict(),
            "direction": self.direction.value,
            "why": self.why,
        }


def json_number(value: float) -> float | str | None:
    """JSON has no NaN or infinities: NaN -> null, infinities -> "+Inf"/"-Inf"."""
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return value


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3g}"


def _side(stats: Summary) -> Side:
    return Side(stats.count, stats.mean, stats.median)


def _change(effect: Effect, baseline: Side, canary: Side) -> str:
    """How the canary differs, in words ("31% higher than baseline")."""
    if effect.measure is EffectSizeMeasure.CLES and effect.value is not None:
        share = effect.value * 100
        return f"above baseline in {share:.0f}% of canary/baseline pairs"
    if baseline.mean == 0 or math.isnan(baseline.mean) or math.isinf(baseline.mean):
        if canary.mean == baseline.mean:
            return "level with baseline on average"
        word = "higher" if canary.mean > baseline.mean else "lower"
        return f"{word} than baseline (mean {fmt(canary.mean)} vs {fmt(baseline.mean)})"
    ratio = canary.mean / baseline.mean
    if math.isnan(ratio) or math.isinf(ratio):
        word = "higher" if canary.mean > baseline.mean else "lower"
        return f"{word} than baseline (mean {fmt(canary.mean)} vs {fmt(baseline.mean)})"
    percent = (ratio - 1) * 100
    if abs(percent) < 0.05:
        return "level with baseline on average"
    word = "higher" if percent > 0 else "lower"
    return f"{abs(percent):.3g}% {word} than baseline"


def _why(
    name: str,
    outcome: MetricClassification,
    baseline: Side,
    canary: Side,
    effect: Effect,
    direction: Direction,
    conf_level: float,
) -> str:
    label = outcome.classification
    tail = f": {label.value}" + (", critical" if outcome.critical else "")
    subject = f"canary {name}"
    if outcome.stage == "error":
        detail = (outcome.reason or "").removeprefix("Metric Classification Failed: ")
        return f"{name} could not be compared ({detail}){tail}"
    if outcome.stage == "empty":
        missing = [side for side, s in (("baseline", baseline), ("canary", canary)) if s.n == 0]
        what = " and ".join(missing) or "either side"
        if label is Label.PASS:
            return f"no {what} data for {name}; with nanStrategy replace that passes{tail}"
        required = " and the metric must have data" if label is Label.NODATA_FAIL_METRIC else ""
        return f"no {what} data for {name}{required}{tail}"
    if outcome.stage == "identical":
        return f"{subject} and baseline data are identical{tail}"
    if outcome.stage == "single_value":
        return f"{subject} and baseline hold one and the same value{tail}"

    change = _change(effect, baseline, canary)
    value = fmt(effect.value)
    pct = f"{conf_level * 100:g}%"
    if label is Label.HIGH:
        gate = f"{effect.name} {value} \u2265 allowed {fmt(effect.allowed_increase)}"
        if effect.value is None or math.isnan(effect.value):
            gate = f"{effect.name} undefined, so the rank test alone decides"
        return f"{subject} is {change} ({gate}){tail}"
    if label is Label.LOW:
        gate = f"{effect.name} {value} \u2264 allowed {fmt(effect.allowed_decrease)}"
        if effect.value is None or math.isnan(effect.value):
            gate = f"{effect.name} undefined, so the rank test alone decides"
        return f"{subject} is {change} ({gate}){tail}"

    # Pass after the rank test: say which gate held it back.
    lower, upper = outcome.ci_lower, outcome.ci_upper
    bound = outcome.upper_bound
    assert lower is not None and upper is not None and bound is not None
    if not (math.isfinite(lower) and math.isfinite(upper) and math.isfinite(bound)):
        # Kayenta's arithmetic: an infinite point makes an end of the search range
        # infinite, R's root finder stops there, and the band 0.25*|estimate| follows.
        return (
            f"{subject} is {change}, but an infinite point makes the {pct} interval"
            f" [{fmt(lower)}, {fmt(upper)}] or the tolerance band \u00b1{fmt(bound)}"
            f" infinite, so the rank test cannot flag it{tail}"
        )
    shifted_up = lower > bound
    shifted_down = upper < -bound
    if shifted_up and direction is Direction.DECREASE:
        return f"{subject} is {change}, but only decreases count (direction decrease){tail}"
    if shifted_down and direction is Direction.INCREASE:
        return f"{subject} is {change}, but only increases count (direction increase){tail}"
    if shifted_up:
        gate = f"{effect.name} {value} < allowed {fmt(effect.allowed_increase)}"
        return f"{subject} is {change}, within the allowed effect ({gate}){tail}"
    if shifted_down:
        gate = f"{effect.name} {value} > allowed {fmt(effect.allowed_decrease)}"
        return f"{subject} is {change}, within the allowed effect ({gate}){tail}"
    return (
        f"{subject} is {change}, but the {pct} interval of the shift"
        f" [{fmt(lower)}, {fmt(upper)}] reaches the tolerance band \u00b1{fmt(bound)}"
        f" around zero{tail}"
    )


def explain(
    metric: MetricConfig,
    outcome: MetricClassification,
    baseline_stats: Summary,
    canary_stats: Summary,
) -> Explanation:
    """The evidence behind one metric's label, and the sentence that sums it up."""
    settings = metric.classifier
    effect = Effect(
        measure=settings.effect_size_measure,
        value=outcome.effect_size,
        allowed_increase=settings.effect_size_thresholds[1],
        allowed_decrease=settings.effect_size_thresholds[0],
        critical_increase=settings.critical_thresholds[1],
        critical_decrease=settings.critical_thresholds[0],
    )
    baseline, canary = _side(baseline_stats), _side(canary_stats)
    interval = None if outcome.ci_lower is None else (outcome.ci_lower, outcome.ci_upper or 0.0)
    why = _why(
        metric.name, outcome, baseline, canary, effect, metric.direction, settings.conf_level
    )
    return Explanation(
        baseline, canary, interval, settings.conf_level, effect, metric.direction, why
    )

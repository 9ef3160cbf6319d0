"""Kayenta's MannWhitneyClassifier: one metric's canary against its baseline.

Stages, in Kayenta's order: no data -> identical samples -> a single value
overall -> Mann-Whitney interval against a tolerance band around the
estimate, gated by the effect size (mean ratio or CLES) and direction;
critical thresholds then decide whether a High/Low fails the whole canary.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from analysisd.judge import stats
from analysisd.judge.mannwhitney import mann_whitney
from analysisd.judge.transforms import add_gaussian_noise


class Label(StrEnum):
    PASS = "Pass"
    HIGH = "High"
    LOW = "Low"
    NODATA = "Nodata"
    NODATA_FAIL_METRIC = "NodataFailMetric"
    ERROR = "Error"


class Direction(StrEnum):
    INCREASE = "increase"
    DECREASE = "decrease"
    EITHER = "either"


class NaNStrategy(StrEnum):
    REMOVE = "remove"
    REPLACE = "replace"


class EffectSizeMeasure(StrEnum):
    MEAN_RATIO = "meanRatio"
    CLES = "cles"


@dataclass(frozen=True, slots=True)
class ClassifierSettings:
    """The classifier's knobs; thresholds are (decrease, increase) pairs."""

    tolerance: float = 0.25
    conf_level: float = 0.98
    effect_size_thresholds: tuple[float, float] = (1.0, 1.0)
    critical_thresholds: tuple[float, float] = (1.0, 1.0)
    effect_size_measure: EffectSizeMeasure = EffectSizeMeasure.MEAN_RATIO


@dataclass(frozen=True, slots=True)
class MetricClassification:
    """One metric's outcome plus the evidence behind it (None where a stage stopped early)."""

    classification: Label
    reason: str | None
    deviation: float
    critical: bool
    stage: str
    effect_size: float | None = None
    ci_lower: float | None = None
    ci_upper: float | None = None
    estimate: float | None = None
    p_value: float | None = None
    lower_bound: float | None = None
    upper_bound: float | None = None
    noise_added: bool = False


def _noisy(values: Sequence[float]) -> list[float]:
    # Kayenta scales the noise to the (single) value so the shift stays visible.
    # Each sample gets its own fixed-seed stream, so the noise depends on that
    # sample alone and the same series always give the same judgement.
    return add_gaussian_noise(values, mean=0.0, stdev=values[0] * 1e-5)


def classify(
    control: Sequence[float],
    experiment: Sequence[float],
    *,
    settings: ClassifierSettings = ClassifierSettings(),
    direction: Direction = Direction.EITHER,
    nan_strategy: NaNStrategy = NaNStrategy.REMOVE,
    critical: bool = False,
    data_required: bool = False,
    name: str = "metric",
) -> MetricClassification:
    """Classify experiment (canary) against control (baseline); inputs are NaN-free."""
    if len(experiment) == 0 or len(control) == 0:
        if nan_strategy is NaNStrategy.REMOVE:
            reason = f"Missing data for {name}"
            if data_required and not critical:
                return MetricClassification(Label.NODATA_FAIL_METRIC, reason, 1.0, False, "empty")
            return MetricClassification(Label.NODATA, reason, 1.0, critical, "empty")
        return MetricClassification(Label.PASS, None, 1.0, False, "empty")

    if sorted(experiment) == sorted(control):
        reason = "The Canary and Baseline data are identical"
        return MetricClassification(Label.PASS, reason, 1.0, False, "identical")
    if len(set(experiment) | set(control)) == 1:
        return MetricClassification(Label.PASS, None, 1.0, False, "single_value")

    add_noise = len(set(experiment)) == 1 and len(set(control)) == 1
    exp = _noisy(experiment) if add_noise else list(experiment)
    ctl = _noisy(control) if add_noise else list(control)

    mw = mann_whitney(exp, ctl, settings.conf_level)
    deviation = stats.mean_ratio(ctl, exp)
    effect = (
        stats.cles(ctl, exp)
        if settings.effect_size_measure is EffectSizeMeasure.CLES
        else deviation
    )
    bound = settings.tolerance * abs(mw.estimate)
    lower_bound, upper_bound = -bound, bound
    # A NaN effect size (a zero mean) cannot veto the rank test (Kayenta).
    effect_unknown = math.isnan(effect)
    is_high = (
        direction in (Direction.INCREASE, Direction.EITHER)
        and mw.lower > upper_bound
        and (effect_unknown or effect >= settings.effect_size_thresholds[1])
    )
    is_low = (
        direction in (Direction.DECREASE, Direction.EITHER)
        and mw.upper < lower_bound
        and (effect_unknown or effect <= settings.effect_size_thresholds[0])
    )
    label = Label.HIGH if is_high else Label.LOW if is_low else Label.PASS
    why = f"{name} was classified as {label}" if label is not Label.PASS else None

    is_critical = False
    if critical and label is Label.HIGH:
        is_critical = effect_unknown or effect >= settings.critical_thresholds[1]
    elif critical and label is Label.LOW:
        is_critical = effect_unknown or effect <= settings.critical_thresholds[0]
    if is_critical:
        why = f"The metric {name} was classified as {label} (Critical)"

    return MetricClassification(
        classification=label,
        reason=why,
        deviation=deviation,
        critical=is_critical,
        stage="mann_whitney",
        effect_size=effect,
        ci_lower=mw.lower,
        ci_upper=mw.upper,
        estimate=mw.estimate,
        p_value=mw.p_value,
        lower_bound=lower_bound,
        upper_bound=upper_bound,
        noise_added=add_noise,
    )


def classify_mean_inequality(
    control: Sequence[float], experiment: Sequence[float], direction: Direction = Direction.EITHER
) -> Label:
    """Kayenta's MeanInequalityClassifier (a benchmarking baseline; the judge never uses it)."""
    exp_mean, ctl_mean = stats.mean(experiment), stats.mean(control)
    if direction in (Direction.INCREASE, Direction.EITHER) and exp_mean > ctl_mean:
        return Label.HIGH
    if direction in (Direction.DECREASE, Direction.EITHER) and exp_mean < ctl_mean:
        return Label.LOW
    return Label.PASS

"""Descriptive statistics and effect sizes as Kayenta's judge computes them."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from analysisd.judge.mannwhitney import WilcoxonDiff


@dataclass(frozen=True, slots=True)
class Summary:
    """Kayenta's MetricStatistics (all zero for an empty series)."""

    min: float
    max: float
    mean: float
    std: float
    count: int
    median: float = 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "std": self.std,
            "count": self.count,
            "median": self.median,
        }


def summary(values: Sequence[float]) -> Summary:
    """min, max, mean, sample standard deviation, count and median."""
    if len(values) == 0:
        return Summary(0.0, 0.0, 0.0, 0.0, 0)
    data = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):  # an infinity makes the std NaN, as in Kayenta
        std = float(np.std(data, ddof=1)) if data.size > 1 else 0.0
    with np.errstate(invalid="ignore"):
        mean = float(data.mean())
        median = float(np.median(data))
    return Summary(float(data.min()), float(data.max()), mean, std, int(data.size), median)


def mean(values: Sequence[float]) -> float:
    """commons-math StatUtils.mean, to the last bit (Kayenta's meanRatio compares it with
    allowedIncrease/allowedDecrease, so one ulp can flip a label): a left-to-right sum over
    n, plus the mean residual. numpy's pairwise sum differs in the last bit."""
    if not len(values):
        return math.nan
    data = np.asarray(values, dtype=np.float64)
    if not np.isfinite(data).all():
        with np.errstate(invalid="ignore"):  # +Inf and -Inf together: NaN, as on the JVM
            return float(np.mean(data))
    n = data.size
    xbar = float(np.cumsum(data)[-1]) / n  # cumsum adds strictly left to right
    return xbar + float(np.cumsum(data - xbar)[-1]) / n


def mean_ratio(control: Sequence[float], experiment: Sequence[float]) -> float:
    """experiment mean / control mean; NaN when either mean is zero (Kayenta)."""
    control_mean = mean(control)
    experiment_mean = mean(experiment)
    if control_mean == 0.0 or experiment_mean == 0.0:
        return math.nan
    return experiment_mean / control_mean


def cles(control: Sequence[float], experiment: Sequence[float]) -> float:
    """Common-language effect size: P(experiment > control) + P(tie)/2 (Vargha-Delaney A)."""
    m, n = len(experiment), len(control)
    dz, _ = WilcoxonDiff(experiment, control).counts(0.0)
    u = dz + m * n / 2
    return u / (m * n)


def cohen_d(control: Sequence[float], experiment: Sequence[float]) -> float:
    """|mean difference| / pooled sample standard deviation (not used by the judge)."""
    c, e = summary(control), summary(experiment)
    pooled = math.sqrt(
        ((e.count - 1) * e.std**2 + (c.count - 1) * c.std**2) / (c.count + e.count - 2)
    )
    return abs(e.mean - c.mean) / pooled


def _sorted(values: Sequence[float]) -> list[float]:
    return sorted(float(v) for v in values)


def percentile_r7(values: Sequence[float], p: float) -> float:
    """Percentile p (0-100] with R's type 7 / Excel estimation (commons-math R_7)."""
    return _percentile(values, lambda n: n if p >= 100 else 1 + (n - 1) * (p / 100))


def percentile_legacy(values: Sequence[float], p: float) -> float:
    """Percentile p with commons-math's default (LEGACY, position p(n+1)/100)."""
    return _percentile(values, lambda n: p * (n + 1) / 100)


def _percentile(values: Sequence[float], position: Callable[[int], float]) -> float:
    """The value at 1-based `position(n)` of the sorted values, interpolated; NaN if empty."""
    data = _sorted(values)
    n = len(data)
    if n == 0:
        return math.nan
    if n == 1:
        return data[0]
    return _interpolate(data, position(n))


def _interpolate(data: list[float], pos: float) -> float:
    n = len(data)
    if pos < 1:
        return data[0]
    if pos >= n:
        return data[-1]
    floor = math.floor(pos)
    lower, upper = data[floor - 1], data[floor]
    return lower + (pos - floor) * (upper - lower)

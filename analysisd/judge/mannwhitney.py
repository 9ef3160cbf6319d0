"""Mann-Whitney (Wilcoxon rank-sum) interval and estimate of the shift, as Kayenta computes them.

This is R's `wilcox.test(x, y, conf.int=TRUE, exact=FALSE, correct=TRUE)`
(asymptotic, continuity-corrected, tie-corrected variance) with one Kayenta
difference: the location estimate keeps the continuity correction (R drops
it). Roots come from R's own zeroin (see zeroin.py); x is the canary
(experiment), y the baseline (control), shifts are x - y.

The normal quantile is R's qnorm (Wichura's AS241, which
statistics.NormalDist().inv_cdf implements step for step): scipy's ndtri is
1-2 ulp away at 0.90/0.95/0.99, enough to send the root finder another way.

Infinities are ranked, as Kayenta ranks them: x - mu can be inf - inf = NaN,
and commons-math's NaturalRanking(NaNStrategy.MAXIMAL) ranks a NaN as +Inf,
so NaN is recoded to +Inf before counting (input NaNs too).

W(mu) is evaluated by counting, not ranking: the rank sum of x - mu in the
pooled sample minus nx(nx+1)/2 is the number of pairs with x_i - mu > y_j
plus half the ties, and the tie term of the variance only needs the pooled
group sizes. Every quantity is an exact integer or half-integer, so the
result is bit-identical to ranking, at a fraction of the cost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

from analysisd.judge.errors import MannWhitneyError
from analysisd.judge.zeroin import zeroin2

ALL_TIED = "cannot compute confidence interval when all observations are tied"
FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class MannWhitneyResult:
    """Interval [lower, upper] and estimate of the shift canary - baseline."""

    lower: float
    upper: float
    estimate: float
    p_value: float
    mu_min: float
    mu_max: float


_STANDARD_NORMAL = NormalDist()


def normal_quantile(p: float) -> float:
    """The standard normal quantile exactly as R's qnorm(p) computes it (AS241)."""
    if not 0.0 < p < 1.0:
        raise MannWhitneyError(f"normal quantile: p must be between 0 and 1 (got {p})")
    return _STANDARD_NORMAL.inv_cdf(p)


def _nan_as_max(values: FloatArray) -> FloatArray:
    """NaN -> +Inf, as NaturalRanking(NaNStrategy.MAXIMAL) ranks it.

    Sorted input stays sorted: np.sort puts NaN last, and x - mu over sorted x
    is non-decreasing once its NaNs (inf - inf) read as +Inf.
    """
    nan = np.isnan(values)
    if not nan.any():
        return values
    out = values.copy()
    out[nan] = np.inf
    return out


class WilcoxonDiff:
    """W(mu) - zq for fixed samples: (dz - correction) / sigma - zq, exactly as R/Kayenta."""

    def __init__(self, x: Sequence[float] | FloatArray, y: Sequence[float] | FloatArray) -> None:
        xs = np.sort(np.asarray(x, dtype=np.float64))
        ys = np.sort(np.asarray(y, dtype=np.float64))
        if xs.size == 0 or ys.size == 0:
            raise MannWhitneyError("not enough observations: both samples need at least one value")
        xs, ys = _nan_as_max(xs), _nan_as_max(ys)
        self.finite = bool(np.isfinite(xs).all())
        self.x = xs
        self.y = ys
        self.nx = float(xs.size)
        self.ny = float(ys.size)
        self.ux, cx = np.unique(xs, return_counts=True)
        self.uy, cy = np.unique(ys, return_counts=True)
        self.cx = cx.astype(np.int64)
        self.cy = cy.astype(np.int64)
        self.y_before = np.concatenate(([0], np.cumsum(self.cy)))
        self.ties_x = int(np.sum(self.cx**3 - self.cx))
        self.ties_y = int(np.sum(self.cy**3 - self.cy))

    def counts(self, mu: float) -> tuple[float, int]:
        """(dz, sum over pooled tie groups of t^3 - t) at shift mu."""
        if self.finite and math.isfinite(mu):
            uz = self.ux - mu
        else:
            with np.errstate(invalid="ignore"):  # inf - inf: ranked as +Inf below
                uz = _nan_as_max(self.ux - mu)
        if uz.size > 1 and bool(np.any(uz[1:] == uz[:-1])):
            # Two distinct canary values became equal after subtracting mu
            # (rounding); the grouping below would be wrong, so rank instead.
            return self._counts_by_ranking(mu)
        pos = np.searchsorted(self.uy, uz, side="left")
        less = self.y_before[pos]
        clipped = np.minimum(pos, self.uy.size - 1)
        matched = (pos < self.uy.size) & (self.uy[clipped] == uz)
        b = np.where(matched, self.cy[clipped], 0)
        twice_u = 2 * int(np.dot(self.cx, less)) + int(np.dot(self.cx, b))
        cross = int(np.sum(3 * self.cx * b * (self.cx + b)))
        dz = twice_u / 2 - self.nx * self.ny / 2
        return dz, self.ties_x + self.ties_y + cross

    def _counts_by_ranking(self, mu: float) -> tuple[float, int]:
        with np.errstate(invalid="ignore"):
            pooled = _nan_as_max(np.concatenate((self.x - mu, self.y)))
        _, inverse, counts = np.unique(pooled, return_inverse=True, return_counts=True)
        ends = np.cumsum(counts)
        avg_rank = (ends - counts + 1 + ends) / 2.0
        rank_sum = float(np.sum(avg_rank[inverse[: self.x.size]]))
        dz = rank_sum - self.nx * (self.nx + 1) / 2 - self.nx * self.ny / 2
        c = counts.astype(np.int64)
        return dz, int(np.sum(c**3 - c))

    def __call__(self, mu: float, zq: float) -> float:
        dz, ties = self.counts(mu)
        nx, ny = self.nx, self.ny
        correction = math.copysign(0.5, dz) if dz != 0 else 0.0
        sigma = math.sqrt(
            (nx * ny / 12) * ((nx + ny + 1) - float(ties) / ((nx + ny) * (nx + ny - 1)))
        )
        if sigma == 0 or math.isnan(sigma):
            raise MannWhitneyError(ALL_TIED)
        return (dz - correction) / sigma - zq


def wilcoxon_diff(mu: float, zq: float, x: Sequence[float], y: Sequence[float]) -> float:
    """Kayenta's MannWhitney.wilcoxonDiff(mu, quantile, x, y)."""
    return WilcoxonDiff(x, y)(mu, zq)


def _root(w: WilcoxonDiff, zq: float, mu_min: float, mu_max: float) -> float:
    f_lower = w(mu_min, zq)
    f_upper = w(mu_max, zq)
    # Extreme cases return the end points (R: wilcox.test(1, 2:60, conf.int=TRUE)).
    if f_lower <= 0:
        return mu_min
    if f_upper >= 0:
        return mu_max
    return zeroin2(lambda mu: w(mu, zq), mu_min, mu_max, f_lower, f_upper, tol=1e-4)


def mann_whitney(
    experiment: Sequence[float] | FloatArray,
    control: Sequence[float] | FloatArray,
    conf_level: float = 0.95,
) -> MannWhitneyResult:
    """Interval and (continuity-corrected) estimate of experiment - control."""
    if not 0.0 < conf_level < 1.0:
        raise MannWhitneyError(f"confLevel must be between 0 and 1 (got {conf_level})")
    w = WilcoxonDiff(experiment, control)
    with np.errstate(invalid="ignore"):  # +Inf - +Inf is NaN here too, as on the JVM
        mu_min = float(w.x[0] - w.y[-1])
        mu_max = float(w.x[-1] - w.y[0])
    alpha = 1.0 - conf_level
    z_quant = normal_quantile(alpha / 2)
    lower = _root(w, -z_quant, mu_min, mu_max)
    upper = _root(w, z_quant, mu_min, mu_max)
    f_lower = w(mu_min, 0.0)
    f_upper = w(mu_max, 0.0)
    estimate = zeroin2(lambda mu: w(mu, 0.0), mu_min, mu_max, f_lower, f_upper, tol=1e-4)
    return MannWhitneyResult(lower, upper, estimate, p_value(w), mu_min, mu_max)


def p_value(w: WilcoxonDiff) -> float:
    """Two-sided p-value of the normal approximation with continuity correction (R, scipy)."""
    z = w(0.0, 0.0)
    return float(min(1.0, 2 * min(ndtr(z), ndtr(-z))))

"""Series transforms: NaN strategies, outlier detectors, Gaussian noise."""

from __future__ import annotations

import math
from collections.abc import Sequence

from analysisd.judge.stats import percentile_legacy, percentile_r7

_MASK48 = (1 << 48) - 1
_MULTIPLIER = 0x5DEECE66D


class JavaRandom:
    """java.util.Random (48-bit LCG + polar Gaussian), so seeded noise matches Kayenta's JVM."""

    def __init__(self, seed: int) -> None:
        self._seed = (seed ^ _MULTIPLIER) & _MASK48
        self._saved: float | None = None

    def _next(self, bits: int) -> int:
        self._seed = (self._seed * _MULTIPLIER + 0xB) & _MASK48
        return self._seed >> (48 - bits)

    def next_double(self) -> float:
        return ((self._next(26) << 27) + self._next(27)) * (1.0 / (1 << 53))

    def next_gaussian(self) -> float:
        if self._saved is not None:
            value, self._saved = self._saved, None
            return value
        while True:
            v1 = 2 * self.next_double() - 1
            v2 = 2 * self.next_double() - 1
            s = v1 * v1 + v2 * v2
            if 0 < s < 1:
                break
        multiplier = math.sqrt(-2 * math.log(s) / s)
        self._saved = v2 * multiplier
        return v1 * multiplier


# Fixed so that the same series always give the same judgement (Kayenta's
# noise is unseeded; only the label is meant to be stable).
NOISE_SEED = 20171212


def random_normal(mean: float, stdev: float, count: int, rng: JavaRandom) -> list[float]:
    return [rng.next_gaussian() * stdev + mean for _ in range(count)]


def add_gaussian_noise(
    values: Sequence[float], mean: float = 0.0, stdev: float = 1.0, rng: JavaRandom | None = None
) -> list[float]:
    generator = rng if rng is not None else JavaRandom(NOISE_SEED)
    noise = random_normal(mean, stdev, len(values), generator)
    return [v + n for v, n in zip(values, noise, strict=True)]


def remove_nans(values: Sequence[float]) -> list[float]:
    return [v for v in values if not math.isnan(v)]


def replace_nans(values: Sequence[float], value: float = 0.0) -> list[float]:
    return [value if math.isnan(v) else v for v in values]


def iqr_outliers(
    values: Sequence[float], factor: float = 1.5, reduce_sensitivity: bool = False
) -> list[bool]:
    """Kayenta's IQRDetector: outside [p25 - f*IQR, p75 + f*IQR].

    reduceSensitivity (the judge always sets it) widens the fences to at least
    the 1st and 99th percentiles: [min(P1, Q1 - f*IQR), max(P99, Q3 + f*IQR)],
    so small samples lose no more than their extreme percent. It also switches
    the percentile estimate to R type 7; otherwise commons-math's legacy one.
    """
    if factor <= 0:
        raise ValueError("factor must be greater than zero")
    if len(values) == 0:
        return []
    percentile = percentile_r7 if reduce_sensitivity else percentile_legacy
    p25, p75 = percentile(values, 25), percentile(values, 75)
    iqr = p75 - p25
    lower, upper = p25 - factor * iqr, p75 + factor * iqr
    if reduce_sensitivity:
        lower = java_min(percentile(values, 1), lower)
        upper = java_max(percentile(values, 99), upper)
    return [v > upper or v < lower for v in values]


def java_min(a: float, b: float) -> float:
    """Math.min: NaN if either is NaN (Python's min keeps the first when compared with NaN)."""
    return math.nan if math.isnan(a) or math.isnan(b) else min(a, b)


def java_max(a: float, b: float) -> float:
    """Math.max: NaN if either is NaN."""
    return math.nan if math.isnan(a) or math.isnan(b) else max(a, b)


def ksigma_outliers(values: Sequence[float], k: float = 3.0) -> list[bool]:
    """Kayenta's KSigmaDetector: more than k population standard deviations from the mean."""
    if len(values) == 0:
        return []
    n = len(values)
    mu = math.fsum(values) / n
    sd = math.sqrt(math.fsum((v - mu) ** 2 for v in values) / n)
    return [abs(v - mu) > k * sd for v in values]


def remove_flagged(values: Sequence[float], flags: Sequence[bool]) -> list[float]:
    return [v for v, out in zip(values, flags, strict=True) if not out]

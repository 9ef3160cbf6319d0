"""The summary score's HALF_UP rounding (Scala's BigDecimal.setScale) at every magnitude."""

from __future__ import annotations

import math

import pytest

from analysisd.judge.classifier import Label
from analysisd.judge.scorer import ScoredMetric, round_half_up, score


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.125, 0.13),  # the decimal text 0.125 rounds up, as BigDecimal does
        (2.675, 2.68),  # repr is 2.675 even though the double is just below it
        (-0.125, -0.13),
        (99.994999, 99.99),
        (1e308, 1e308),
        (1.7976931348623157e308, 1.7976931348623157e308),
        (5e-324, 0.0),
    ],
)
def test_round_half_up_is_exact_at_any_magnitude(value: float, expected: float) -> None:
    assert round_half_up(value) == expected


def test_non_finite_scores_are_handed_back() -> None:
    assert round_half_up(math.inf) == math.inf
    assert math.isnan(round_half_up(math.nan))


def test_huge_group_weights_score_instead_of_raising() -> None:
    # Weights near the top of the doubles put the weighted sum near 1e308; the default
    # 28-digit decimal context raised InvalidOperation here.
    metrics = [ScoredMetric(Label.PASS, ["a"]), ScoredMetric(Label.HIGH, ["b"])]
    result = score(metrics, {"a": 1e308, "b": 1e307})
    assert result.summary_score == pytest.approx(1e308, rel=1e-12)
    assert result.forced_zero_reason is None

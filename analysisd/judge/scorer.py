"""Kayenta's WeightedSumScorer, ThresholdScoreClassifier and the orchestrator's threshold rules."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal
from enum import StrEnum

from analysisd.judge.classifier import Label


class ScoreLabel(StrEnum):
    PASS = "Pass"
    MARGINAL = "Marginal"
    FAIL = "Fail"


@dataclass(frozen=True, slots=True)
class ScoredMetric:
    """What the scorer needs of one metric's result."""

    classification: Label
    groups: Sequence[str]
    critical: bool = False
    muted: bool = False
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class GroupScore:
    name: str
    score: float
    no_data: bool
    label_counts: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class ScoreResult:
    group_scores: tuple[GroupScore, ...]
    summary_score: float
    forced_zero_reason: str | None  # "critical", "nodata" or None
    reason: str | None


def round_half_up(value: float, places: int = 2) -> float:
    """Scala's BigDecimal(value).setScale(places, HALF_UP) (decimal text of the double).

    setScale is exact whatever the magnitude, so the context holds every digit a double
    can have (a summary score near 1e308, from huge group weights, has 309 before the
    point; the default 28-digit context raised InvalidOperation). NaN and infinities
    have no decimal form and are handed back unchanged.
    """
    if not math.isfinite(value):
        return value
    quantum = Decimal(1).scaleb(-places)
    exact = Context(prec=400, rounding=ROUND_HALF_UP)
    return float(Decimal(repr(value)).quantize(quantum, context=exact))


def _group_score(name: str, labels: list[Label]) -> GroupScore:
    counts: dict[str, int] = {}
    for label in labels:
        counts[label.value] = counts.get(label.value, 0) + 1
    passed = counts.get(Label.PASS, 0)
    # Nodata and Error are left out; NodataFailMetric counts as a failure.
    total = (
        passed
        + counts.get(Label.HIGH, 0)
        + counts.get(Label.LOW, 0)
        + counts.get(Label.NODATA_FAIL_METRIC, 0)
    )
    no_data = total == 0
    return GroupScore(name, 0.0 if no_data else passed / total * 100, no_data, counts)


def weighted_sum(groups: Sequence[GroupScore], group_weights: Mapping[str, float]) -> float:
    """WeightedSumScorer.calculateSummaryScore, before rounding.

    A group whose metrics are all Nodata/Error counts as 100 (it has nothing
    against the canary), and groups without a weight share what the weights
    leave of 100 over every such group, with data or without.
    """
    unweighted = {g.name for g in groups} - set(group_weights)
    weight_sum = sum(float(w) for w in group_weights.values())
    shared = (100 - weight_sum) / len(unweighted) if unweighted else 0.0
    summary = 0.0
    for group in groups:
        effective = 100.0 if group.no_data else group.score
        summary += effective * (float(group_weights.get(group.name, shared)) / 100)
    return summary


def score(results: Iterable[ScoredMetric], group_weights: Mapping[str, float]) -> ScoreResult:
    """Group scores, the weighted summary score (2 dp, HALF_UP) and Kayenta's forced zeros."""
    scored = [r for r in results if not r.muted]
    by_group: dict[str, list[Label]] = {}
    for result in scored:
        for group_name in result.groups:
            by_group.setdefault(group_name, []).append(result.classification)
    groups = tuple(_group_score(name, labels) for name, labels in by_group.items())

    summary = weighted_sum(groups, group_weights)

    failures = [r for r in scored if r.critical and r.classification is not Label.PASS]
    if failures:
        reason = f"Canary Failed: {failures[0].reason or 'a critical metric failed'}"
        return ScoreResult(groups, 0.0, "critical", reason)
    nodata = sum(1 for r in scored if r.classification is Label.NODATA)
    if scored and nodata >= len(scored) / 2:
        reason = "Canary Failed: 50% or more metrics returned NODATA"
        return ScoreResult(groups, 0.0, "nodata", reason)
    return ScoreResult(groups, round_half_up(summary), None, None)


def classify_score(
    summary_score: float, pass_threshold: float, marginal_threshold: float
) -> ScoreLabel:
    """ThresholdScoreClassifier: >= pass -> Pass, >= marginal -> Marginal, else Fail."""
    if summary_score >= pass_threshold:
        return ScoreLabel.PASS
    if summary_score >= marginal_threshold:
        return ScoreLabel.MARGINAL
    return ScoreLabel.FAIL


def interval_stops(canary_score: float, marginal: float | None) -> bool:
    """Orca: an interval judgement at or below marginal stops the whole analysis (TERMINAL)."""
    return marginal is not None and canary_score <= marginal


def final_passes(final_score: float, marginal: float | None, pass_threshold: float | None) -> bool:
    """Orca's didPassThresholds for the final aggregate score."""
    if marginal is None and pass_threshold is None:
        return True
    if pass_threshold is None:
        assert marginal is not None
        return final_score > marginal
    return final_score >= pass_threshold

"""dryRun / measurementRetention rule matching: Go RE2 semantics in Python."""

from __future__ import annotations

import pytest

from analysisd.rules import (
    RuleError,
    dry_run_metrics,
    retention_for,
    retention_limits,
    rule_matches,
)
from analysisd.spec import DryRun, MeasurementRetention


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("rate", "success-rate", True),  # unanchored search
        ("^rate", "success-rate", False),
        ("^success-rate$", "success-rate", True),
        (".*", "", True),
        ("*", "success-rate", False),  # not valid RE2: matches nothing
        ("(?=s)s", "success-rate", False),  # look-ahead: not RE2
        (r"(a)\1", "aa", False),  # backreference: not RE2
        ("a++", "aa", False),  # possessive: not RE2
        (r"rate\z", "success-rate", True),  # RE2's end-of-text
        ("(?<kind>error)-rate", "error-rate", True),  # RE2 named group spelling
        (r"\d", "rate-٣", False),  # \d is ASCII in RE2
        (r"\d", "rate-3", True),
        ("(?i)RATE", "success-rate", True),
    ],
)
def test_rule_matches_like_go(pattern: str, name: str, matches: bool) -> None:
    assert rule_matches(pattern, name) is matches


def test_dry_run_union_of_rules() -> None:
    rules = [DryRun(metricName="^error"), DryRun(metricName="latency$")]
    names = ["error-rate", "p99-latency", "success-rate"]
    assert dry_run_metrics(rules, names) == {"error-rate", "p99-latency"}


def test_later_retention_rule_wins() -> None:
    rules = [
        MeasurementRetention(metricName=".*", limit=20),
        MeasurementRetention(metricName="error", limit=5),
    ]
    limits = retention_limits(rules, ["error-rate", "latency"])
    assert limits == {"error-rate": 5, "latency": 20}
    assert retention_for(limits, "other") == 10


def test_second_rule_matching_nothing_names_its_index() -> None:
    rules = [DryRun(metricName="rate"), DryRun(metricName="nothing")]
    with pytest.raises(RuleError) as caught:
        dry_run_metrics(rules, ["success-rate"])
    assert str(caught.value) == "dryRun[1]: Rule didn't match any metric name(s)"
    assert caught.value.field == "dryRun"

"""dryRun / measurementRetention rules: which metrics each metricName pattern selects.

Argo matches each rule with Go's regexp.MatchString (RE2, unanchored search) and
treats a pattern that does not compile as matching nothing; every rule must match
at least one metric. The matching is providers.gocompat's RE2 (google-re2, Go's
syntax: ASCII \\d\\w\\s, \\z, POSIX classes, no look-around or backreferences).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from analysisd.spec import DryRun, MeasurementRetention, Metric, SpecError
from providers.gocompat import GoError, regexp_match

DEFAULT_RETENTION_LIMIT = 10


class RuleError(SpecError):
    """A dryRun / measurementRetention rule problem, with Argo's message."""


def rule_matches(pattern: str, metric_name: str) -> bool:
    """Go's regexp.MatchString(pattern, name), with a bad pattern matching nothing."""
    try:
        return regexp_match(pattern, metric_name)
    except GoError:
        return False


def _names(metrics: Iterable[Metric | str]) -> list[str]:
    return [m if isinstance(m, str) else m.name for m in metrics]


def dry_run_metrics(rules: Sequence[DryRun], metrics: Iterable[Metric | str]) -> set[str]:
    """Names of the metrics that run in dry-run mode; RuleError if a rule matches none."""
    names = _names(metrics)
    selected: set[str] = set()
    for index, rule in enumerate(rules):
        matched = [n for n in names if rule_matches(rule.metric_name, n)]
        if not matched:
            raise RuleError(f"dryRun[{index}]: Rule didn't match any metric name(s)", "dryRun")
        selected.update(matched)
    return selected


def retention_limits(
    rules: Sequence[MeasurementRetention], metrics: Iterable[Metric | str]
) -> dict[str, int]:
    """Metric name -> measurements to keep; a later matching rule wins, as in Argo."""
    names = _names(metrics)
    limits: dict[str, int] = {}
    for index, rule in enumerate(rules):
        matched = [n for n in names if rule_matches(rule.metric_name, n)]
        if not matched:
            raise RuleError(
                f"measurementRetention[{index}]: Rule didn't match any metric name(s)",
                "measurementRetention",
            )
        for name in matched:
            limits[name] = rule.limit
    return limits


def check_unique_rules(
    dry_run: Sequence[DryRun], retention: Sequence[MeasurementRetention]
) -> None:
    """Argo refuses two rules with the same metricName when templates are merged."""
    _unique((r.metric_name for r in dry_run), "Dry-Run", "dryRun")
    _unique((r.metric_name for r in retention), "Measurement Retention", "measurementRetention")


def _unique(names: Iterable[str], label: str, field: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise RuleError(f"two {label} metric rules have the same name '{name}'", field)
        seen.add(name)


def retention_for(limits: Mapping[str, int], metric_name: str) -> int:
    """Measurements kept for a metric: its rule's limit, else the controller default."""
    return limits.get(metric_name, DEFAULT_RETENTION_LIMIT)

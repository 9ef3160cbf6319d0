"""dryRun / measurementRetention rules: which metrics each metricName pattern selects.

Argo matches each rule with Go's regexp.MatchString (RE2, unanchored search) and
treats a pattern that does not compile as matching nothing; every rule must match
at least one metric. Python's `re` agrees with RE2 on the syntax both accept; the
Perl-only constructs RE2 refuses (look-around, backreferences, possessive and
atomic groups) are refused here too, so such a rule matches nothing, as in Argo.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

from analysisd.spec import DryRun, MeasurementRetention, Metric, SpecError

# Constructs Python accepts and RE2 rejects.
_NOT_RE2 = re.compile(r"\(\?(?:=|!|<=|<!|>)|\\[1-9]|[*+?}][+]|\(\?P=")

DEFAULT_RETENTION_LIMIT = 10


class RuleError(SpecError):
    """A dryRun / measurementRetention rule problem, with Argo's message."""


# RE2 spellings Python writes differently: `\z` (end of text) and `(?<name>...)`.
_RE2_SPELLINGS = (
    (re.compile(r"(?<!\\)((?:\\\\)*)\\z"), r"\1\\Z"),
    (re.compile(r"\(\?<(?=[A-Za-z_])"), "(?P<"),
)


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str] | None:
    if _NOT_RE2.search(pattern):
        return None
    for spelling, python in _RE2_SPELLINGS:
        pattern = spelling.sub(python, pattern)
    try:
        # RE2's \d, \w, \s and \b are ASCII-only.
        return re.compile(pattern, re.ASCII)
    except re.error:
        return None


def rule_matches(pattern: str, metric_name: str) -> bool:
    """Go's regexp.MatchString(pattern, name), with a bad pattern matching nothing."""
    compiled = _compile(pattern)
    return compiled is not None and compiled.search(metric_name) is not None


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

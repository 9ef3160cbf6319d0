"""A namespace's quota checked against one run at admission (pure).

`metricsPerRun` and `minInterval` are about the run itself: retrying will not
help, so they refuse it (403, each problem naming the field and the quota).
`activeRuns` and `measurementsPerSecond` depend on what the namespace is doing
now: the API answers 429 for them (api/runs.py), and the scheduler enforces
`measurementsPerSecond` as a token bucket (engine/fairshare.py).
"""

from __future__ import annotations

from analysisd.config import Quota
from analysisd.durations import parse_seconds
from analysisd.spec import AnalysisRunSpec

__all__ = ["QUOTA_BACKLOG_SECONDS", "active_limit", "run_quota_problems"]

# A namespace whose measurements already wait this many seconds' worth of its
# measurementsPerSecond gets 429 for new runs (they would only wait longer).
QUOTA_BACKLOG_SECONDS = 60.0


def run_quota_problems(spec: AnalysisRunSpec, quota: Quota) -> list[tuple[str, str]]:
    """(field, message) for every way `spec` exceeds the quota's per-run limits."""
    problems: list[tuple[str, str]] = []
    if quota.metrics_per_run is not None and len(spec.metrics) > quota.metrics_per_run:
        problems.append(
            (
                "spec.metrics",
                f"{len(spec.metrics)} metrics exceed the namespace's quota "
                f"metricsPerRun ({quota.metrics_per_run})",
            )
        )
    if quota.min_interval is not None:
        for index, metric in enumerate(spec.metrics):
            if not metric.interval:
                continue  # measured once (or on errors, Argo's retry): not a rate
            try:
                seconds = parse_seconds(metric.interval)
            except ValueError:
                continue  # an {{args.x}} placeholder: the scheduler's rate quota still holds
            if seconds < quota.min_interval:
                problems.append(
                    (
                        f"spec.metrics[{index}].interval",
                        f"interval {metric.interval} is shorter than the namespace's quota "
                        f"minInterval ({quota.min_interval:g}s)",
                    )
                )
    return problems


def active_limit(quota: Quota, default: int) -> int:
    """The most unfinished runs the namespace may hold."""
    return default if quota.active_runs is None else min(default, quota.active_runs)

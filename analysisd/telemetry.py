"""The daemon's own telemetry: structlog set-up (once, in main) and prometheus metrics.

`DaemonMetrics` registers on a CollectorRegistry it is given (built in the app
factory), so tests and several daemons in one process never share counters.
No series carries a run's name: one series per run grew without bound (deleted
and lease-lost runs were never removed) and showed every team's run names to
whoever scraped. Per-namespace aggregates are exported; per-run detail stays in
the API, behind the run's namespace token.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from analysisd.durations import parse_duration
from analysisd.engine.observer import RunChange
from analysisd.spec import AnalysisRun

_PHASES = ("Pending", "Running", "Successful", "Failed", "Error", "Inconclusive")


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """JSON lines when the output is not a terminal, coloured console lines when it is."""
    out = stream if stream is not None else sys.stderr
    renderer: structlog.typing.Processor
    if out.isatty():
        renderer = structlog.dev.ConsoleRenderer()
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=True,
    )
    # Libraries that use stdlib logging (aiohttp access log, the scheduler) go to the same
    # stream; the access log stays quiet unless asked for.
    logging.basicConfig(
        stream=out, level=level.upper(), format="%(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def scheduling_lag(run: AnalysisRun, metric: str) -> float | None:
    """How late the metric's newest measurement started: Argo schedules the next one at
    the previous one's finishedAt + interval (errors excepted, which retry sooner)."""
    spec = next((m for m in run.spec.metrics if m.name == metric), None)
    if spec is None or not spec.interval or run.status is None:
        return None
    result = next((r for r in run.status.metric_results if r.name == metric), None)
    if result is None or len(result.measurements) < 2:
        return None
    previous, newest = result.measurements[-2], result.measurements[-1]
    if previous.phase == "Error" or previous.finished_at is None or newest.started_at is None:
        return None
    try:
        due = previous.finished_at + parse_duration(spec.interval)
    except ValueError:
        return None  # an unresolved {{args.x}} interval: nothing to compare against
    return max(0.0, (newest.started_at - due).total_seconds())


class DaemonMetrics:
    """Every metric the daemon exports about itself."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.runs = Gauge(
            "analysisd_runs", "Stored AnalysisRuns by phase", ["phase"], registry=registry
        )
        self.active_runs = Gauge(
            "analysisd_active_runs", "Runs the scheduler is driving now", registry=registry
        )
        self.measurements = Counter(
            "analysisd_measurements",
            "Measurements taken, by provider kind and phase",
            ["provider", "phase"],
            registry=registry,
        )
        self.measurement_latency = Histogram(
            "analysisd_measurement_duration_seconds",
            "Time from a measurement's start to its finish",
            ["provider"],
            registry=registry,
        )
        self.scheduler_lag = Histogram(
            "analysisd_scheduler_lag_seconds",
            "How late a measurement started after it fell due (best effort)",
            registry=registry,
        )
        self.provider_errors = Counter(
            "analysisd_measurement_errors",
            "Measurements that ended in Error, by provider kind",
            ["provider"],
            registry=registry,
        )
        self.webhook_deliveries = Counter(
            "analysisd_webhook_deliveries",
            "Webhook delivery attempts by outcome (delivered, failed, dead)",
            ["outcome"],
            registry=registry,
        )
        self.webhook_backlog = Gauge(
            "analysisd_webhook_backlog", "Outbox rows not yet delivered", registry=registry
        )
        self.namespace_active_runs = Gauge(
            "analysisd_namespace_active_runs",
            "Runs the scheduler is driving now, per namespace",
            ["namespace"],
            registry=registry,
        )
        self.namespace_measurements = Counter(
            "analysisd_namespace_measurements",
            "Measurements taken, per namespace and phase",
            ["namespace", "phase"],
            registry=registry,
        )
        self.namespace_lag = Histogram(
            "analysisd_namespace_scheduler_lag_seconds",
            "How late a measurement started after it fell due, per namespace (best effort)",
            ["namespace"],
            registry=registry,
        )

    def delivery(self, outcome: str) -> None:
        self.webhook_deliveries.labels(outcome).inc()

    def observe_change(self, run: AnalysisRun, change: RunChange) -> None:
        namespace = run.metadata.namespace or "default"
        kinds = {m.name: next(iter(m.provider), "unknown") for m in run.spec.metrics}
        for new in change.measurements:
            kind = kinds.get(new.metric, "unknown")
            m = new.measurement
            lag = scheduling_lag(run, new.metric)
            if lag is not None:
                self.scheduler_lag.observe(lag)
                self.namespace_lag.labels(namespace).observe(lag)
            self.measurements.labels(kind, m.phase).inc()
            self.namespace_measurements.labels(namespace, m.phase).inc()
            if m.phase == "Error":
                self.provider_errors.labels(kind).inc()
            if m.started_at is not None and m.finished_at is not None:
                seconds = (m.finished_at - m.started_at).total_seconds()
                self.measurement_latency.labels(kind).observe(max(0.0, seconds))

    def set_active_by_namespace(self, counts: dict[str, int]) -> None:
        """Namespaces with no active run drop out (not frozen at their last count)."""
        self.namespace_active_runs.clear()
        for namespace, count in counts.items():
            self.namespace_active_runs.labels(namespace).set(count)

    def set_run_counts(self, counts: dict[str, int]) -> None:
        for phase in set(_PHASES) | set(counts):
            self.runs.labels(phase).set(counts.get(phase, 0))

"""A deterministic demo service instrumented with prometheus-client, for the Prometheus rig.

Every counter is a closed-form function of wall-clock time, so the same model
renders an hour of history (OpenMetrics text for ``promtool tsdb
create-blocks-from openmetrics``) and serves live ``/metrics`` that continue the
exact same lines once Prometheus scrapes it. Tests never wait for traffic.

Why the answers are exact: every series of one version grows as
``OFFSET + share * traffic(t)``, where ``traffic`` is shared by all series of that
version (it wiggles, so range data is not flat, but never decreases). Prometheus
computes ``rate()`` of all those series over the same sample timestamps, so any
ratio of two rates of one version is exactly the ratio of their shares, over any
window, at any time. The huge OFFSET keeps rate() from extrapolating to zero.

Versions (label ``version``; every series also has ``app="demo"``):

=============  =====  =======  ============  ==========  ===========
version        rps    5xx rps  success rate  p99 (s)     mean (s)
=============  =====  =======  ============  ==========  ===========
stable         100    1        0.99          0.375       0.08
canary         10     1        0.90          2.35        0.4
canary-fast    10     0.1      0.99          0.22        0.04
=============  =====  =======  ============  ==========  ===========

(rps is the mean request rate; the instantaneous rate swings ±50% over 5 minutes.)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

APP = "demo"
REQUESTS = "http_requests"  # OpenMetrics family; samples are http_requests_total
DURATION = "http_request_duration_seconds"
BUCKET_BOUNDS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, math.inf)
# Counters start high so rate() never extrapolates a window's start below zero.
OFFSET = 1_000_000.0
WIGGLE_PERIOD_S = 300.0
WIGGLE_AMPLITUDE = 0.5


@dataclass(frozen=True, slots=True)
class VersionModel:
    """One version's traffic: requests/s per status and the cumulative latency histogram."""

    version: str
    requests_per_s: dict[str, float]  # status -> mean requests per second
    cumulative_per_s: tuple[float, ...]  # per BUCKET_BOUNDS, cumulative, last = total
    mean_latency_s: float
    phase: float  # radians; versions do not wiggle in lockstep

    @property
    def total_per_s(self) -> float:
        return sum(self.requests_per_s.values())


VERSIONS: tuple[VersionModel, ...] = (
    VersionModel(
        "stable",
        {"200": 99.0, "500": 1.0},
        (50.0, 90.0, 98.0, 100.0, 100.0, 100.0, 100.0),
        0.08,
        0.0,
    ),
    VersionModel(
        "canary",
        {"200": 9.0, "500": 1.0},
        (2.0, 4.0, 6.0, 8.0, 9.0, 10.0, 10.0),
        0.4,
        1.0,
    ),
    VersionModel(
        "canary-fast",
        {"200": 9.9, "500": 0.1},
        (8.0, 9.5, 10.0, 10.0, 10.0, 10.0, 10.0),
        0.04,
        2.0,
    ),
)


def traffic(t: float, phase: float, epoch: float) -> float:
    """Seconds-worth of mean traffic served from epoch to t: increasing, with a ±50% wiggle.

    History and live scrapes must use the same epoch; a recent one keeps counter
    values small, so float rounding stays far below 1e-9 of any rate.
    """
    x = t - epoch
    omega = 2 * math.pi / WIGGLE_PERIOD_S
    # d/dt = 1 + A*cos(omega*x + phase) > 0 because A < 1: a valid counter.
    return x + WIGGLE_AMPLITUDE / omega * (math.sin(omega * x + phase) - math.sin(phase))


def _go_float(value: float) -> str:
    """Exposition spelling of a float (as prometheus-client writes it: "1.0", "+Inf")."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return "NaN" if math.isnan(value) else repr(value)


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


def samples_at(
    t: float, epoch: float, versions: Sequence[VersionModel] = VERSIONS
) -> Iterator[Sample]:
    """Every sample the demo app exposes at time t, in exposition order."""
    for model in versions:
        seconds = traffic(t, model.phase, epoch)
        for status, rate in model.requests_per_s.items():
            labels = (("app", APP), ("version", model.version), ("status", status))
            yield Sample(f"{REQUESTS}_total", labels, OFFSET + rate * seconds)
    for model in versions:
        seconds = traffic(t, model.phase, epoch)
        base = (("app", APP), ("version", model.version))
        for bound, cumulative in zip(BUCKET_BOUNDS, model.cumulative_per_s, strict=True):
            labels = (*base, ("le", _go_float(bound)))
            yield Sample(f"{DURATION}_bucket", labels, OFFSET + cumulative * seconds)
        total = model.cumulative_per_s[-1]
        yield Sample(f"{DURATION}_count", base, OFFSET + total * seconds)
        yield Sample(f"{DURATION}_sum", base, OFFSET + total * model.mean_latency_s * seconds)


def _line(sample: Sample, timestamp: float) -> str:
    labels = ",".join(f'{key}="{value}"' for key, value in sample.labels)
    return f"{sample.name}{{{labels}}} {_go_float(sample.value)} {timestamp:.3f}"


def render_history(start: float, end: float, step: float, epoch: float) -> Iterator[str]:
    """OpenMetrics lines (with timestamps) for every step from start to end inclusive."""
    count = int((end - start) // step) + 1
    stamps = [start + i * step for i in range(count)]
    families = (
        (REQUESTS, "counter", "Requests served.", f"{REQUESTS}_total"),
        (DURATION, "histogram", "Request latency.", DURATION),
    )
    for family, kind, help_text, prefix in families:
        yield f"# HELP {family} {help_text}"
        yield f"# TYPE {family} {kind}"
        for stamp in stamps:
            for sample in samples_at(stamp, epoch):
                if sample.name.startswith(prefix):
                    yield _line(sample, stamp)
    yield "# EOF"


class DemoCollector:
    """prometheus-client collector exposing the model at the current wall-clock time."""

    def __init__(self, epoch: float, clock: Callable[[], float] = time.time) -> None:
        self._epoch = epoch
        self._clock = clock

    def collect(self) -> Iterable[Metric]:
        now = self._clock()
        requests = CounterMetricFamily(
            REQUESTS, "Requests served.", labels=["app", "version", "status"]
        )
        latency = HistogramMetricFamily(DURATION, "Request latency.", labels=["app", "version"])
        for model in VERSIONS:
            seconds = traffic(now, model.phase, self._epoch)
            for status, rate in model.requests_per_s.items():
                requests.add_metric([APP, model.version, status], OFFSET + rate * seconds)
            buckets = [
                (_go_float(bound), OFFSET + cumulative * seconds)
                for bound, cumulative in zip(BUCKET_BOUNDS, model.cumulative_per_s, strict=True)
            ]
            total = model.cumulative_per_s[-1]
            latency.add_metric(
                [APP, model.version],
                buckets,
                OFFSET + total * model.mean_latency_s * seconds,
            )
        return [requests, latency]


class DemoApp:
    """The demo service's /metrics on 127.0.0.1 (ephemeral port), in a daemon thread."""

    def __init__(self, epoch: float) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(DemoCollector(epoch))
        self._server, self._thread = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self.port: int = self._server.server_address[1]

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

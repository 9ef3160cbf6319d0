"""Prometheus metrics about provider traffic, on a CollectorRegistry passed in.

No module-level registry: the daemon builds one registry and hands it down, tests
build their own and read values back with `registry.get_sample_value`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

# Provider latencies span a 2 ms loopback answer to a 60 s timeout.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0)


REQUESTS_HELP = "Requests sent to metric providers (after coalescing, retries included)."
SECONDS_HELP = "Time from sending a provider request to its answer."


class RequestStats:
    """One provider kind's request count and latency histogram, as plain numbers.

    Counted for every request, so kept without prometheus_client's per-call lock and
    checks (a quarter of a microsecond for a count, more for an observation); the
    collector below turns them into the same families at scrape time. The daemon
    counts and scrapes on its one event loop thread.
    """

    __slots__ = ("buckets", "requests", "seconds")

    def __init__(self) -> None:
        self.requests = 0
        self.buckets = [0] * (len(REQUEST_BUCKETS) + 1)  # the last one is +Inf
        self.seconds = 0.0

    def observe(self, seconds: float) -> None:
        # Bucket `le` holds values <= le: the first bound not below the value.
        self.buckets[bisect_left(REQUEST_BUCKETS, seconds)] += 1
        self.seconds += seconds


class _RequestCollector(Collector):
    """analysisd_provider_requests_total and analysisd_provider_request_seconds."""

    def __init__(self, stats: dict[str, RequestStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "analysisd_provider_requests", REQUESTS_HELP, labels=["provider"]
        )
        seconds = HistogramMetricFamily(
            "analysisd_provider_request_seconds", SECONDS_HELP, labels=["provider"]
        )
        for kind, stats in sorted(self._stats.items()):
            requests.add_metric([kind], stats.requests)
            cumulative, buckets = 0, []
            for bound, count in zip((*REQUEST_BUCKETS, float("inf")), stats.buckets, strict=True):
                cumulative += count
                buckets.append((_bound(bound), float(cumulative)))
            seconds.add_metric([kind], buckets, stats.seconds)
        yield requests
        yield seconds

    def describe(self) -> Iterator[Metric]:
        # Names only, so the registry refuses a second family of the same name.
        yield CounterMetricFamily("analysisd_provider_requests", REQUESTS_HELP)
        yield HistogramMetricFamily("analysisd_provider_request_seconds", SECONDS_HELP)


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)


class ProviderMetrics:
    """The provider families; label `provider` is the Argo kind (prometheus, web, ...)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._request_stats: dict[str, RequestStats] = {}
        registry.register(_RequestCollector(self._request_stats))
        self.errors = Counter(
            "analysisd_provider_errors",
            "Provider requests that failed, by error kind (ProviderTimeout, ProviderHTTPError...).",
            ["provider", "kind"],
            registry=registry,
        )
        self.rate_limit_waits = Counter(
            "analysisd_provider_rate_limit_waits",
            "Requests that waited for the rate limiter or a server's Retry-After.",
            ["provider"],
            registry=registry,
        )
        self.rate_limit_wait_seconds = Histogram(
            "analysisd_provider_rate_limit_wait_seconds",
            "Time requests spent waiting for the rate limiter or Retry-After.",
            ["provider"],
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.coalesced = Counter(
            "analysisd_provider_coalesced",
            "Measurements answered by an identical request already in flight or just done.",
            ["provider"],
            registry=registry,
        )

    def request_stats(self, kind: str) -> RequestStats:
        """The request count and latency histogram of one provider kind."""
        found = self._request_stats.get(kind)
        if found is None:
            found = self._request_stats[kind] = RequestStats()
        return found

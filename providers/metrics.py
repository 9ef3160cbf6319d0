"""Prometheus metrics about provider traffic, on a CollectorRegistry passed in.

No module-level registry: the daemon builds one registry and hands it down, tests
build their own and read values back with `registry.get_sample_value`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# Provider latencies span a 2 ms loopback answer to a 60 s timeout.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0)


class ProviderMetrics:
    """The provider families; label `provider` is the Argo kind (prometheus, web, ...)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "analysisd_provider_requests",
            "Requests sent to metric providers (after coalescing, retries included).",
            ["provider"],
            registry=registry,
        )
        self.errors = Counter(
            "analysisd_provider_errors",
            "Provider requests that failed, by error kind (ProviderTimeout, ProviderHTTPError...).",
            ["provider", "kind"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "analysisd_provider_request_seconds",
            "Time from sending a provider request to its answer.",
            ["provider"],
            buckets=REQUEST_BUCKETS,
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

"""Provider request stats are exposed exactly as prometheus_client's own families would be."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from providers.metrics import REQUEST_BUCKETS, ProviderMetrics

# On a bucket bound, between bounds, below the first and above the last.
OBSERVED = {"web": [0.005, 0.0051, 0.3, 0.001, 61.0, 2.5], "prometheus": [0.02]}


def samples(
    registry: CollectorRegistry, family: str
) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    return {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for f in registry.collect()
        if f.name == family
        for s in f.samples
        if not s.name.endswith("_created")
    }


def test_request_stats_match_a_prometheus_client_counter_and_histogram() -> None:
    ours = CollectorRegistry()
    metrics = ProviderMetrics(ours)
    theirs = CollectorRegistry()
    counter = Counter("analysisd_provider_requests", "x", ["provider"], registry=theirs)
    histogram = Histogram(
        "analysisd_provider_request_seconds",
        "x",
        ["provider"],
        buckets=REQUEST_BUCKETS,
        registry=theirs,
    )
    for kind, values in OBSERVED.items():
        stats = metrics.request_stats(kind)
        for value in values:
            stats.requests += 1
            stats.observe(value)
            counter.labels(kind).inc()
            histogram.labels(kind).observe(value)
    for family in ("analysisd_provider_requests", "analysisd_provider_request_seconds"):
        assert samples(ours, family) == samples(theirs, family)
        assert samples(ours, family)  # not vacuous
    text = generate_latest(ours).decode()
    assert 'analysisd_provider_requests_total{provider="web"} 6.0' in text
    assert 'analysisd_provider_request_seconds_bucket{le="+Inf",provider="web"} 6.0' in text
    assert "# TYPE analysisd_provider_request_seconds histogram" in text


def test_the_same_kind_shares_one_stats_record_and_a_second_registration_is_refused() -> None:
    registry = CollectorRegistry()
    metrics = ProviderMetrics(registry)
    assert metrics.request_stats("web") is metrics.request_stats("web")
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        ProviderMetrics(registry)

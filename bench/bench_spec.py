"""Spec benchmark: loading templates and preparing a run's metrics, against bare parsing.

    python bench/bench_spec.py [--repeat 2000]

Baselines measured in the same run:
1. load: `yaml.safe_load_all` of the 20 upstream examples (../shared/argo-templates) vs
   `analysisd.loader.load_documents` (alias-bounded YAML + typed models + field paths);
2. prepare: `Metric.model_validate` of a run's 3 metric dicts (what any typed reading
   costs) vs `build_run_spec` + `resolve_metrics` + `validate_metrics` + rule matching
   (what the scheduler does once per submitted run).
Reports the median of 7 timings of `repeat` iterations each, and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from analysisd.args import build_run_spec, resolve_metrics
from analysisd.loader import load_documents
from analysisd.rules import dry_run_metrics, retention_limits
from analysisd.spec import AnalysisTemplate, Argument, Metric, validate_metrics

TEMPLATES = Path(__file__).resolve().parents[2] / "shared" / "argo-templates"

RUN_TEMPLATE = """
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: bench}
spec:
  args: [{name: service}, {name: count, value: "5"}, {name: threshold, value: "0.95"}]
  dryRun: [{metricName: latency}]
  measurementRetention: [{metricName: ".*", limit: 20}]
  metrics:
  - name: success-rate
    interval: 1m
    count: "{{args.count}}"
    failureLimit: 1
    successCondition: result[0] >= {{args.threshold}}
    provider:
      prometheus:
        address: http://prometheus:9090
        query: sum(rate(http_requests_total{service="{{args.service}}",code!~"5.."}[5m]))
          / sum(rate(http_requests_total{service="{{args.service}}"}[5m]))
  - name: latency
    interval: 1m
    count: "{{args.count}}"
    successCondition: result[0] < 0.5
    provider:
      prometheus:
        address: http://prometheus:9090
        query: histogram_quantile(0.99, sum by (le)
          (rate(http_request_duration_seconds_bucket{service="{{args.service}}"}[5m])))
  - name: web
    successCondition: result.ok == true
    provider:
      web: {url: "http://{{args.service}}/health", jsonPath: "{$}"}
"""


def timed(fn: Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        samples.append((time.perf_counter() - start) / repeat)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2000)
    repeat = parser.parse_args().repeat

    texts = [p.read_text() for p in sorted(TEMPLATES.glob("*.yaml")) if ".fragment." not in p.name]
    base_load = timed(lambda: [list(yaml.safe_load_all(t)) for t in texts], max(1, repeat // 50))
    our_load = timed(lambda: [load_documents(t) for t in texts], max(1, repeat // 50))

    (template,) = load_documents(RUN_TEMPLATE)
    assert isinstance(template, AnalysisTemplate)
    raw_metrics = yaml.safe_load(RUN_TEMPLATE)["spec"]["metrics"]
    args = [Argument(name="service", value="checkout")]

    def prepare() -> None:
        spec = build_run_spec([template], [], args)
        metrics = resolve_metrics(spec, None).metrics
        validate_metrics(metrics)
        dry_run_metrics(spec.dry_run, metrics)
        retention_limits(spec.measurement_retention, metrics)

    base_prepare = timed(lambda: [Metric.model_validate(m) for m in raw_metrics], repeat)
    our_prepare = timed(prepare, repeat)

    print("| step | baseline (µs) | analysisd (µs) | ratio |")
    print("| --- | ---: | ---: | ---: |")
    rows = [
        (f"load {len(texts)} example files", base_load, our_load),
        ("prepare a 3-metric run", base_prepare, our_prepare),
    ]
    for name, base, ours in rows:
        print(f"| {name} | {base * 1e6:.1f} | {ours * 1e6:.1f} | {ours / base:.2f} |")


if __name__ == "__main__":
    main()

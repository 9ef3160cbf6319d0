"""`analysisd run` with a success-rate template against the real Prometheus rig."""

# ruff: noqa: F811  (pytest fixtures are imported, then named as parameters)

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.rigs.prometheus import PrometheusRig, prometheus_rig  # noqa: F401

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

TEMPLATE = """\
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: success-rate
spec:
  args:
  - name: prometheus-address
  - name: version
  metrics:
  - name: success-rate
    successCondition: result[0] >= 0.95
    provider:
      prometheus:
        address: "{{args.prometheus-address}}"
        query: |
          sum(rate(http_requests_total{app="demo",version="{{args.version}}",status!~"5.."}[1m]))
          /
          sum(rate(http_requests_total{app="demo",version="{{args.version}}"}[1m]))
  - name: p99-latency
    successCondition: result[0] < 1
    provider:
      prometheus:
        address: "{{args.prometheus-address}}"
        query: |
          histogram_quantile(0.99, sum by (le) (rate(
            http_request_duration_seconds_bucket{app="demo",version="{{args.version}}"}[5m])))
"""


def run_template(rig: PrometheusRig, tmp_path: Path, version: str) -> tuple[int, dict[str, Any]]:
    template = tmp_path / "success-rate.yaml"
    template.write_text(TEMPLATE)
    command = [
        sys.executable, "-m", "analysisd.cli", "run", str(template),
        "--arg", f"prometheus-address={rig.url}", "--arg", f"version={version}", "-o", "json",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def metric_results(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    status = run["status"]
    assert isinstance(status, dict)
    return {result["name"]: result for result in status["metricResults"]}


@pytest.mark.parametrize(
    ("version", "exit_code", "phase", "p99_phase"),
    [
        ("stable", 0, "Successful", "Successful"),
        ("canary", 1, "Failed", "Failed"),
        ("canary-fast", 0, "Successful", "Successful"),
    ],
)
def test_success_rate_template_decides_each_version(
    prometheus_rig: PrometheusRig,
    tmp_path: Path,
    version: str,
    exit_code: int,
    phase: str,
    p99_phase: str,
) -> None:
    code, run = run_template(prometheus_rig, tmp_path, version)
    results = metric_results(run)
    assert code == exit_code, run
    assert results["success-rate"]["phase"] == phase
    assert results["p99-latency"]["phase"] == p99_phase
    (measurement,) = results["success-rate"]["measurements"]
    expected = {"stable": 0.99, "canary": 0.90, "canary-fast": 0.99}[version]
    assert json.loads(measurement["value"]) == [pytest.approx(expected, abs=1e-9)]
    assert "ResolvedPrometheusQuery" in measurement["metadata"]

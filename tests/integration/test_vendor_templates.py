"""One real-world-shaped template per kind (graphite, influxdb, newRelic, wavefront, skywalking):
`analysisd lint` passes it and `analysisd run` measures it against the local peer to a verdict.

Each template keeps Argo's field names exactly, in the shape of Argo's documentation and of the
public templates counted in issue 18; only the address (an argument here) points at the peer.
The CLI runs as a subprocess, as a user runs it. The metrics have no `interval`/`count` here
(one measurement each, so a run ends at its first verdict); everything else is as written.
"""

# ruff: noqa: F811  (pytest fixtures are imported, then named as parameters)

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.rigs.graphite import GraphiteRig, graphite_rig  # noqa: F401
from tests.rigs.influx_api import InfluxApi, value_table
from tests.rigs.newrelic_api import NerdGraph
from tests.rigs.skywalking_api import SkyWalkingOap
from tests.rigs.wavefront_api import Series, WavefrontApi

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ARG = re.compile(r"\{\{\s*args\.([\w-]+)\s*\}\}")

GRAPHITE = """\
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: success-rate-graphite
spec:
  args:
  - name: service-name
  - name: graphite-address
  metrics:
  - name: success-rate
    successCondition: len(result) > 0 && result[len(result) - 1] >= 95
    failureLimit: 3
    provider:
      graphite:
        address: "{{args.graphite-address}}"
        query: |
          target=summarize(
            asPercent(
              sumSeries(stats.{{args.service-name}}.outcome.{CLIENT_ERROR,SUCCESS}.count),
              sumSeries(stats.{{args.service-name}}.outcome.*.count)
            ),
            '10min',
            'avg'
          )&from=-5min
"""

INFLUXDB = """\
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: error-rate-influxdb
spec:
  args:
  - name: service
  metrics:
  - name: error-rate
    successCondition: result[0] < 0.05
    failureLimit: 1
    provider:
      influxdb:
        profile: influxdb-prod
        query: |
          from(bucket: "app_metrics")
            |> range(start: -5m)
            |> filter(fn: (r) => r._measurement == "http" and r._field == "error_rate")
            |> filter(fn: (r) => r.service == "{{args.service}}")
            |> mean()
"""

NEWRELIC = """\
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: newrelic-success-rate
spec:
  args:
  - name: application-name
  metrics:
  - name: success-rate
    successCondition: result.successRate >= 0.95
    failureLimit: 3
    provider:
      newRelic:
        profile: newrelic-prod
        query: |
          FROM Transaction SELECT percentage(count(*), WHERE httpResponseCode != 500) as successRate
          where appName = '{{ args.application-name }}'
"""

WAVEFRONT = """\
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: success-rate-wavefront
spec:
  args:
  - name: service-name
  - name: wavefront-address
  metrics:
  - name: success-rate
    successCondition: result >= 0.95
    failureLimit: 3
    provider:
      wavefront:
        address: "{{args.wavefront-address}}"
        query: |
          sum(rate(5m, ts("istio.requestcount.count", response_code!=500 and destination_service="{{args.service-name}}"))) /
          sum(rate(5m, ts("istio.requestcount.count", reporter=client and destination_service="{{args.service-name}}")))
"""  # noqa: E501  (the query as real templates write it)

SKYWALKING = """\
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: skywalking-apdex
spec:
  args:
  - name: service-name
  - name: oap-address
  metrics:
  - name: apdex
    successCondition: "all(result.service_apdex.values.values, {asFloat(.value) >= 9900})"
    failureLimit: 3
    provider:
      skywalking:
        interval: 3m
        address: "{{args.oap-address}}"
        query: 'query queryData($duration: Duration!) {
          service_apdex: readMetricsValues(
            condition: { name: "service_apdex", entity: { scope: Service, serviceName: "{{ args.service-name }}", normal: true } },
            duration: $duration) {
              label values { values { value } }
          } }'
"""  # noqa: E501  (Argo's documented query, one line as written)


def provider_block(template: str, kind: str, args: dict[str, str]) -> dict[str, Any]:
    """The template's provider block with arguments substituted (what the peer will be sent)."""
    metric = yaml.safe_load(template)["spec"]["metrics"][0]
    block = metric["provider"][kind]
    return {k: ARG.sub(lambda m: args[m.group(1)], v) for k, v in block.items()}


async def cli(*argv: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "analysisd.cli",
        *argv,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def lint_and_run(
    tmp_path: Path,
    template: str,
    args: dict[str, str],
    secrets: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    path = tmp_path / "template.yaml"
    path.write_text(template)
    code, out, err = await cli("lint", str(path))
    assert (code, out) == (0, ""), err
    secrets_dir = tmp_path / "secrets"
    for name, keys in (secrets or {}).items():
        (secrets_dir / name).mkdir(parents=True)
        for key, value in keys.items():
            (secrets_dir / name / key).write_text(value)
    argv = ["run", str(path), "-o", "json", "--secrets-dir", str(secrets_dir)]
    for name, value in args.items():
        argv += ["--arg", f"{name}={value}"]
    code, out, err = await cli(*argv)
    assert out, err
    run: dict[str, Any] = json.loads(out)
    assert code == 0, run
    assert run["status"]["phase"] == "Successful", run
    for secret in (secrets or {}).values():
        for value in secret.values():
            if len(value) > 8:
                assert value not in out + err
    return run


def only_measurement(run: dict[str, Any]) -> dict[str, Any]:
    (result,) = run["status"]["metricResults"]
    (measurement,) = result["measurements"]
    assert measurement["phase"] == "Successful", measurement
    return dict(measurement)


async def test_graphite_template(graphite_rig: GraphiteRig, tmp_path: Path) -> None:
    service = f"checkout{int(time.time())}"
    now = int(time.time()) // 10 * 10
    graphite_rig.write(
        {
            f"stats.{service}.outcome.SUCCESS.count": [(now - 20, 97.0), (now - 10, 98.0)],
            f"stats.{service}.outcome.CLIENT_ERROR.count": [(now - 20, 1.0), (now - 10, 1.0)],
            f"stats.{service}.outcome.SERVER_ERROR.count": [(now - 20, 2.0), (now - 10, 1.0)],
        }
    )
    graphite_rig.wait_for(f"stats.{service}.outcome.SERVER_ERROR.count", 2)
    args = {"service-name": service, "graphite-address": graphite_rig.url}
    run = await lint_and_run(tmp_path, GRAPHITE, args)
    value = json.loads(only_measurement(run)["value"])
    assert value and value[-1] >= 95


async def test_influxdb_template(tmp_path: Path) -> None:
    args = {"service": "checkout"}
    query = provider_block(INFLUXDB, "influxdb", args)["query"]
    async with InfluxApi(token="influx-token-0123456789", org="acme") as api:
        api.tables[query] = [value_table([0.012])]
        secrets = {"influxdb-prod": {"authToken": api.token, "org": "acme", "address": api.url}}
        run = await lint_and_run(tmp_path, INFLUXDB, args, secrets)
        assert len(api.requests) == 1
    assert only_measurement(run)["value"] == "[0.012]"


async def test_newrelic_template(tmp_path: Path) -> None:
    args = {"application-name": "checkout"}
    nrql = provider_block(NEWRELIC, "newRelic", args)["query"]
    async with NerdGraph(api_key="NRAK-TEMPLATEKEY0123456789", account_id=1234567) as graph:
        graph.results[nrql] = [{"successRate": 99.2}]
        secrets = {
            "newrelic-prod": {
                "personal-api-key": graph.api_key,
                "account-id": "1234567",
                "region": "eu",
                "base-url-nerdgraph": graph.url,
            }
        }
        run = await lint_and_run(tmp_path, NEWRELIC, args, secrets)
    assert only_measurement(run)["value"] == '{"successRate":99.2}'


async def test_wavefront_template(tmp_path: Path) -> None:
    async with WavefrontApi(token="wf-template-token-0123456789") as api:
        args = {"service-name": "checkout", "wavefront-address": api.url}
        query = provider_block(WAVEFRONT, "wavefront", args)["query"]
        api.series[query] = [Series("success-rate", [(int(time.time()) - 30, 0.97)])]
        secrets = {"wavefront-api-tokens": {"127.0.0.1": api.token}}
        run = await lint_and_run(tmp_path, WAVEFRONT, args, secrets)
    measurement = only_measurement(run)
    assert measurement["value"] == "0.97"
    assert set(measurement["metadata"]) == {"timestamps", "drift"}


async def test_skywalking_template(tmp_path: Path) -> None:
    async with SkyWalkingOap() as oap:
        oap.metrics[("service_apdex", "checkout")] = [9950, 9990, 10000, 9920]
        args = {"service-name": "checkout", "oap-address": oap.url}
        run = await lint_and_run(tmp_path, SKYWALKING, args)
        (request,) = oap.requests
    assert request.body["variables"]["duration"]["step"] == "MINUTE"
    assert json.loads(only_measurement(run)["value"])["service_apdex"]["values"]["values"] == [
        {"value": 9950},
        {"value": 9990},
        {"value": 10000},
        {"value": 9920},
    ]

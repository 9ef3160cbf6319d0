"""Every example in examples/ lints clean and gives the expected verdict against real peers.

Prometheus examples run against the real Prometheus rig (tests/rigs/prometheus.py),
whose stable version serves a 0.99 success rate and a 0.375 s p99, and whose canary
serves 0.90 and 2.35 s. The business metric runs against a loopback JSON endpoint.
`analysisd run` runs as a subprocess, exactly as a CI pipeline would call it.
"""

# ruff: noqa: F811
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from analysisd.commands.lint import lint_paths
from tests.rigs.prometheus import PrometheusRig, prometheus_rig  # noqa: F401

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
TOKEN = "stats-token-3f9c1d"


def run_example(name: str, *args: str, secrets_dir: Path | None = None) -> tuple[int, Any]:
    cmd = [sys.executable, "-m", "analysisd.cli", "run", str(EXAMPLES / name), "-o", "json"]
    for arg in args:
        cmd += ["--arg", arg]
    if secrets_dir is not None:
        cmd += ["--secrets-dir", str(secrets_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def metric(run: dict[str, Any], name: str) -> dict[str, Any]:
    results: list[dict[str, Any]] = run["status"]["metricResults"]
    return next(r for r in results if r["name"] == name)


def test_every_example_lints_clean() -> None:
    # The README's `analysisd lint examples/*.yaml`: every top-level example is an Argo
    # object; other controllers' manifests (a Flagger Canary, a Job) live in subfolders.
    files = sorted(str(p) for p in EXAMPLES.glob("*.yaml"))
    assert len(files) >= 6
    assert lint_paths(files) == []


@pytest.fixture
def prom(prometheus_rig: PrometheusRig) -> Iterator[str]:
    yield f"prometheus-address={prometheus_rig.url}"


@pytest.mark.parametrize(
    ("version", "exit_code", "phase"), [("stable", 0, "Successful"), ("canary", 1, "Failed")]
)
def test_http_success_rate_example(prom: str, version: str, exit_code: int, phase: str) -> None:
    code, run = run_example(
        "http-success-rate.yaml", prom, "app=demo", f"version={version}", "interval=1s", "count=2"
    )
    assert (code, run["status"]["phase"]) == (exit_code, phase)
    result = metric(run, "success-rate")
    expected = 0.99 if version == "stable" else 0.90
    assert float(result["measurements"][-1]["value"].strip("[]")) == pytest.approx(expected)
    # failureLimit 1: the canary fails on its second failed measurement, the stable takes 2.
    assert result["count"] == 2


@pytest.mark.parametrize(("version", "exit_code"), [("stable", 0), ("canary", 1)])
def test_p99_latency_example(prom: str, version: str, exit_code: int) -> None:
    code, run = run_example(
        "p99-latency.yaml", prom, "app=demo", f"version={version}", "interval=1s", "count=1"
    )
    assert code == exit_code, run["status"]


def test_dry_run_example_reports_but_does_not_decide(prom: str) -> None:
    code, run = run_example("dry-run.yaml", prom, "app=demo", "version=stable")
    assert code == 0, run["status"]
    status = run["status"]
    assert status["phase"] == "Successful"
    # stable p99 is 0.375 s: the stricter dry-run target (0.3 s) fails, without failing the run.
    assert metric(run, "experimental-p99-latency")["phase"] == "Failed"
    assert metric(run, "experimental-p99-latency")["dryRun"] is True
    assert status["dryRunSummary"]["failed"] == 1
    assert status["runSummary"]["successful"] == 1


@pytest.mark.parametrize(
    ("baseline", "canary", "exit_code", "phase"),
    [("stable", "stable", 0, "Successful"), ("stable", "canary", 1, "Failed")],
)
def test_canary_judge_example(
    prom: str, baseline: str, canary: str, exit_code: int, phase: str
) -> None:
    code, run = run_example(
        "canary-judge.yaml",
        prom,
        "app=demo",
        f"baseline-version={baseline}",
        f"canary-version={canary}",
    )
    assert (code, run["status"]["phase"]) == (exit_code, phase), run["status"]


@pytest.fixture
async def stats_server(unused_tcp_port: int) -> AsyncIterator[dict[str, Any]]:
    state: dict[str, Any] = {"conversion": 0.031, "unauthorised": 0}

    async def stats(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            state["unauthorised"] += 1
            return web.json_response({"error": "unauthorised"}, status=401)
        return web.json_response({"data": {"conversion": state["conversion"], "orders": 1204}})

    app = web.Application()
    app.router.add_get("/stats", stats)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", unused_tcp_port)
    await site.start()
    state["url"] = f"http://127.0.0.1:{unused_tcp_port}/stats"
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    (tmp_path / "business-stats").mkdir()
    (tmp_path / "business-stats" / "token").write_text(TOKEN)
    return tmp_path


@pytest.mark.parametrize(("conversion", "exit_code"), [(0.031, 0), (0.012, 1)])
async def test_business_metric_example(
    stats_server: dict[str, Any], secrets_dir: Path, conversion: float, exit_code: int
) -> None:
    import asyncio

    stats_server["conversion"] = conversion
    code, run = await asyncio.to_thread(
        run_example,
        "business-metric.yaml",
        f"stats-url={stats_server['url']}",
        "interval=200ms",
        "count=2",
        secrets_dir=secrets_dir,
    )
    assert code == exit_code, run["status"]
    assert stats_server["unauthorised"] == 0
    assert TOKEN not in json.dumps(run)

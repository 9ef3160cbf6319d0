"""`analysisd run` with a Datadog v2 template against the fake API (CLI as a subprocess)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.rigs.datadog_fake import DatadogFake, ScalarAnswer

pytestmark = pytest.mark.integration

API_KEY = "dd-api-key-0123456789abcdef"
APP_KEY = "dd-app-key-fedcba9876543210"

# Argo's "Moving to v2" template (argo-templates/11), measured once.
TEMPLATE = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "AnalysisTemplate",
    "metadata": {"name": "loq-error-rate"},
    "spec": {
        "args": [{"name": "service-name"}],
        "metrics": [
            {
                "name": "error-rate",
                "successCondition": "default(result, 0) < 10",
                "failureLimit": 0,
                "provider": {
                    "datadog": {
                        "apiVersion": "v2",
                        "interval": "5m",
                        "queries": {
                            "a": "sum:requests.errors{service:{{args.service-name}}}.as_count()",
                            "b": "sum:requests{service:{{args.service-name}}}.as_count()",
                        },
                        "formula": "moving_rollup(a, 60, 'sum') / b",
                    }
                },
            }
        ],
    },
}


async def run_cli(
    tmp_path: Path, fake: DatadogFake, template: dict[str, Any] = TEMPLATE
) -> tuple[int, dict[str, Any], str]:
    secret = tmp_path / "secrets" / "datadog"
    secret.mkdir(parents=True)
    (secret / "api-key").write_text(API_KEY)
    (secret / "app-key").write_text(APP_KEY)
    (secret / "address").write_text(fake.url)
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(template))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "analysisd.cli",
        "run",
        str(path),
        "--arg",
        "service-name=checkout",
        "--secrets-dir",
        str(tmp_path / "secrets"),
        "-o",
        "json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    assert out, f"no output; stderr: {err.decode()}"
    return proc.returncode, json.loads(out), out.decode() + err.decode()


@pytest.mark.parametrize(
    ("value", "exit_code", "phase"), [(2.5, 0, "Successful"), (12.0, 1, "Failed")]
)
async def test_datadog_v2_template_runs_to_a_verdict(
    tmp_path: Path, value: float, exit_code: int, phase: str
) -> None:
    async with DatadogFake(api_key=API_KEY, app_key=APP_KEY) as fake:
        fake.scalar["moving_rollup(a, 60, 'sum') / b"] = ScalarAnswer([value])
        code, run, text = await run_cli(tmp_path, fake)
        queries = fake.requests[0].body["data"]["attributes"]["queries"]
    assert code == exit_code
    assert run["status"]["phase"] == phase
    (measurement,) = run["status"]["metricResults"][0]["measurements"]
    assert measurement["value"] == f"{value:g}"
    assert {q["query"] for q in queries} == {
        "sum:requests.errors{service:checkout}.as_count()",
        "sum:requests{service:checkout}.as_count()",
    }
    assert API_KEY not in text and APP_KEY not in text


async def test_rejected_keys_end_the_run_in_error_without_leaking_them(tmp_path: Path) -> None:
    async with DatadogFake(api_key="another-key", app_key=APP_KEY) as fake:
        # One Error measurement decides the run (Argo retries errors only every 10 s).
        template = json.loads(json.dumps(TEMPLATE))
        template["spec"]["metrics"][0]["consecutiveErrorLimit"] = 0
        code, run, text = await run_cli(tmp_path, fake, template)
    assert code == 2
    assert run["status"]["phase"] == "Error"
    (measurement,) = run["status"]["metricResults"][0]["measurements"]
    assert "403" in measurement["message"]
    assert API_KEY not in text and APP_KEY not in text

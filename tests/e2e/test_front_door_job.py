"""examples/job/analysisd-run-job.yaml: `analysisd run` as the container of an Argo `job`
metric. The container's own command line, taken from the example, runs against the real
Prometheus rig; its exit code is what the Job (backoffLimit 0, restartPolicy Never) and
so Argo's job metric see: 0 completes the Job (Successful), anything else fails it."""

# ruff: noqa: F811
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.rigs.prometheus import PrometheusRig, prometheus_rig  # noqa: F401

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "job" / "analysisd-run-job.yaml"


def job_spec() -> dict[str, Any]:
    template = yaml.safe_load(EXAMPLE.read_text())
    [metric] = template["spec"]["metrics"]
    spec: dict[str, Any] = metric["provider"]["job"]["spec"]
    return spec


def container_args(values: dict[str, str], prometheus: str) -> list[str]:
    [container] = job_spec()["template"]["spec"]["containers"]
    args: list[str] = []
    for arg in container["args"]:
        arg = re.sub(r"\{\{\s*args\.([\w-]+)\s*\}\}", lambda m: values[m.group(1)], arg)
        arg = arg.replace("/templates/", str(REPO / "examples") + "/")  # the ConfigMap mount
        if arg.startswith("prometheus-address="):
            arg = f"prometheus-address={prometheus}"
        args.append(arg)
    return args


def test_the_job_fails_on_the_first_non_zero_exit() -> None:
    spec = job_spec()
    assert spec["backoffLimit"] == 0
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    [container] = spec["template"]["spec"]["containers"]
    assert container["args"][0] == "run"  # the image's entrypoint is `analysisd`


@pytest.mark.parametrize(
    ("version", "exit_code", "phase"), [("stable", 0, "Successful"), ("canary", 1, "Failed")]
)
def test_the_containers_exit_code_is_the_verdict(
    prometheus_rig: PrometheusRig, version: str, exit_code: int, phase: str
) -> None:
    args = container_args({"app": "demo", "version": version}, prometheus_rig.url)
    # Shorter than the template's 1m x 5 so the test is quick.
    args += ["--arg", "interval=1s", "--arg", "count=2"]
    proc = subprocess.run(
        [sys.executable, "-m", "analysisd.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == exit_code, proc.stderr
    assert json.loads(proc.stdout)["status"]["phase"] == phase

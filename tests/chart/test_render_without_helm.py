"""docs/deployment.md's way to render the chart without helm works, and says what it makes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "render-chart.py"


def kinds(*args: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=True
    ).stdout
    return sorted(doc["kind"] for doc in yaml.safe_load_all(out) if doc)


def test_default_render_has_no_disruption_budget_for_one_replica() -> None:
    assert kinds() == [
        "ConfigMap",
        "Deployment",
        "PersistentVolumeClaim",
        "Service",
        "ServiceAccount",
    ]


def test_ha_values_add_the_budget_the_docs_promise_with_replicas() -> None:
    got = kinds("-f", str(REPO / "helm" / "analysisd" / "ci" / "ha-values.yaml"))
    assert {"PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor"} <= set(got)


def test_refused_values_print_the_charts_message_and_exit_1() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--set", "replicaCount=3"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "replicaCount=3 needs store.postgres.enabled=true" in result.stderr


def test_deployment_docs_name_the_script_and_the_budget_rule() -> None:
    text = (REPO / "docs" / "deployment.md").read_text()
    assert "python scripts/render-chart.py" in text
    assert "`replicaCount > 1`" in text

"""docs/deployment.md explains every value in helm/analysisd/values.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def value_paths(node: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the leaves; a map documented as a whole stops the descent."""
    if isinstance(node, dict) and node and prefix not in WHOLE:
        out: list[str] = []
        for key, value in node.items():
            out.extend(value_paths(value, f"{prefix}.{key}" if prefix else key))
        return out
    return [prefix]


# Groups the table explains in one row (their sub-keys are Kubernetes fields).
WHOLE = {
    "resources",
    "podSecurityContext",
    "securityContext",
    "probes.liveness",
    "probes.readiness",
}


def test_every_chart_value_has_a_row_in_the_values_table() -> None:
    values = yaml.safe_load((ROOT / "helm" / "analysisd" / "values.yaml").read_text())
    doc = (ROOT / "docs" / "deployment.md").read_text()
    rows = {
        line.split("|")[1].strip().strip("`") for line in doc.splitlines() if line.startswith("| `")
    }
    rows = {r.removesuffix(".*") for r in rows}
    missing = [p for p in value_paths(values) if p not in rows]
    assert missing == []

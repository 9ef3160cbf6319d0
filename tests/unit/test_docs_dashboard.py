"""Metric names in docs/grafana-dashboard.json and docs/alerts.md exist in the code.

The names the code registers are collected from a fresh CollectorRegistry after
constructing the daemon's and the providers' metric objects, so a renamed metric
breaks this test instead of silently emptying a dashboard panel or an alert.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from analysisd.telemetry import DaemonMetrics
from providers.metrics import ProviderMetrics

DOCS = Path(__file__).resolve().parents[2] / "docs"
METRIC_NAME = re.compile(r"\b(analysisd_[a-z0-9_]+)")


def registered_names() -> set[str]:
    """Family names and every exposed sample name (_total, _bucket, _count, ...)."""
    registry = CollectorRegistry()
    DaemonMetrics(registry)
    ProviderMetrics(registry)
    names: set[str] = set()
    for family in registry.collect():
        names.add(family.name)
        if family.type == "counter":
            names.update({family.name + "_total", family.name + "_created"})
        if family.type == "histogram":
            names.update(family.name + s for s in ("_bucket", "_count", "_sum", "_created"))
    return names


def expressions(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from expressions(value)
    elif isinstance(node, list):
        for item in node:
            yield from expressions(item)


def dashboard_metric_names() -> set[str]:
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    return {name for expr in expressions(dashboard) for name in METRIC_NAME.findall(expr)}


def alert_rules() -> dict[str, Any]:
    text = (DOCS / "alerts.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert block is not None, "docs/alerts.md has no ```yaml block"
    rules: dict[str, Any] = yaml.safe_load(block.group(1))
    return rules


def test_registered_names_include_a_known_counter_sample() -> None:
    assert "analysisd_measurements_total" in registered_names()


def test_dashboard_uses_only_registered_metrics() -> None:
    used = dashboard_metric_names()
    assert used, "the dashboard names no analysisd metric"
    assert used <= registered_names(), sorted(used - registered_names())


def test_dashboard_has_a_panel_for_every_registered_family() -> None:
    registry = CollectorRegistry()
    DaemonMetrics(registry)
    ProviderMetrics(registry)
    families = {f.name for f in registry.collect()}
    text = (DOCS / "grafana-dashboard.json").read_text()
    assert {f for f in families if f not in text} == set()


def test_alerts_use_only_registered_metrics() -> None:
    exprs = [r["expr"] for g in alert_rules()["groups"] for r in g["rules"]]
    used = {name for e in exprs for name in METRIC_NAME.findall(e)}
    assert used, "no alert names an analysisd metric"
    assert used <= registered_names(), sorted(used - registered_names())


def test_every_alert_has_a_name_an_expression_and_a_summary() -> None:
    for group in alert_rules()["groups"]:
        for rule in group["rules"]:
            assert rule["alert"] and rule["expr"], rule
            assert rule["annotations"]["summary"], rule


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_alert_rules_pass_promtool(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(alert_rules()))
    done = subprocess.run(
        ["promtool", "check", "rules", str(rules)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr

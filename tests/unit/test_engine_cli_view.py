"""`analysisd run`'s pieces that need no providers: views, argument parsing, output."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from analysisd.commands.run import (
    EXIT_CODES,
    LiveView,
    ProgressLines,
    RunCommandError,
    build_run,
    parse_args,
    render_table,
    write_output,
)
from analysisd.engine.scheduler import Scheduler
from analysisd.spec import AnalysisRunStatus, Measurement, MetricResult
from tests.unit.engine_fakes import ScriptedSource, make_run

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_arg_pairs_parse_and_reject_missing_equals() -> None:
    args = parse_args(["a=1", "url=http://x/?q=a=b"])
    assert [(a.name, a.value) for a in args] == [("a", "1"), ("url", "http://x/?q=a=b")]
    with pytest.raises(RunCommandError, match="expected NAME=VALUE"):
        parse_args(["novalue"])


def test_exit_codes_follow_the_run_phase() -> None:
    assert EXIT_CODES == {"Successful": 0, "Failed": 1, "Error": 2, "Inconclusive": 3}


def test_output_is_argo_shaped_json_and_yaml() -> None:
    run = make_run({"m": {"interval": "1m"}})
    run.status = AnalysisRunStatus(phase="Successful", startedAt=T0)
    out = io.StringIO()
    write_output(run, "json", out)
    data = json.loads(out.getvalue())
    assert data["kind"] == "AnalysisRun"
    assert data["status"]["phase"] == "Successful"
    assert data["status"]["metricResults"] == []
    assert data["spec"]["metrics"][0]["successCondition"] == "result == 1"
    out = io.StringIO()
    write_output(run, "yaml", out)
    assert yaml.safe_load(out.getvalue()) == data


def test_table_shows_counts_value_and_time_to_next_measurement() -> None:
    run = make_run({"m": {"interval": "1m"}, "later": {"initialDelay": "5m"}})
    measurement = Measurement.model_validate(
        {"phase": "Successful", "value": "0.99", "startedAt": T0, "finishedAt": T0}
    )
    run.status = AnalysisRunStatus(phase="Running", startedAt=T0)
    run.status.metric_results.append(
        MetricResult(name="m", phase="Running", count=1, successful=1, measurements=[measurement])
    )
    lines = render_table(run, T0 + timedelta(seconds=15))
    assert lines[0] == "AnalysisRun ns/run: Running"
    row = next(line for line in lines if line.strip().startswith("m "))
    assert "1/0/0/0" in row and "0.99" in row and "in 45.0s" in row
    assert any(line.strip().startswith("later") and "Pending" in line for line in lines)


async def test_progress_lines_report_measurements_and_phase_changes() -> None:
    out = io.StringIO()
    view = ProgressLines(out)
    async with Scheduler(ScriptedSource({"m": "F"}), view) as s:
        s.submit(make_run({"m": {}}))
        await s.wait("ns", "run")
    text = out.getvalue()
    assert "m: Failed [1 of 1] value=F" in text
    assert "run Running -> Failed" in text
    assert 'Metric "m" assessed Failed due to failed (1) > failureLimit (0)' in text


async def test_live_view_redraws_in_place() -> None:
    out = io.StringIO()
    view = LiveView(out)
    async with Scheduler(ScriptedSource({"m": "S"}), view) as s:
        s.submit(make_run({"m": {}}))
        final = await s.wait("ns", "run")
    view.close(final)
    text = out.getvalue()
    assert "\x1b[" in text  # cursor moved up over the previous drawing
    assert text.rstrip().splitlines()[-2].startswith("  METRIC")
    assert "Successful" in text.rstrip().splitlines()[-1]


TEMPLATE = """
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: checkout}
spec:
  args: [{name: service}]
  templates: [{templateName: shared-latency}]
  metrics:
  - name: success-rate
    successCondition: result >= 0.95
    provider: {web: {url: "http://127.0.0.1/{{args.service}}"}}
"""
SHARED = """
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: shared-latency}
spec:
  metrics:
  - name: latency
    provider: {web: {url: "http://127.0.0.1/latency"}}
"""


def test_template_run_pulls_referenced_templates_from_the_directory(tmp_path: Path) -> None:
    (tmp_path / "checkout.yaml").write_text(TEMPLATE)
    (tmp_path / "shared.yaml").write_text(SHARED)
    (tmp_path / "broken.yaml").write_text("kind: [")
    run = build_run(tmp_path / "checkout.yaml", ["service=cart"], None, "team-a")
    assert (run.metadata.namespace, run.metadata.name) == ("team-a", "checkout")
    assert [m.name for m in run.spec.metrics] == ["success-rate", "latency"]
    assert [(a.name, a.value) for a in run.spec.args] == [("service", "cart")]
    assert run.status is None


def test_analysis_run_file_takes_arg_overrides(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(
        TEMPLATE.replace("kind: AnalysisTemplate", "kind: AnalysisRun")
        .replace("  templates: [{templateName: shared-latency}]\n", "")
        .replace("[{name: service}]", "[{name: service, value: web}]")
    )
    run = build_run(path, ["service=api"], "renamed", "default")
    assert run.metadata.name == "renamed"
    assert [(a.name, a.value) for a in run.spec.args] == [("service", "api")]


def test_missing_referenced_template_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "checkout.yaml").write_text(TEMPLATE)
    with pytest.raises(RunCommandError, match="shared-latency"):
        build_run(tmp_path / "checkout.yaml", [], None, "default")


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RunCommandError, match=r"nope\.yaml"):
        build_run(tmp_path / "nope.yaml", [], None, "default")

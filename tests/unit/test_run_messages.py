"""`analysisd run`'s messages and live view, as a first-time user meets them (issue 19)."""

from __future__ import annotations

import argparse
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from analysisd.cli import build_parser
from analysisd.commands.run import (
    RunCommandError,
    build_run,
    missing_secrets,
    render_table,
    write_output,
)
from analysisd.spec import AnalysisRunStatus, Measurement, MetricResult

T0 = datetime(2026, 1, 1, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "http-success-rate.yaml"
FULL_ARGS = ["prometheus-address=http://127.0.0.1:9", "app=checkout", "version=canary"]

SECRET_TEMPLATE = """
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: t}
spec:
  args:
  - name: token
    valueFrom: {secretKeyRef: {name: web-token, key: token}}
  metrics:
  - name: m
    successCondition: result == 1
    provider: {web: {url: "http://127.0.0.1:9/x", headers: [{key: T, value: "{{args.token}}"}]}}
"""


def test_missing_arguments_are_all_named_with_the_flag_that_gives_them() -> None:
    with pytest.raises(RunCommandError) as err:
        build_run(EXAMPLE, [], None, "default")
    assert str(err.value) == (
        "missing arguments app, version: give --arg app=VALUE --arg version=VALUE"
    )


def test_unknown_argument_is_refused_with_a_suggestion() -> None:
    with pytest.raises(RunCommandError, match=r"--arg verison: .*did you mean version\?"):
        build_run(EXAMPLE, [*FULL_ARGS, "verison=x"], None, "default")
    with pytest.raises(RunCommandError, match="it declares: prometheus-address, app"):
        build_run(EXAMPLE, [*FULL_ARGS, "zzz=1"], None, "default")


def test_missing_secret_says_where_secrets_come_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = tmp_path / "t.yaml"
    template.write_text(SECRET_TEMPLATE)
    run = build_run(template, [], None, "default")
    [problem] = missing_secrets(run, None)
    assert "--secrets-dir DIR with a file DIR/web-token/token" in problem
    assert "ANALYSISD_SECRET_WEB_TOKEN_TOKEN" in problem
    [problem] = missing_secrets(run, str(tmp_path))
    assert f"has no file {tmp_path}/web-token/token" in problem
    monkeypatch.setenv("ANALYSISD_SECRET_WEB_TOKEN_TOKEN", "s3cret")
    assert missing_secrets(run, None) == []


def test_misspelled_field_gets_a_did_you_mean(tmp_path: Path) -> None:
    template = tmp_path / "t.yaml"
    template.write_text(EXAMPLE.read_text().replace("successCondition", "sucessCondition"))
    with pytest.raises(RunCommandError, match=r"unknown field \(did you mean successCondition\?\)"):
        build_run(template, FULL_ARGS, None, "default")


def test_output_none_prints_nothing_and_yaml_keeps_query_lines() -> None:
    run = build_run(EXAMPLE, FULL_ARGS, None, "default")
    out = io.StringIO()
    write_output(run, "none", out)
    assert out.getvalue() == ""
    write_output(run, "yaml", out)
    text = out.getvalue()
    assert "query: |" in text
    assert "\n\n" not in text  # no blank line between a query's lines
    assert (
        yaml.safe_load(text)["spec"]["metrics"][0]["provider"]["prometheus"]["query"]
        == (run.spec.metrics[0].provider["prometheus"]["query"])
    )


def _measured(run_status: AnalysisRunStatus, name: str, **fields: object) -> None:
    measurement = Measurement.model_validate(
        {"startedAt": T0, "finishedAt": T0, **{k: v for k, v in fields.items()}}
    )
    phase = str(fields["phase"])
    run_status.metric_results.append(
        MetricResult(
            name=name,
            phase="Running",
            count=1 if phase != "Error" else 0,
            successful=int(phase == "Successful"),
            error=int(phase == "Error"),
            consecutiveError=int(phase == "Error"),
            measurements=[measurement],
        )
    )


def test_table_resolves_placeholder_interval_shows_progress_and_error_reason() -> None:
    run = build_run(EXAMPLE, [*FULL_ARGS, "interval=30s", "count=4"], None, "default")
    run.status = AnalysisRunStatus(phase="Running", startedAt=T0)
    _measured(run.status, "success-rate", phase="Successful", value="[0.9951234567891234]")
    lines = render_table(run, T0 + timedelta(seconds=10), width=80)
    header = next(line for line in lines if "METRIC" in line)
    row = next(line for line in lines if line.strip().startswith("success-rate"))
    assert "1 of 4" in row and "in 20.0s" in row  # NEXT from the resolved {{args.interval}}
    assert header.index("VALUE") > header.index("NEXT")  # VALUE last: it cannot run into NEXT
    assert all(len(line) <= 80 for line in lines)

    run.status = AnalysisRunStatus(phase="Running", startedAt=T0)
    reason = "prometheus at http://127.0.0.1:9/api/v1/query: cannot connect"
    _measured(run.status, "success-rate", phase="Error", message=reason)
    lines = render_table(run, T0, width=200)
    assert any(line.strip() == f"└ Error: {reason}" for line in lines)


def test_help_names_every_default() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands: dict[str, argparse.ArgumentParser] = sub.choices

    def text(name: str) -> str:
        return " ".join(commands[name].format_help().split())

    run_help = text("run")
    assert "(default: yaml)" in run_help and "-o none" in run_help
    assert "(default: default)" in run_help  # --namespace
    assert "(default: 60.0)" in run_help  # --measurement-timeout
    assert "--log-level" in text("serve") and "(default: INFO)" in text("serve")
    assert "demo" in commands


def test_store_path_that_is_a_directory_or_in_a_missing_directory_is_refused(
    tmp_path: Path,
) -> None:
    from analysisd.commands.serve import sqlite_path_problem

    assert "is a directory" in (sqlite_path_problem(f"sqlite:///{tmp_path}") or "")
    missing = tmp_path / "nope" / "a.db"
    assert "does not exist" in (sqlite_path_problem(f"sqlite:///{missing}") or "")
    assert not missing.parent.exists()
    assert sqlite_path_problem(f"sqlite:///{tmp_path / 'a.db'}") is None
    assert sqlite_path_problem("postgresql://u@127.0.0.1/db") is None


async def test_plain_lines_mark_dry_run_metrics_and_show_progress() -> None:
    from analysisd.commands.run import ProgressLines, metric_infos

    run = build_run(REPO / "examples" / "dry-run.yaml", FULL_ARGS, None, "default")
    infos = metric_infos(run)
    assert infos["experimental-p99-latency"].label == "experimental-p99-latency (dry-run)"
    assert infos["success-rate"].label == "success-rate"
    assert infos["success-rate"].progress(None) == "0 of 1"
    assert ProgressLines(io.StringIO()).infos(run) == infos

"""`analysisd judge`: series files in, a table and an exit code out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from analysisd.cli import main
from analysisd.judge.errors import SeriesError
from analysisd.judge.series_files import parse_series_text

BASELINE = [10.0, 11.0, 9.5, 10.2, 10.8, 9.9, 10.1, 10.4]


def write(path: Path, data: Any) -> str:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def config_file(tmp_path: Path, **canary: Any) -> str:
    config = {
        "metrics": [
            {"name": "latency", "groups": ["g"], "analysisConfigurations": {"canary": canary}},
            {"name": "errors", "groups": ["g"]},
        ]
    }
    return write(tmp_path / "config.json", config)


def run(tmp_path: Path, baseline: Any, canary: Any, *extra: str, **canary_cfg: Any) -> int:
    return main(
        [
            "judge",
            "--config",
            config_file(tmp_path, **canary_cfg),
            "--baseline",
            write(tmp_path / "baseline.data", baseline),
            "--canary",
            write(tmp_path / "canary.data", canary),
            *extra,
        ]
    )


def test_identical_series_pass_with_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    series = {"latency": BASELINE, "errors": BASELINE}
    assert run(tmp_path, series, series) == 0
    out = capsys.readouterr().out
    assert "score 100: Pass (pass 95, marginal 75)" in out
    assert out.splitlines()[0].split()[:2] == ["METRIC", "RESULT"]


def test_a_high_metric_fails_with_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canary = {"latency": [v * 2 for v in BASELINE], "errors": BASELINE}
    assert run(tmp_path, {"latency": BASELINE, "errors": BASELINE}, canary) == 1
    out = capsys.readouterr().out
    assert "canary latency is 100% higher than baseline (mean ratio 2 ≥ allowed 1): High" in out
    assert "score 50: Fail" in out


def test_marginal_score_exits_3(tmp_path: Path) -> None:
    canary = {"latency": [v * 2 for v in BASELINE], "errors": BASELINE}
    baseline = {"latency": BASELINE, "errors": BASELINE}
    assert run(tmp_path, baseline, canary, "--pass", "90", "--marginal", "50") == 3


def test_csv_series_and_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_text = "latency,errors\n" + "\n".join(f"{v},{v}" for v in BASELINE) + "\n"
    assert run(tmp_path, csv_text, csv_text, "-o", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["score"] == 100.0
    assert data["metrics"]["latency"]["baselineCount"] == len(BASELINE)


def test_missing_metric_is_judged_as_no_data_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path, {"latency": BASELINE}, {"latency": BASELINE}) == 1
    out = capsys.readouterr().out
    assert "note: errors: no baseline series (judged as no data)" in out
    assert "50% or more metrics returned NODATA" in out


@pytest.mark.parametrize(
    ("baseline", "message"),
    [
        ({"latency": BASELINE, "other": BASELINE}, "Could not find metric config for other"),
        ({"latency": [1, "x"]}, r"latency\[1\]: expected a number"),
        ('{"latency": [1, 2', "not valid JSON"),
        ("latency,,errors\n1,2,3\n", "header row must name each column once"),
    ],
)
def test_errors_exit_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], baseline: Any, message: str
) -> None:
    assert run(tmp_path, baseline, {"latency": BASELINE}) == 2
    assert message.replace("\\", "") in capsys.readouterr().err


def test_strict_mode_refuses_what_kayenta_would_ignore(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    series = {"latency": BASELINE, "errors": BASELINE}
    assert run(tmp_path, series, series, direction="Increase") == 0
    assert "warning: metrics[0].analysisConfigurations.canary.direction" in capsys.readouterr().out
    assert run(tmp_path, series, series, "--strict", direction="Increase") == 2


def test_csv_blank_cells_are_missing_points_and_columns_may_differ_in_length() -> None:
    parsed = parse_series_text("a,b\n1,2\n,3\n4,\n", "x.csv")
    assert parsed["b"] == [2.0, 3.0]
    assert len(parsed["a"]) == 3 and parsed["a"][1] != parsed["a"][1]  # NaN


def test_csv_row_longer_than_header_is_refused() -> None:
    with pytest.raises(SeriesError, match="line 2 has 3 cells"):
        parse_series_text("a,b\n1,2,3\n", "x.csv")


def test_table_shows_both_sides_and_a_labelled_effect(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canary = {"latency": [v * 1.31 for v in BASELINE], "errors": BASELINE}
    code = run(
        tmp_path,
        {"latency": BASELINE, "errors": BASELINE},
        canary,
        direction="increase",
        critical=True,
        effectSize={"allowedIncrease": 1.1},
    )
    assert code == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "METRIC",
        "RESULT",
        "BASELINE",
        "CANARY",
        "INTERVAL",
        "EFFECT",
        "WHY",
    ]
    latency = next(line for line in lines if line.startswith("latency"))
    assert "High (critical)" in latency
    assert "n=8 mean=10.24 median=10.15" in latency
    assert "mean ratio 1.31" in latency
    assert latency.rstrip().endswith(
        "canary latency is 31% higher than baseline (mean ratio 1.31 ≥ allowed 1.1): High, critical"
    )


def test_json_carries_the_explanation_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canary = {"latency": [v * 2 for v in BASELINE], "errors": BASELINE}
    run(tmp_path, {"latency": BASELINE, "errors": BASELINE}, canary, "-o", "json")
    latency = json.loads(capsys.readouterr().out)["metrics"]["latency"]
    assert latency["baseline"] == {
        "n": 8,
        "mean": pytest.approx(10.2375),
        "median": pytest.approx(10.15),
    }
    assert latency["canary"]["n"] == 8
    assert latency["effect"]["name"] == "mean ratio"
    assert latency["effect"]["allowedIncrease"] == 1.0
    assert latency["direction"] == "either"
    assert latency["confLevel"] == 0.98
    assert latency["interval"][0] > 0
    assert latency["why"].endswith(": High")


def test_infinite_points_are_judged_unless_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canary = '{"latency": [1, 2, Infinity], "errors": [1, 2]}'
    series = {"latency": BASELINE, "errors": [1, 2]}
    assert run(tmp_path, series, canary) in (0, 1, 3)
    capsys.readouterr()
    assert run(tmp_path, series, canary, "--reject-infinite") == 2
    assert "latency: canary[2]: infinite value" in capsys.readouterr().err


def test_report_is_written_next_to_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "judgement.html"
    canary = {"latency": [v * 2 for v in BASELINE], "errors": BASELINE}
    run(tmp_path, {"latency": BASELINE, "errors": BASELINE}, canary, "--report", str(report))
    html = report.read_text(encoding="utf-8")
    assert html.count('class="metric-plot"') == 2
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html

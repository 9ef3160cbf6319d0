"""`analysisd lint`: one `file: field: problem` line per problem, exit 1 on any."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysisd.cli import main

HEAD = """apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: t
spec:
"""


def lint(tmp_path: Path, capsys: pytest.CaptureFixture[str], **files: str) -> tuple[int, list[str]]:
    paths = []
    for name, text in files.items():
        path = tmp_path / name.replace("__", ".")
        path.write_text(text)
        paths.append(str(path))
    code = main(["lint", *paths])
    out = capsys.readouterr().out
    return code, [line.replace(str(tmp_path) + "/", "") for line in out.splitlines()]


def test_clean_template_exits_zero_silently(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        HEAD
        + """  args: [{name: svc}]
  metrics:
  - name: m
    interval: 1m
    count: 3
    successCondition: result[0] >= 0.95
    provider: {prometheus: {query: 'up{svc="{{args.svc}}"}'}}
"""
    )
    assert lint(tmp_path, capsys, ok__yaml=text) == (0, [])


def test_condition_that_does_not_compile_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        HEAD
        + """  metrics:
  - name: m
    successCondition: result[0] >=
    failureCondition: result[0] < 0.5 &&
    provider: {web: {url: http://x}}
"""
    )
    code, lines = lint(tmp_path, capsys, bad__yaml=text)
    assert code == 1
    assert len(lines) == 2
    assert lines[0].startswith("bad.yaml: spec.metrics[0].successCondition: does not compile: ")
    assert lines[1].startswith("bad.yaml: spec.metrics[0].failureCondition: does not compile: ")


def test_condition_with_placeholder_compiles_with_a_stand_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        HEAD
        + """  args: [{name: limit}]
  metrics:
  - name: m
    successCondition: result[0] >= {{args.limit}}
    provider: {web: {url: http://x}}
"""
    )
    assert lint(tmp_path, capsys, ok__yaml=text) == (0, [])


def test_unknown_provider_kind_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = HEAD + "  metrics:\n  - name: m\n    provider: {prometeus: {query: up}}\n"
    code, lines = lint(tmp_path, capsys, p__yaml=text)
    assert code == 1
    (line,) = lines
    assert line.startswith("p.yaml: spec.metrics[0].provider.prometeus: unknown provider kind")


def test_every_metric_problem_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        HEAD
        + """  args: [{name: n, value: ten}]
  metrics:
  - name: a
    count: "{{args.n}}"
    interval: 5x
    provider: {web: {url: http://x}}
  - name: a
    provider: {web: {url: http://x}}
"""
    )
    code, lines = lint(tmp_path, capsys, m__yaml=text)
    assert code == 1
    assert lines == [
        "m.yaml: spec.metrics[0].count: count: 'ten' is not an integer",
        'm.yaml: spec.metrics[0].interval: invalid interval string: time: unknown unit "x" '
        'in duration "5x"',
        "m.yaml: spec.metrics[1].name: duplicate name 'a'",
    ]


def test_undeclared_argument_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = HEAD + "  metrics:\n  - name: m\n    provider: {web: {url: 'http://{{args.host}}'}}\n"
    code, lines = lint(tmp_path, capsys, u__yaml=text)
    assert (code, lines) == (
        1,
        ["u.yaml: spec.metrics[0]: {{args.host}} refers to an undeclared argument"],
    )


def test_fragment_may_use_arguments_it_does_not_declare(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "metrics:\n- name: m\n  provider: {web: {url: 'http://{{args.host}}'}}\n"
    assert lint(tmp_path, capsys, f__fragment__yaml=text) == (0, [])


def test_load_errors_are_reported_per_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = lint(
        tmp_path,
        capsys,
        a__yaml="metrics: [\n",
        b__yaml=HEAD.replace("AnalysisTemplate", "Deployment") + "  x: 1\n",
    )
    assert code == 1
    assert lines[0].startswith("a.yaml:2:1: ")
    assert lines[1] == (
        "b.yaml: kind: 'Deployment' is not one of AnalysisTemplate, ClusterAnalysisTemplate, "
        "AnalysisRun"
    )


def test_ten_megabyte_file_is_reported_not_parsed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = lint(tmp_path, capsys, big__yaml=HEAD + "#" + "x" * (10 << 20))
    assert code == 1
    (line,) = lines
    assert "over the 1048576-byte limit" in line


def test_dry_run_rule_that_matches_nothing_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        HEAD
        + """  dryRun: [{metricName: other}]
  metrics:
  - name: m
    provider: {web: {url: http://x}}
"""
    )
    code, lines = lint(tmp_path, capsys, d__yaml=text)
    assert (code, lines) == (
        1,
        ["d.yaml: spec.dryRun: dryRun[0]: Rule didn't match any metric name(s)"],
    )


def test_run_argument_without_value_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        HEAD.replace("AnalysisTemplate", "AnalysisRun")
        + """  args: [{name: svc}]
  metrics:
  - name: m
    provider: {web: {url: 'http://{{args.svc}}'}}
"""
    )
    code, lines = lint(tmp_path, capsys, r__yaml=text)
    assert (code, lines) == (1, ['r.yaml: spec.args[0]: argument "svc" was not supplied'])


def test_template_references_are_flattened_across_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = (
        HEAD
        + """  metrics: [{name: m, provider: {web: {url: http://x}}}]
  templates: [{templateName: child}]
"""
    )
    child = (
        HEAD.replace("name: t", "name: child")
        + """  metrics: [{name: m, provider: {web: {url: http://y}}}]
"""
    )
    code, lines = lint(tmp_path, capsys, parent__yaml=parent, child__yaml=child)
    assert (code, lines) == (1, ["parent.yaml: spec.templates: two metrics have the same name 'm'"])


def test_directory_argument_lints_its_yaml_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.yaml").write_text("kind: [\n")
    (tmp_path / "notes.txt").write_text("not yaml: [\n")
    code = main(["lint", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert len(lines) == 1
    assert "bad.yaml" in lines[0]


JUDGE = """  args: [{name: lookback}, {name: app}]
  metrics:
  - name: j
    provider:
      judge:
        source: {prometheus: {address: http://p}}
        lookback: LOOKBACK
        scopes: {baseline: 'v="b"', canary: 'v="c"'}
        queries: {x: 'up{app="{{args.app}}",${scope}}'}
        canaryConfig: {metrics: [{name: x}]}
"""


def test_judge_block_is_checked_where_lint_can_know(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = lint(tmp_path, capsys, j__yaml=HEAD + JUDGE.replace("LOOKBACK", "5x"))
    assert code == 1
    (line,) = lines
    assert line.startswith("j.yaml: spec.metrics[0].provider.judge.lookback: ")


def test_judge_block_waiting_for_arguments_is_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = HEAD + JUDGE.replace("LOOKBACK", "'{{args.lookback}}'")
    assert lint(tmp_path, capsys, j__yaml=text) == (0, [])


# ---- the daemon's door checks (analysisd.admission), and lint's exit code on each ----

DOOR_CASES = [
    ("successCondition: result >=\n    provider: {web: {url: 'http://x'}}", "successCondition"),
    ("provider: {web: {url: 'http://x', jsonPath: '{$.a['}}", "provider.web.jsonPath"),
    ("provider: {web: {method: GET}}", "provider.web.url"),
    ("provider: {web: {url: 'file:///etc/passwd'}}", "provider.web.url"),
    ("provider: {web: {url: 'http://x', method: DELETE}}", "provider.web.method"),
    (
        "provider:\n      web:\n        url: http://x\n        headers:\n"
        "        - {key: Authorization, valueFrom: {secretKeyRef: {name: s, key: k}}}",
        "provider.web.headers[0].value",
    ),
    ("provider: {prometheus: {address: 'http://p:9090'}}", "provider.prometheus.query"),
    ("provider: {prometheus: {address: 'p:9090', query: up}}", "provider.prometheus.address"),
    ("interval: 0s\n    provider: {web: {url: 'http://x'}}", "interval"),
    ("interval: -5s\n    provider: {web: {url: 'http://x'}}", "interval"),
    ("initialDelay: -5s\n    provider: {web: {url: 'http://x'}}", "initialDelay"),
    ("count: -1\n    interval: 1s\n    provider: {web: {url: 'http://x'}}", "count"),
    (
        "count: 9223372036854775808\n    interval: 1s\n    provider: {web: {url: 'http://x'}}",
        "count",
    ),
    ("interval: " + "1" * 5000 + "s\n    provider: {web: {url: 'http://x'}}", "interval"),
]


@pytest.mark.parametrize(("body", "field"), DOOR_CASES, ids=[f for _, f in DOOR_CASES])
def test_what_the_daemon_refuses_lint_fails_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, field: str
) -> None:
    text = HEAD + "  metrics:\n  - name: m\n    " + body + "\n"
    code, lines = lint(tmp_path, capsys, t__yaml=text)
    assert code == 1
    assert any(line.startswith(f"t.yaml: spec.metrics[0].{field}: ") for line in lines), lines


# A k6-style plugin metric: Argo hands the whole measurement to the plugin and never
# evaluates these conditions itself, so analysisd must not compile them either.
PLUGIN = (
    HEAD
    + """  metrics:
  - name: k6-loadtest
    successCondition: result.passed == true &&
    provider:
      plugin:
        grafana/k6:
          testRunId: "{{args.test-run-id}}"
  args: [{name: test-run-id}]
"""
)


def test_plugin_metric_is_an_unsupported_kind_and_its_conditions_are_not_compiled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = lint(tmp_path, capsys, k6__yaml=PLUGIN)
    assert code == 1
    (line,) = lines
    assert line.startswith("k6.yaml: spec.metrics[0].provider.plugin: provider kind 'plugin' ")


def test_allow_unsupported_makes_it_a_warning_and_exits_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "k6.yaml"
    path.write_text(PLUGIN)
    code = main(["lint", "--allow-unsupported", str(path)])
    (line,) = capsys.readouterr().out.splitlines()
    assert code == 0
    assert ": spec.metrics[0].provider.plugin: warning: provider kind 'plugin' " in line


def test_allow_unsupported_does_not_hide_other_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(PLUGIN.replace("- name: k6-loadtest", "- name: k6-loadtest\n    interval: 0s"))
    code = main(["lint", "--allow-unsupported", str(path)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert [line.split(": ")[1] for line in lines] == [
        "spec.metrics[0].interval",
        "spec.metrics[0].provider.plugin",
    ]


def test_template_name_must_be_a_kubernetes_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = HEAD.replace("name: t", "name: Bad_Name") + "  metrics: [{name: m, provider: "
    text += "{web: {url: 'http://x'}}}]\n"
    code, lines = lint(tmp_path, capsys, n__yaml=text)
    assert code == 1
    (line,) = lines
    assert line.startswith("n.yaml: metadata.name: 'Bad_Name' must be a lowercase RFC 1123")


def test_run_command_refuses_what_lint_refuses_before_measuring(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing listens on port 9: a measurement would be an Error, retried for 40 s.
    path = tmp_path / "bad.yaml"
    path.write_text(
        HEAD
        + """  metrics:
  - name: m
    interval: 1s
    count: 5
    successCondition: result >=
    provider: {web: {url: 'http://127.0.0.1:9/'}}
"""
    )
    code = main(["run", str(path)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""  # no run printed: none was submitted
    assert captured.err.splitlines() == [
        f"{path}: spec.metrics[0].successCondition: does not compile: "
        "unexpected end of expression (line 1, column 10)"
    ]

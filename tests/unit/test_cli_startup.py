"""What `analysisd lint` does to start faster when the process is its own (issue 21).

`analysisd lint` run as a program (main() with no arguments) imports with the garbage
collector off and then frozen, has analysisd.spec build the models no AnalysisTemplate
holds on first use (analysisd.spec_build), and keeps pydantic's plugins off with a
stand-in for pydantic's plugin loader (no importlib.metadata). These tests hold that it
does so, that main() called with arguments (a library caller, these tests) does none of
the process-wide parts, and that nothing lint prints or returns changes: every file
below is linted both ways and the lines and exit codes compared. The time it saves is
measured in bench/bench_cli.py; nothing here is timed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WEB_TEMPLATE = REPO / "examples" / "argo-web-gate.yaml"
RUN_MODELS = (
    "Measurement",
    "MetricResult",
    "RunSummary",
    "AnalysisRunStatus",
    "AnalysisRunSpec",
    "TTLStrategy",
    "AnalysisRun",
    "ClusterAnalysisTemplate",
)
TEMPLATE_MODELS = ("AnalysisTemplate", "AnalysisTemplateSpec", "Metric", "ObjectMeta")

STATE = """
import gc, json, os, sys
from analysisd import spec
from analysisd.spec_build import RUN_MODELS_ON_FIRST_USE
names = [n for n in dir(spec) if isinstance(getattr(spec, n), type)
         and issubclass(getattr(spec, n), spec.BaseModel) and getattr(spec, n).model_fields]
loader = sys.modules.get("pydantic.plugin._loader")
state = {
    "code": code,
    "built": {n: getattr(spec, n).__pydantic_complete__ for n in names},
    "on_first_use": RUN_MODELS_ON_FIRST_USE,
    "gc_enabled": gc.isenabled(),
    "frozen": gc.get_freeze_count(),
    "modules": sorted(sys.modules),
    "loader": None if loader is None else type(loader).__name__,
    "switch": os.environ.get("PYDANTIC_DISABLE_PLUGINS"),
}
sys.stdout.flush()
sys.stderr.write("\\nSTATE " + json.dumps(state) + "\\n")
"""
# As the `analysisd` script calls it: no arguments, sys.argv read.
AS_PROGRAM = "import sys\nfrom analysisd.cli import main\nsys.argv[0] = 'analysisd'\n"
AS_PROGRAM += "code = main()\n" + STATE
# As a library caller (and the other tests) call it.
AS_CALL = "import sys\nfrom analysisd.cli import main\ncode = main(sys.argv[1:])\n" + STATE


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}


def run(wrapper: str, *argv: str) -> tuple[str, dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-c", wrapper, *argv],
        capture_output=True,
        text=True,
        cwd=str(REPO),
        env=_env(),
        timeout=120,
        check=False,
    )
    marker = done.stderr.rfind("\nSTATE ")
    assert marker >= 0, done.stdout + done.stderr
    state = json.loads(done.stderr[marker + len("\nSTATE ") :])
    assert done.returncode == 0, done.stdout + done.stderr  # the wrapper ran to its end
    return done.stdout + done.stderr[:marker], state


def test_lint_as_a_program_builds_only_the_template_models() -> None:
    output, state = run(AS_PROGRAM, "lint", str(WEB_TEMPLATE))
    assert state["code"] == 0, output
    built = state["built"]
    assert isinstance(built, dict)
    assert all(built[name] for name in TEMPLATE_MODELS), built
    assert not any(built[name] for name in RUN_MODELS), built
    assert state["on_first_use"] is True
    # Imported with the collector off, then frozen; collecting again afterwards.
    assert state["gc_enabled"] is True and state["frozen"] > 0
    modules = state["modules"]
    assert isinstance(modules, list)
    # No plugin metadata read: neither pydantic's loader nor importlib.metadata.
    assert "importlib.metadata" not in modules and state["loader"] is None
    assert state["switch"] is None
    assert "re2" not in modules  # no pattern in the template: RE2 not loaded


def test_lint_called_with_arguments_changes_nothing_process_wide() -> None:
    output, state = run(AS_CALL, "lint", str(WEB_TEMPLATE))
    assert state["code"] == 0, output
    built = state["built"]
    assert isinstance(built, dict) and all(built.values()), built
    assert state["on_first_use"] is False
    assert state["gc_enabled"] is True and state["frozen"] == 0
    assert state["switch"] is None


def test_an_analysis_run_linted_as_a_program_builds_its_models_on_first_use(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(BAD_RUN)
    output, state = run(AS_PROGRAM, "lint", str(path))
    assert state["code"] == 1, output
    built = state["built"]
    # (the status models inside it are built into its validator, not on their own)
    assert isinstance(built, dict) and built["AnalysisRun"], built
    # Built while the plugins were still off: the stand-in, not the real loader.
    assert "importlib.metadata" not in state["modules"]  # type: ignore[operator]
    assert "status.metricResults[0].phse: unknown field (did you mean phase?)" in output


BAD_RUN = """apiVersion: argoproj.io/v1alpha1
kind: AnalysisRun
metadata: {name: r1, namespace: Bad_NS, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  args: [{name: a}, {name: b, value: 3}]
  ttlStrategy: {secondsAfterCompletion: 99999999999, secondsAfterFailur: 1}
  terminate: maybe
  metrics:
  - name: m
    count: "{{args.a}}"
    interval: 5x
    provider: {web: {url: "http://x/{{args.b}}", jsonPath: "{$.a"}}
  - name: m
    provider: {prometheus: {address: "ftp://p", query: up}, web: {url: http://x}}
status:
  phase: Bogus
  startedAt: not-a-date
  runSummary: {count: x}
  metricResults:
  - name: m
    phse: Running
    measurements:
    - {phase: Successful, startedAt: "2024-01-01T00:00:00Z", value: 1, metadata: {a: 1}}
    - {phase: Nope, finishedAt: 12}
"""
GOOD_RUN = """apiVersion: argoproj.io/v1alpha1
kind: AnalysisRun
metadata: {name: r2}
spec:
  args: [{name: a, value: "5"}]
  dryRun: [{metricName: "m.*"}]
  measurementRetention: [{metricName: "[", limit: 3}]
  metrics:
  - name: m
    count: 3
    failureLimit: 2
    consecutiveSuccessLimit: 2
    successCondition: result > {{args.a}}
    provider: {web: {url: "http://x/", jsonPath: "{$.a}"}}
status:
  phase: Running
  startedAt: "2024-01-01T00:00:00Z"
  metricResults:
  - {name: m, phase: Running, count: 1, measurements: [{phase: Successful, value: "1"}]}
  dryRunSummary: {count: 1}
"""
MIXED = """apiVersion: argoproj.io/v1alpha1
kind: ClusterAnalysisTemplate
metadata: {name: c1}
spec:
  metricz: []
  metrics:
  - name: x
    count: 99999999999999
    provider: {job: {spec: {}}}
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: t1}
spec:
  templates: [{templateName: c1, clusterScope: true}, {templateName: missing}]
  metrics:
  - name: x
    provider: {kayenta: {}}
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisRun
metadata: {name: r3}
spec:
  metrics:
  - name: y
    successCondition: "result ==="
    provider: {datadog: {query: "avg:x{*}", interval: 5m}}
"""
CLUSTER = """apiVersion: argoproj.io/v1alpha1
kind: ClusterAnalysisTemplate
metadata: {name: c2}
spec:
  args: [{name: svc}]
  metrics:
  - name: rate
    interval: 1m
    successCondition: result[0] >= 0.95
    provider: {prometheus: {address: "http://p:9090", query: "up{svc='{{args.svc}}'}"}}
"""


@pytest.mark.parametrize("options", [(), ("--allow-unsupported",)])
def test_lint_as_a_program_prints_what_lint_called_in_process_prints(
    tmp_path: Path, options: tuple[str, ...]
) -> None:
    files = {"bad-run.yaml": BAD_RUN, "run.yaml": GOOD_RUN, "mixed.yaml": MIXED}
    files["cluster.yaml"] = CLUSTER
    paths = []
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        paths.append(str(tmp_path / name))
    examples = sorted(str(p) for p in (REPO / "examples").glob("*.yaml"))
    for argv in [[p] for p in paths] + [[str(tmp_path)], examples]:
        as_program, program_state = run(AS_PROGRAM, "lint", *options, *argv)
        as_call, call_state = run(AS_CALL, "lint", *options, *argv)
        assert as_program == as_call
        assert program_state["code"] == call_state["code"]
    # Both kinds of outcome were seen (the files are not all clean).
    assert "(did you mean secondsAfterFailure?)" in run(AS_CALL, "lint", paths[0])[0]


SCHEMAS = """
import json, sys
from analysisd import spec_build
spec_build.RUN_MODELS_ON_FIRST_USE = sys.argv[1] == "on-first-use"
from analysisd import spec
out = {}
for name in sorted(dir(spec)):
    cls = getattr(spec, name)
    if isinstance(cls, type) and issubclass(cls, spec.BaseModel) and cls is not spec.BaseModel:
        config = {k: v for k, v in cls.model_config.items() if k != "defer_build"}
        out[name] = [
            cls.model_json_schema(by_alias=True, mode="validation"),
            cls.model_json_schema(by_alias=True, mode="serialization"),
            repr(sorted(config.items())),
            sorted(cls.model_fields),
        ]
print(json.dumps(out, sort_keys=True))
"""


def test_models_built_on_first_use_are_the_models_built_at_import() -> None:
    def schemas(mode: str) -> object:
        done = subprocess.run(
            [sys.executable, "-c", SCHEMAS, mode],
            capture_output=True,
            text=True,
            cwd=str(REPO),
            timeout=120,
            check=True,
        )
        return json.loads(done.stdout)

    at_import, on_first_use = schemas("at-import"), schemas("on-first-use")
    assert isinstance(at_import, dict) and "AnalysisRun" in at_import
    assert on_first_use == at_import


LOADER = """
import os, sys
from analysisd import cli
name = "pydantic.plugin._loader"
with cli._pydantic_plugins_off("lint"):
    stand_in = sys.modules[name]
    print("stand-in:", type(stand_in).__name__, stand_in.get_plugins())
    from pydantic.plugin._schema_validator import create_schema_validator  # noqa: F401
    # A name pydantic might also ask for: read from the real module, imported then.
    print("group:", stand_in.PYDANTIC_ENTRY_POINT_GROUP)
    print("real now:", type(sys.modules[name]).__name__, hasattr(sys.modules[name], "_plugins"))
print("after:", type(sys.modules[name]).__name__)
del sys.modules[name]
with cli._pydantic_plugins_off("lint"):
    pass
print("removed again:", name not in sys.modules)
os.environ["PYDANTIC_DISABLE_PLUGINS"] = "someplugin"
with cli._pydantic_plugins_off("lint"):
    print("user's own setting:", name in sys.modules)
with cli._pydantic_plugins_off("serve"):
    print("serve:", name in sys.modules)
"""


def test_the_plugin_loader_stand_in_is_scoped_and_falls_back_to_the_real_one() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOADER],
        capture_output=True,
        text=True,
        cwd=str(REPO),
        env=_env(),
        timeout=120,
        check=True,
    )
    assert done.stdout.splitlines() == [
        "stand-in: _NoPluginsLoader ()",
        "group: pydantic",
        "real now: module True",
        "after: module",
        "removed again: True",
        "user's own setting: False",
        "serve: False",
    ]


def test_lint_of_a_prometheus_template_loads_no_urllib_request() -> None:
    # urllib.request (http.client, ssl, email) is for the provider's proxy lookup only.
    output, state = run(AS_CALL, "lint", str(REPO / "examples" / "http-success-rate.yaml"))
    assert state["code"] == 0, output
    modules = state["modules"]
    assert isinstance(modules, list) and "providers.prometheus" in modules
    assert not {"urllib.request", "http.client", "ssl"} & set(modules)

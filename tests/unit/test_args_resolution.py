"""Argument resolution: substitution details, secret sources, fieldRef, building runs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from analysisd.args import (
    ArgsError,
    build_run_spec,
    expand_template_refs,
    field_value,
    redact,
    resolve_args,
    resolve_metrics,
)
from analysisd.loader import load_documents
from analysisd.secrets import (
    ChainSecretSource,
    DirectorySecretSource,
    EnvSecretSource,
    env_variable,
)
from analysisd.spec import (
    AnalysisRunSpec,
    AnalysisTemplate,
    Argument,
    ClusterAnalysisTemplate,
    DryRun,
    Metric,
    ObjectMeta,
)


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


def run_spec(metric: dict[str, Any], args: list[dict[str, Any]]) -> AnalysisRunSpec:
    return AnalysisRunSpec.model_validate({"metrics": [{"name": "m", **metric}], "args": args})


def web(url: str) -> dict[str, Any]:
    return {"provider": {"web": {"url": url}}}


def test_value_with_newline_and_quotes_stays_inside_the_field() -> None:
    spec = run_spec(
        {"successCondition": "result == '{{args.v}}'", **web("http://x")},
        [{"name": "v", "value": 'a"b\nc\\d'}],
    )
    (resolved,) = resolve_metrics(spec, None).metrics
    assert resolved.success_condition == "result == 'a\"b\nc\\d'"
    assert resolved.provider == {"web": {"url": "http://x"}}


def test_substitution_reaches_nested_provider_fields() -> None:
    spec = run_spec(
        {"provider": {"datadog": {"queries": {"a": "sum:x{service:{{args.svc}}}"}}}},
        [{"name": "svc", "value": "api"}],
    )
    (resolved,) = resolve_metrics(spec, None).metrics
    assert resolved.provider["datadog"]["queries"]["a"] == "sum:x{service:api}"


def test_last_unresolved_placeholder_is_named() -> None:
    spec = run_spec(
        {"successCondition": "{{args.first}}", **web("{{args.second}}")},
        [],
    )
    with pytest.raises(ArgsError, match=r"^failed to resolve \{\{args.second\}\}$"):
        resolve_metrics(spec, None)


def test_non_args_tag_is_a_placeholder_that_fails() -> None:
    with pytest.raises(ArgsError, match=r"failed to resolve \{\{ env.HOME \}\}"):
        resolve_args("x {{ env.HOME }}", [])


def test_directory_secret_is_substituted_and_reported_for_redaction(tmp_path: Path) -> None:
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "token").write_text("s3cr3t\n")
    spec = run_spec(
        web("http://x/?t={{args.token}}"),
        [{"name": "token", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}],
    )
    resolved = resolve_metrics(spec, DirectorySecretSource(tmp_path))
    assert resolved.metrics[0].provider["web"]["url"] == "http://x/?t=s3cr3t"
    assert resolved.secret_values == frozenset({"s3cr3t"})


def test_missing_secret_and_missing_key_have_argos_messages(tmp_path: Path) -> None:
    (tmp_path / "creds").mkdir()
    source = DirectorySecretSource(tmp_path)

    def resolve(name: str, key: str) -> None:
        spec = run_spec(
            web("{{args.s}}"),
            [{"name": "s", "valueFrom": {"secretKeyRef": {"name": name, "key": key}}}],
        )
        resolve_metrics(spec, source)

    with pytest.raises(ArgsError, match=exactly('secrets "absent" not found')):
        resolve("absent", "token")
    with pytest.raises(ArgsError, match=exactly("key 'token' does not exist in secret 'creds'")):
        resolve("creds", "token")


def test_directory_source_refuses_path_escapes(tmp_path: Path) -> None:
    (tmp_path / "outside").write_text("nope")
    inner = tmp_path / "secrets"
    (inner / "s").mkdir(parents=True)
    source = DirectorySecretSource(inner)
    assert source.get("..", "outside") is None
    assert source.get("s", "../../outside") is None


def test_environment_secret_names_are_upper_cased_with_underscores() -> None:
    assert (
        env_variable("web-metric.secret", "api-key") == "ANALYSISD_SECRET_WEB_METRIC_SECRET_API_KEY"
    )
    source = EnvSecretSource({"ANALYSISD_SECRET_WEB_METRIC_SECRET_API_KEY": "k"})
    assert source.get("web-metric.secret", "api-key") == "k"
    assert source.has_secret("web-metric.secret")
    assert not source.has_secret("other")


def test_chain_takes_the_first_source_that_has_the_value(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "k").write_text("from-dir")
    env = EnvSecretSource({"ANALYSISD_SECRET_S_K": "from-env", "ANALYSISD_SECRET_S_J": "j"})
    chain = ChainSecretSource(DirectorySecretSource(tmp_path), env)
    assert chain.get("s", "k") == "from-dir"
    assert chain.get("s", "j") == "j"
    assert chain.get("t", "k") is None


def test_field_ref_reads_the_runs_metadata() -> None:
    meta = ObjectMeta(
        name="run-1", namespace="prod", labels={"app": "demo"}, annotations={"a/b": "7"}
    )
    spec = run_spec(
        web("http://x/{{args.ns}}/{{args.name}}/{{args.app}}/{{args.rev}}"),
        [
            {"name": "ns", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "name", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "app", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {
                "name": "rev",
                "valueFrom": {"fieldRef": {"fieldPath": 'metadata.annotations["a/b"]'}},
            },
        ],
    )
    (resolved,) = resolve_metrics(spec, None, meta=meta).metrics
    assert resolved.provider["web"]["url"] == "http://x/prod/run-1/demo/7"


def test_field_ref_without_metadata_is_not_supplied() -> None:
    spec = run_spec(
        web("{{args.ns}}"),
        [{"name": "ns", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
    )
    with pytest.raises(ArgsError, match=exactly('argument "ns" was not supplied')):
        resolve_metrics(spec, None)


def test_field_value_reports_missing_fields() -> None:
    with pytest.raises(ArgsError, match="field not found"):
        field_value({"metadata": {}}, "metadata.labels['x']")


def test_redact_replaces_every_occurrence_longest_first() -> None:
    text = "token=abc123 again abc123 prefix abc"
    assert redact(text, {"abc", "abc123"}) == "token=***** again ***** prefix *****"
    assert redact("nothing", {""}) == "nothing"


TEMPLATES = """
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: parent}
spec:
  args: [{name: svc}]
  metrics: [{name: a, provider: {web: {url: "{{args.svc}}"}}}]
  templates: [{templateName: child}, {templateName: shared, clusterScope: true}]
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: child}
spec:
  args: [{name: svc}, {name: port, value: "80"}]
  metrics: [{name: b, provider: {web: {url: "{{args.svc}}:{{args.port}}"}}}]
  templates: [{templateName: parent}]
---
apiVersion: argoproj.io/v1alpha1
kind: ClusterAnalysisTemplate
metadata: {name: shared}
spec:
  metrics: [{name: c, provider: {prometheus: {query: up}}}]
  dryRun: [{metricName: c}]
"""


def test_nested_template_references_flatten_into_one_run() -> None:
    docs = load_documents(TEMPLATES)
    parent = docs[0]
    assert isinstance(parent, AnalysisTemplate)
    templates, clusters = expand_template_refs([parent], docs)
    assert [t.metadata.name for t in templates] == ["parent", "child"]
    assert [t.metadata.name for t in clusters] == ["shared"]
    spec = build_run_spec(templates, clusters, [Argument(name="svc", value="api")])
    assert [m.name for m in spec.metrics] == ["a", "b", "c"]
    assert {a.name: a.value for a in spec.args} == {"svc": "api", "port": "80"}
    assert [r.metric_name for r in spec.dry_run] == ["c"]
    resolved = resolve_metrics(spec, None).metrics
    assert resolved[1].provider["web"]["url"] == "api:80"


def templates() -> list[AnalysisTemplate | ClusterAnalysisTemplate]:
    docs = load_documents(TEMPLATES)
    return [d for d in docs if isinstance(d, AnalysisTemplate | ClusterAnalysisTemplate)]


def test_building_a_run_needs_every_template_argument() -> None:
    docs = templates()
    with pytest.raises(ArgsError, match=exactly("args.svc was not resolved")):
        build_run_spec([docs[0]], [], None)


def test_missing_referenced_template_is_named() -> None:
    docs = templates()
    with pytest.raises(ArgsError, match=exactly('AnalysisTemplate "child" not found')):
        expand_template_refs([docs[0]], [docs[0]])


def test_run_dry_run_rules_may_not_repeat_template_rules() -> None:
    docs = templates()

    with pytest.raises(ArgsError, match=exactly("two Dry-Run metric rules have the same name 'c'")):
        build_run_spec([], [docs[2]], None, dry_run=[DryRun(metricName="c")])


def test_resolved_metrics_are_new_objects() -> None:
    spec = run_spec(web("{{args.u}}"), [{"name": "u", "value": "http://x"}])
    before = spec.metrics[0].model_copy(deep=True)
    resolve_metrics(spec, None)
    assert spec.metrics[0] == before
    assert isinstance(spec.metrics[0], Metric)

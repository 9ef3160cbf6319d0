"""argo-assess.json: validation, rule_matching and args sections."""

from __future__ import annotations

import re
from typing import Any

import pytest

from analysisd.args import (
    ArgsError,
    flatten_templates,
    merge_args,
    redact,
    resolve_args,
    resolve_metrics,
    resolve_values,
    rollout_arg_values,
)
from analysisd.rules import RuleError, check_unique_rules, dry_run_metrics, retention_limits
from analysisd.spec import (
    AnalysisRunSpec,
    AnalysisTemplateSpec,
    Argument,
    DryRun,
    MeasurementRetention,
    Metric,
    SpecError,
    validate_metrics,
)
from tests.vectors import case_id, load_argo

FILE = "argo-assess.json"
VECTORS = load_argo(FILE)


def _cases(section: str) -> list[Any]:
    node: Any = VECTORS
    for part in section.split("."):
        node = node[part]
    return [pytest.param(c, id=case_id(FILE, section, c)) for c in node]


class DictSecrets:
    """Secrets given as {secret: {key: value}} (the vectors' shape)."""

    def __init__(self, data: dict[str, dict[str, str]]) -> None:
        self.data = data

    def has_secret(self, name: str) -> bool:
        return name in self.data

    def get(self, name: str, key: str) -> str | None:
        return self.data.get(name, {}).get(key)


@pytest.mark.parametrize("case", _cases("validation"))
def test_validation(case: dict[str, Any]) -> None:
    metrics = [Metric.model_validate(m) for m in case["metrics"]]
    if case.get("expect_error") is None and "expect_error_regex" not in case:
        validate_metrics(metrics)
        return
    with pytest.raises(SpecError) as caught:
        validate_metrics(metrics)
    if "expect_error_regex" in case:
        assert re.fullmatch(case["expect_error_regex"], str(caught.value))
    else:
        assert str(caught.value) == case["expect_error"]


@pytest.mark.parametrize("case", _cases("rule_matching"))
def test_rule_matching(case: dict[str, Any]) -> None:
    def run() -> set[str]:
        if case["kind"] == "dryRun":
            dry = [DryRun(metricName=r) for r in case["rules"]]
            check_unique_rules(dry, [])
            return dry_run_metrics(dry, case["metrics"])
        keep = [MeasurementRetention.model_validate(r) for r in case["rules"]]
        check_unique_rules([], keep)
        return set(retention_limits(keep, case["metrics"]))

    if "expect_error" in case:
        with pytest.raises(RuleError) as caught:
            run()
        assert str(caught.value) == case["expect_error"]
    else:
        assert run() == set(case["expect_matched"])


def _args(raw: list[dict[str, Any]] | None) -> list[Argument] | None:
    return None if raw is None else [Argument.model_validate(a) for a in raw]


def _dump(args: list[Argument] | None) -> list[dict[str, Any]] | None:
    if args is None:
        return None
    return [a.model_dump(by_alias=True, exclude_none=True) for a in args]


def _substitute(case: dict[str, Any]) -> str:
    if "measurement_message" in case:
        return redact(case["measurement_message"], case["secret_values"])
    secrets = DictSecrets(case.get("secrets", {}))
    args, secret_values = resolve_values(_args(case["args"]), secrets)
    if "expect_redacted_values" in case:
        assert secret_values == frozenset(case["expect_redacted_values"])
    if "template_field" not in case:
        return resolve_args(case["template"], args if case["args"] is not None else None)
    field = case["template_field"]
    metric = Metric.model_validate({"name": "m", field: case["template"], "provider": {"web": {}}})
    spec = AnalysisRunSpec(metrics=[metric], args=_args(case["args"]) or [])
    resolved = resolve_metrics(spec, secrets)
    assert resolved.secret_values == secret_values
    value: str = resolved.metrics[0].model_dump(by_alias=True)[field]
    return value


@pytest.mark.parametrize("case", _cases("args.substitution"))
def test_args_substitution(case: dict[str, Any]) -> None:
    if "expect_error" in case:
        with pytest.raises(ArgsError) as caught:
            _substitute(case)
        assert str(caught.value) == case["expect_error"]
    else:
        assert _substitute(case) == case["expect"]


@pytest.mark.parametrize("case", _cases("args.merge"))
def test_args_merge(case: dict[str, Any]) -> None:
    incoming, template = _args(case["incoming"]), _args(case["template"])
    if "expect_error" in case:
        with pytest.raises(ArgsError) as caught:
            merge_args(incoming, template)
        assert str(caught.value) == case["expect_error"]
    else:
        assert _dump(merge_args(incoming, template)) == case["expect"]


@pytest.mark.parametrize("case", _cases("args.flatten_templates"))
def test_args_flatten_templates(case: dict[str, Any]) -> None:
    def spec(raw: dict[str, Any]) -> AnalysisTemplateSpec:
        return AnalysisTemplateSpec.model_validate(raw)

    templates = [spec(t) for t in case["templates"]]
    clusters = [spec(t) for t in case.get("cluster_templates", [])]
    if "expect_error" in case:
        with pytest.raises(ArgsError) as caught:
            flatten_templates(templates, clusters)
        assert str(caught.value) == case["expect_error"]
        return
    flat = flatten_templates(templates, clusters)
    expect = case["expect"]
    if "metrics" in expect:
        assert [m.name for m in flat.metrics] == expect["metrics"]
    if "args" in expect:
        assert _dump(flat.args) == expect["args"]
    if "dryRun" in expect:
        assert [r.metric_name for r in flat.dry_run] == _rule_names(expect["dryRun"])
    if "measurementRetention" in expect:
        kept = [r.metric_name for r in flat.measurement_retention]
        assert kept == _rule_names(expect["measurementRetention"])


def _rule_names(rules: list[Any]) -> list[str]:
    return [r if isinstance(r, str) else r["metricName"] for r in rules]


@pytest.mark.parametrize("case", _cases("args.rollout_side_values"))
def test_args_rollout_side_values(case: dict[str, Any]) -> None:
    inputs = case["inputs"]
    values = rollout_arg_values(
        _args(case["args"]) or [],
        stable_hash=inputs["stableRS_pod_template_hash"],
        latest_hash=inputs["newRS_pod_template_hash"],
        rollout=inputs["rollout"],
    )
    assert values == case["expect"]


def test_every_args_subsection_is_covered() -> None:
    # A new sub-section in the vectors must get a test here rather than pass silently.
    assert set(VECTORS["args"]) == {
        "substitution",
        "merge",
        "flatten_templates",
        "rollout_side_values",
    }


@pytest.mark.parametrize(
    "ttl",
    [None, {}, {"secondsAfterCompletion": None}, {"secondsAfterSuccess": 0}],
    ids=["null", "empty", "null-field", "zero"],
)
def test_ttl_strategy_null_or_partial_loads_as_argo_reads_it(ttl: Any) -> None:
    # Argo's TTLStrategy is a pointer, each field a *int32: null is "not set".
    spec = AnalysisRunSpec.model_validate(
        {"metrics": [{"name": "m", "provider": {"prometheus": {}}}], "ttlStrategy": ttl}
    )
    if ttl is None:
        assert spec.ttl_strategy is None
    else:
        assert spec.ttl_strategy is not None
        assert spec.ttl_strategy.seconds_after_completion is None


@pytest.mark.parametrize("field", ["count", "failureLimit", "inconclusiveLimit"])
def test_int_fields_past_int32_are_refused_as_kubernetes_decodes_them(field: str) -> None:
    with pytest.raises(ValueError, match="out of range"):
        Metric.model_validate({"name": "m", field: 2**31, "provider": {"prometheus": {}}})
    Metric.model_validate({"name": "m", field: 2**31 - 1, "provider": {"prometheus": {}}})


# Argo master's TestValidateMetrics cases that argo-assess.json does not carry (yet).
MASTER_LIMIT_CASES = [
    ({"failureLimit": -2}, "metrics[0]: failureLimit must be >= 0, or -1 to be disabled"),
    (
        {"failureLimit": -1, "consecutiveSuccessLimit": 0},
        "metrics[0]: failureLimit and consecutiveSuccessLimit cannot both be disabled",
    ),
    # Unset is 0, as Go reads the nil pointer.
    (
        {"failureLimit": -1},
        "metrics[0]: failureLimit and consecutiveSuccessLimit cannot both be disabled",
    ),
    ({"failureLimit": -1, "consecutiveSuccessLimit": 2}, None),
    ({"failureLimit": 0, "consecutiveSuccessLimit": 0}, None),
    ({"failureLimit": "-1", "consecutiveSuccessLimit": "3"}, None),
]


@pytest.mark.parametrize(("fields", "expected"), MASTER_LIMIT_CASES)
def test_failure_and_success_limits_as_argo_master(
    fields: dict[str, Any], expected: str | None
) -> None:
    metrics = [Metric.model_validate({"name": "m", "provider": {"prometheus": {}}, **fields})]
    if expected is None:
        validate_metrics(metrics)
        return
    with pytest.raises(SpecError) as caught:
        validate_metrics(metrics)
    assert str(caught.value) == expected
    assert caught.value.field == "metrics[0].failureLimit"

"""admission.admit_run keeps what a spec alone decides (its problems, its prepared run) and
gives every run its own copy: what the run adds (namespace, name, uid, its tables) is the
run's, and a spec whose arguments read secrets or metadata is prepared for each run."""

from __future__ import annotations

from typing import Any

from analysisd.admission import admit_run
from analysisd.spec import AnalysisRunSpec, ObjectMeta

WEB = {"web": {"url": "http://metrics.example/api/{{args.host}}"}}


class Secrets:
    def __init__(self, value: str | None) -> None:
        self.value = value

    def get(self, name: str, key: str) -> str | None:
        return self.value if (name, key) == ("s", "k") else None


def spec(args: list[dict[str, Any]], **metric: Any) -> AnalysisRunSpec:
    return AnalysisRunSpec.model_validate(
        {"args": args, "metrics": [{"name": "m", "provider": WEB, **metric}]}
    )


def meta(name: str) -> ObjectMeta:
    return ObjectMeta(name=name, namespace="ns", uid=f"uid-{name}")


def test_equal_specs_share_the_preparation_but_not_the_run() -> None:
    plain = [{"name": "host", "value": "a"}]
    first_problems, first = admit_run(spec(plain), meta("one"), Secrets("x"))
    second_problems, second = admit_run(spec(plain), meta("two"), Secrets("x"))
    assert first_problems == second_problems == []
    assert first is not None and second is not None
    assert (first.name, first.uid, first.namespace) == ("one", "uid-one", "ns")
    assert (second.name, second.uid, second.namespace) == ("two", "uid-two", "ns")
    assert second.metrics == first.metrics
    assert second.metrics[0].provider["web"]["url"] == "http://metrics.example/api/a"
    assert second.conditions.keys() == first.conditions.keys()
    # Each run's own tables: binding one run's providers leaves the other's alone.
    assert second.bindings is not first.bindings and second.contexts is not first.contexts
    assert second.retention is not first.retention
    first.bindings["m"] = object()  # type: ignore[assignment]
    assert "m" not in second.bindings
    third = admit_run(spec(plain), meta("three"), Secrets("x"))[1]
    assert third is not None and "m" not in third.bindings


def test_a_spec_with_problems_is_refused_each_time_with_its_fields() -> None:
    bad = spec([{"name": "host", "value": "a"}], successCondition="result >=")
    for name in ("one", "two"):
        problems, _ = admit_run(bad, meta(name), Secrets("x"))
        assert [p.field for p in problems] == ["spec.metrics[0].successCondition"]
    # A metadata problem is the run's own, not the spec's.
    problems, _ = admit_run(bad, ObjectMeta(name="Not_A_Name", namespace="ns"), Secrets("x"))
    assert [p.field for p in problems] == ["metadata.name", "spec.metrics[0].successCondition"]


def test_arguments_from_metadata_or_secrets_are_resolved_for_each_run() -> None:
    by_field = [{"name": "host", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    for name in ("one", "two"):
        _, prepared = admit_run(spec(by_field), meta(name), Secrets("x"))
        assert prepared is not None
        assert prepared.metrics[0].provider["web"]["url"] == f"http://metrics.example/api/{name}"
    by_secret = [{"name": "host", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
    for value in ("first", "second"):
        _, prepared = admit_run(spec(by_secret), meta("one"), Secrets(value))
        assert prepared is not None
        assert prepared.metrics[0].provider["web"]["url"] == f"http://metrics.example/api/{value}"
        assert prepared.secret_values >= {value}
    problems, prepared = admit_run(spec(by_secret), meta("one"), Secrets(None))
    assert prepared is None and [p.field for p in problems] == [
        "spec.args[0].valueFrom.secretKeyRef"
    ]

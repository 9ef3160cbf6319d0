"""The loader refuses bad input with a message naming file, place and problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysisd.loader import LoadError, load_documents, load_file
from analysisd.spec import AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate

HEADER = "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata:\n  name: t\n"
METRIC = "  metrics:\n  - name: m\n    provider:\n      prometheus:\n        query: up\n"
GOOD = HEADER + "spec:\n" + METRIC


def error_of(text: str, **kwargs: int) -> str:
    with pytest.raises(LoadError) as caught:
        load_documents(text, source="t.yaml", **kwargs)
    return str(caught.value)


def test_good_template_loads() -> None:
    (obj,) = load_documents(GOOD)
    assert isinstance(obj, AnalysisTemplate)
    assert obj.spec.metrics[0].provider == {"prometheus": {"query": "up"}}


def test_malformed_yaml_names_line_and_column() -> None:
    text = HEADER + "spec:\n  metrics: [\n    - name: x\n"
    message = error_of(text)
    assert message.startswith("t.yaml:")
    line, column = message.split(":")[1:3]
    assert (int(line), int(column)) == (7, 5)


def test_tab_indentation_is_a_yaml_error_with_position() -> None:
    assert error_of("spec:\n\tmetrics: []\n").startswith("t.yaml:2:1: ")


def test_wrong_api_version_is_named() -> None:
    message = error_of(GOOD.replace("argoproj.io/v1alpha1", "argoproj.io/v1"))
    assert message == "t.yaml: apiVersion: 'argoproj.io/v1' is not argoproj.io/v1alpha1"


def test_wrong_kind_is_named() -> None:
    message = error_of(GOOD.replace("kind: AnalysisTemplate", "kind: Rollout"))
    assert message == (
        "t.yaml: kind: 'Rollout' is not one of AnalysisTemplate, ClusterAnalysisTemplate, "
        "AnalysisRun"
    )


def test_kind_that_is_not_a_string_is_named() -> None:
    message = error_of('{"apiVersion": "argoproj.io/v1alpha1", "kind": {}, "spec": {}}')
    assert message.startswith("t.yaml: kind: {} is not one of AnalysisTemplate")


def test_missing_kind_is_named() -> None:
    assert error_of("apiVersion: argoproj.io/v1alpha1\nspec: {}\n") == (
        "t.yaml: kind: required field is missing"
    )


def test_missing_required_fields_name_their_paths() -> None:
    text = HEADER + "spec:\n  metrics:\n  - name: ok\n  - interval: 5m\n  args:\n  - value: x\n"
    assert error_of(text).splitlines() == [
        "t.yaml: spec.metrics[1].name: required field is missing",
        "t.yaml: spec.args[0].name: required field is missing",
    ]


def test_missing_spec_is_named() -> None:
    assert error_of(HEADER) == "t.yaml: spec: required field is missing"


def test_unknown_field_is_named() -> None:
    text = GOOD + "    failureLimt: 3\n"
    expected = "t.yaml: spec.metrics[0].failureLimt: unknown field (did you mean failureLimit?)"
    assert error_of(text) == expected


def test_float_count_is_not_an_intstr() -> None:
    text = GOOD + "    count: 1.5\n"
    assert error_of(text) == (
        "t.yaml: spec.metrics[0].count: must be an integer or a string, got float 1.5"
    )


def test_non_mapping_document_is_refused() -> None:
    assert error_of("- a\n- b\n") == "t.yaml: expected a mapping (an Argo object), got list"
    assert error_of("just text\n") == "t.yaml: expected a mapping (an Argo object), got str"


def test_empty_text_is_refused() -> None:
    assert error_of("") == "t.yaml: no documents found"


def test_document_over_the_size_limit_is_refused_unparsed() -> None:
    # Ten megabytes of broken YAML: a parse would fail differently, so the message
    # shows the size check came first.
    text = "a: [" + "x" * (10 * 1024 * 1024)
    message = error_of(text)
    assert "over the 1048576-byte limit" in message
    assert "not parsed" in message


def test_size_limit_is_configurable() -> None:
    assert "over the 100-byte limit" in error_of(GOOD, max_bytes=100)
    assert load_documents(GOOD, max_bytes=len(GOOD))


def test_ten_megabyte_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text(GOOD + "#" + "x" * (10 * 1024 * 1024) + "\n")
    with pytest.raises(LoadError) as caught:
        load_file(path)
    assert str(caught.value).startswith(f"{path}: document is ")
    assert "over the 1048576-byte limit" in str(caught.value)


def test_yaml_bomb_is_refused() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    message = error_of("\n".join(lines) + "\n")
    assert "aliases expand to more than" in message
    assert "YAML bomb" in message


def test_recursive_alias_is_refused() -> None:
    assert "recursive alias" in error_of("a: &a [1, *a]\n")


def test_modest_aliases_are_fine() -> None:
    text = HEADER + "spec:\n  metrics:\n  - &m\n    name: m\n    provider: {web: {url: x}}\n"
    (obj,) = load_documents(text)
    assert obj.spec.metrics[0].name == "m"


def test_multi_document_errors_name_the_document() -> None:
    text = GOOD + "---\n" + GOOD.replace("kind: AnalysisTemplate", "kind: Pod")
    assert error_of(text).startswith("t.yaml (document 2): kind: 'Pod'")


def test_multi_document_yaml_gives_every_object() -> None:
    cluster = GOOD.replace("kind: AnalysisTemplate", "kind: ClusterAnalysisTemplate")
    run = GOOD.replace("kind: AnalysisTemplate", "kind: AnalysisRun")
    objects = load_documents(GOOD + "---\n" + cluster + "---\n" + run + "---\n")
    assert [type(o) for o in objects] == [AnalysisTemplate, ClusterAnalysisTemplate, AnalysisRun]


def test_json_input_loads_and_reports_position() -> None:
    doc = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "spec": {"metrics": [{"name": "m", "provider": {"web": {"url": "x"}}}]},
    }
    (obj,) = load_documents(json.dumps(doc))
    assert isinstance(obj, AnalysisRun)
    assert error_of('{"apiVersion": }').startswith("t.yaml:1:16: invalid JSON")


def test_kubectl_list_gives_its_items() -> None:
    item = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "a"},
        "spec": {"metrics": []},
    }
    objects = load_documents(json.dumps({"kind": "List", "items": [item, item]}))
    assert len(objects) == 2


def test_unreadable_file_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError) as caught:
        load_file(tmp_path / "absent.yaml")
    assert "cannot read" in str(caught.value)


def test_non_utf8_file_is_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"a: \xff\n")
    with pytest.raises(LoadError) as caught:
        load_file(path)
    assert "not UTF-8" in str(caught.value)


def test_fragment_errors_name_the_spec_field(tmp_path: Path) -> None:
    path = tmp_path / "x.fragment.yaml"
    path.write_text("metrics:\n- interval: 5m\n")
    with pytest.raises(LoadError) as caught:
        load_file(path)
    assert str(caught.value) == f"{path}: spec.metrics[0].name: required field is missing"


def test_impossible_date_is_a_positioned_yaml_error() -> None:
    assert error_of("a: 1\nb: 2020-13-45\n") == "t.yaml:2:4: invalid value: month must be in 1..12"


def test_control_character_is_a_yaml_error() -> None:
    message = error_of("a: \x1f\n")
    assert message.startswith("t.yaml: invalid YAML: ")
    assert "characters are not allowed" in message


def test_list_with_non_sequence_items_is_refused() -> None:
    assert error_of('{"kind": "List", "items": {"a": 1}}') == (
        "t.yaml: items: a List's items must be a sequence"
    )

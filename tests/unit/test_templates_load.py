"""Every upstream example in ../shared/argo-templates loads and lints clean."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from analysisd.commands.lint import run
from analysisd.loader import DEFAULT_MAX_BYTES, load_file
from analysisd.spec import AnalysisTemplate, ClusterAnalysisTemplate
from tests.vectors import shared_dir

TEMPLATES = shared_dir() / "argo-templates"
FILES = sorted(p for p in TEMPLATES.iterdir() if p.suffix == ".yaml")


def test_the_examples_are_there() -> None:
    assert len(FILES) >= 20


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_example_loads_as_templates(path: Path) -> None:
    objects = load_file(path)
    assert objects
    for obj in objects:
        assert isinstance(obj, AnalysisTemplate | ClusterAnalysisTemplate)
        assert obj.spec.metrics


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_example_lints_clean_alone(path: Path) -> None:
    out = io.StringIO()
    code = run(argparse.Namespace(files=[str(path)], max_bytes=DEFAULT_MAX_BYTES), out)
    assert out.getvalue() == ""
    assert code == 0


def test_all_examples_lint_clean_together() -> None:
    out = io.StringIO()
    code = run(argparse.Namespace(files=[str(p) for p in FILES], max_bytes=DEFAULT_MAX_BYTES), out)
    assert out.getvalue() == ""
    assert code == 0


def test_fragment_loads_as_a_template_named_after_the_file() -> None:
    (obj,) = load_file(TEMPLATES / "19-dry-run.fragment.yaml")
    assert isinstance(obj, AnalysisTemplate)
    assert obj.metadata.name == "19-dry-run"
    assert [r.metric_name for r in obj.spec.dry_run] == [".*"]
    assert [m.name for m in obj.spec.metrics] == ["total-5xx-errors", "total-4xx-errors"]


def test_numeric_argument_default_is_kept_as_its_text() -> None:
    (obj,) = load_file(TEMPLATES / "05-cluster-analysis-template.yaml")
    port = next(a for a in obj.spec.args if a.name == "prometheus-port")
    assert port.value == "9090"

"""Every upstream example in tests/data/argo-templates (Argo's docs) loads and lints clean."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from analysisd.commands.lint import run
from analysisd.loader import DEFAULT_MAX_BYTES, load_file
from analysisd.spec import RUN_PROVIDER_KINDS, AnalysisTemplate, ClusterAnalysisTemplate
from tests.vectors import argo_templates_dir

TEMPLATES = argo_templates_dir()
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


# Argo provider kinds analysisd does not run, by the example that uses one. Lint calls
# them problems (the daemon refuses such runs); --allow-unsupported prints a warning.
UNSUPPORTED: dict[str, str] = {}  # (every kind of the examples runs now)


def _lint(files: list[str], *, allow_unsupported: bool = False) -> tuple[int, str]:
    out = io.StringIO()
    args = argparse.Namespace(
        files=files, max_bytes=DEFAULT_MAX_BYTES, allow_unsupported=allow_unsupported
    )
    return run(args, out), out.getvalue()


def _unsupported_line(name: str, kind: str, *, warning: bool) -> str:
    prefix = "warning: " if warning else ""
    return (
        f"{TEMPLATES / name}: spec.metrics[0].provider.{kind}: {prefix}provider kind "
        f"'{kind}' is not run by analysisd (it runs {', '.join(sorted(RUN_PROVIDER_KINDS))}); "
        "every measurement would be an Error\n"
    )


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_example_lints_clean_alone(path: Path) -> None:
    kind = UNSUPPORTED.get(path.name)
    code, out = _lint([str(path)])
    if kind is None:
        assert (code, out) == (0, "")
    else:
        assert (code, out) == (1, _unsupported_line(path.name, kind, warning=False))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_example_lints_clean_alone_allowing_unsupported_kinds(path: Path) -> None:
    kind = UNSUPPORTED.get(path.name)
    code, out = _lint([str(path)], allow_unsupported=True)
    assert code == 0
    assert out == ("" if kind is None else _unsupported_line(path.name, kind, warning=True))


def test_all_examples_lint_clean_together_allowing_unsupported_kinds() -> None:
    code, out = _lint([str(p) for p in FILES], allow_unsupported=True)
    assert code == 0
    expected = "".join(
        _unsupported_line(name, kind, warning=True) for name, kind in UNSUPPORTED.items()
    )
    assert out == expected


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

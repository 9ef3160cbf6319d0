"""The layout rule of docs/architecture.md: no module of analysisd or providers over 500
lines. A module that grows past it is split along a seam, never allowed to drift."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 500
MODULES = sorted(
    path
    for package in ("analysisd", "providers")
    for path in (ROOT / package).rglob("*.py")
    if "__pycache__" not in path.parts
)


def test_the_packages_have_modules() -> None:
    assert len(MODULES) > 100  # the glob found the tree, not an empty folder


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_over_500_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= LIMIT, f"{path.relative_to(ROOT)} has {lines} lines (limit {LIMIT})"

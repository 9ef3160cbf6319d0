"""The dependency contracts in pyproject.toml ([tool.importlinter], DESIGN.md §1) hold
on the real tree, and each one fails when a forbidden import is added to a copy of
the packages (or when its rule is taken out): a contract that cannot fail checks nothing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))


def lint_imports(cwd: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    """lint-imports (only `contracts`, by id, if named) with `cwd` first on the path, so a
    copy there is what gets analysed."""
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", *(f"--contract={c}" for c in contracts)],
        cwd=cwd,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the two packages and the contracts, to break."""
    for package in ("analysisd", "providers"):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def add_import(tree: Path, module: str, line: str) -> None:
    path = tree / (module.replace(".", "/") + ".py")
    text = path.read_text(encoding="utf-8")
    # After `from __future__`, which must stay first.
    head, sep, rest = text.partition("from __future__ import annotations\n")
    path.write_text(head + sep + line + "\n" + rest if sep else line + "\n" + text)


def test_the_real_tree_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("analysisd.judge.stats", "import providers.base", "judge"),
        ("analysisd.judge.scorer", "import analysisd.store", "judge"),
        ("analysisd.judge.classifier", "import time", "judge"),
        ("analysisd.judge.report", "from pathlib import Path", "judge"),
        ("providers.limits", "import analysisd.spec", "providers"),
        ("providers.gocompat", "import providers.base", "gocompat"),
        ("analysisd.engine.assess", "import asyncio", "pure"),
        ("analysisd.expr", "import aiohttp", "pure"),
        ("analysisd.engine.measure", "import analysisd.engine.scheduler", "layers"),
        ("analysisd.spec", "import analysisd.engine.run", "layers"),
        ("analysisd.engine.scheduler", "import analysisd.commands", "layers"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    tree: Path, module: str, line: str, contract: str
) -> None:
    if (tree / module.replace(".", "/")).is_dir():
        module += ".__init__"
    assert lint_imports(tree, contract).returncode == 0  # kept before the import is added
    add_import(tree, module, line)
    result = lint_imports(tree, contract)
    assert result.returncode != 0, result.stdout
    assert "1 broken" in result.stdout, result.stdout


def test_an_ignore_rule_is_what_keeps_a_contract_and_removing_it_breaks_it(tree: Path) -> None:
    add_import(tree, "analysisd.judge.stats", "import providers.base")
    config = tree / "pyproject.toml"
    text = config.read_text(encoding="utf-8")
    judge = 'source_modules = ["analysisd.judge"]\n'
    rule = 'ignore_imports = ["analysisd.judge.stats -> providers.base"]\n'
    config.write_text(text.replace(judge, judge + rule), encoding="utf-8")
    assert lint_imports(tree, "judge").returncode == 0
    config.write_text(text, encoding="utf-8")
    result = lint_imports(tree, "judge")
    assert result.returncode != 0, result.stdout
    assert "1 broken" in result.stdout, result.stdout

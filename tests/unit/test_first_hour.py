"""The way in for a new user (issue 19): README, CI script and test scripts hold their promises."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_no_process_is_killed_by_name_in_scripts_or_ci() -> None:
    files = [*sorted((REPO / "scripts").iterdir()), REPO / ".ci" / "run", REPO / "Makefile"]
    for path in files:
        text = path.read_text()
        assert not re.search(r"\b(pkill|killall)\b", text), path


def test_ci_runs_under_ci_true_and_postgres_failure_is_not_swallowed() -> None:
    text = (REPO / ".ci" / "run").read_text()
    assert "export CI=true" in text
    start = next(line for line in text.splitlines() if "pg_ctlcluster" in line)
    assert "|| true" not in start
    assert "exit 1" in text.split("pg_ctlcluster", 1)[1]


def test_readme_names_python_and_a_virtualenv_before_the_two_commands() -> None:
    text = (REPO / "README.md").read_text()
    before, first_block = text.split("```sh\n", 1)
    assert "Python 3.11" in before and "python3 -m venv" in before
    commands = [
        line.split("#", 1)[0].strip()
        for line in first_block.split("```", 1)[0].splitlines()
        if line.split("#", 1)[0].strip()
    ]
    assert commands == ["make serve", "make test"]  # what scripts/readme-commands.sh runs
    assert "tests/data/vectors/" in text


def test_vectors_and_templates_are_in_the_repository() -> None:
    assert (REPO / "tests" / "data" / "vectors" / "argo-assess.json").is_file()
    assert (
        REPO / "tests" / "data" / "argo-templates" / "01-prometheus-success-rate.yaml"
    ).is_file()
    assert "refresh-vectors.sh" in (REPO / "tests" / "vectors.py").read_text()

"""A fresh clone's tests run: nothing outside the repository is needed (issue 19).

The committed state (HEAD) is cloned into an empty temporary directory, with no
`../shared` beside it, and the README's test command's pytest part runs there on a
reduced selection: the conformance vectors and Argo's doc templates, which once were
read from ../shared.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SELECTION = ["tests/conformance", "tests/unit/test_templates_load.py"]


def test_fresh_clone_without_shared_folder_passes_the_vector_tests(tmp_path: Path) -> None:
    clone = tmp_path / "analysisd"
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(clone)],
        check=True,
        timeout=120,
    )
    assert not (tmp_path / "shared").exists()
    assert (clone / "tests" / "data" / "vectors" / "argo-assess.json").is_file()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYSISD_")}
    # The clone's own code, not the checkout pip installed in editable mode.
    env["PYTHONPATH"] = str(clone)
    where = subprocess.run(
        [sys.executable, "-c", "import analysisd, tests.vectors as v; print(analysisd.__file__)"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip().startswith(str(clone)), where.stdout
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SELECTION],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    tail = "\n".join(result.stdout.splitlines()[-20:])
    assert result.returncode == 0, tail + result.stderr[-2000:]
    assert " passed" in tail and "error" not in tail.lower()

"""The quick start's terminal screens come from the real program in a real terminal (tmux)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "quickstart-screens.sh"


def test_live_view_in_tmux_shows_pass_fail_and_the_error_reason_as_the_page_does() -> None:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        ["bash", str(SCRIPT)], cwd=REPO, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout + result.stderr
    screens = result.stdout.split("\n\n")
    passing, failing, erroring = (s for s in screens if s.strip())
    assert "AnalysisRun default/http-success-rate: Successful" in passing
    assert "3 of 3" in passing and passing.rstrip().endswith("exit 0")
    assert "AnalysisRun default/http-success-rate: Failed" in failing
    assert failing.rstrip().endswith("exit 1")
    assert "Running" in erroring and "└ Error: prometheus at http://127.0.0.1:9" in erroring
    # The page shows screens of the same three runs, as the program draws them.
    page = (REPO / "docs" / "quickstart.md").read_text()
    for screen in (passing, failing, erroring):
        assert screen.splitlines()[1] in page  # "AnalysisRun default/...: <phase>"
    assert "└ Error: prometheus at http://127.0.0.1:9/api/v1/query: cannot connect" in page

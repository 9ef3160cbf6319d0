"""docs/quickstart.md, run as written: every ```sh block, in order, in one bash session.

The page's own conventions drive the run: a line ending in `&` starts something in
the background (the page's last block stops it by pid; a trap here stops whatever is
left, by pid too), and every `echo $?` carries the exit code the page promises as
its comment (`echo $?   # 0: ...`). Two things differ from a reader's shell, both
for the test machine's sake: the set-up lines that create a virtualenv and
pip-install are checked rather than run (this interpreter already has the package
installed from this checkout), and port 8080 becomes a free port.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "quickstart.md"
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
EXPECTED_EXIT = re.compile(r"^echo \$\?\s+#\s*(\d+)")


def sh_blocks(markdown: str) -> list[str]:
    return [match.group(1) for match in BLOCK.finditer(markdown)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def page_script(markdown: str, port: int) -> tuple[str, list[int]]:
    """The page's commands as one bash script, and the exit codes its `echo $?` promise."""
    lines: list[str] = ["trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT"]
    expected: list[int] = []
    for block in sh_blocks(markdown):
        for line in block.splitlines():
            if line.startswith(("python3 -m venv", "pip install")):
                # Already done for this interpreter: check it instead.
                lines.append("analysisd --version >/dev/null || exit 97")
                continue
            promised = EXPECTED_EXIT.match(line)
            if promised:
                expected.append(int(promised.group(1)))
                line = 'echo "EXIT[$?]"'
            lines.append(line.replace("8080", str(port)))
    return "\n".join(lines) + "\n", expected


def test_page_has_the_steps_a_new_user_needs() -> None:
    text = PAGE.read_text()
    script, expected = page_script(text, 8080)
    assert "analysisd demo\n" in script and "--keep-running" in script
    assert "hmac-key" in script  # the webhook's secret is created, not assumed
    assert "baseline.json <<" in script  # the judge's inputs are given
    assert expected[:2] == [0, 0]  # the demo, then lint


def test_quickstart_commands_work_when_pasted_in_order(tmp_path: Path) -> None:
    script, expected = page_script(PAGE.read_text(), _free_port())
    # A reader's shell at the repository's root, without littering the checkout.
    (tmp_path / "examples").symlink_to(REPO / "examples")
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    assert shutil.which("analysisd", path=env["PATH"]), "analysisd is not installed"
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = result.stdout
    context = f"stdout:\n{out[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
    codes = [int(code) for code in re.findall(r"EXIT\[(\d+)\]", out)]
    assert codes == expected, context
    assert '"status": "ready"' in out, context
    run = _json_after(out, '"runSummary"')  # the GET (the POST's answer has no status yet)
    assert run["status"]["phase"] == "Successful", context
    deliveries = _json_after(out, '"kind": "DeliveryList"')
    assert {d["state"] for d in deliveries["items"]} == {"delivered"}, context
    assert "io.analysisd.analysisrun.completed" in {d["type"] for d in deliveries["items"]}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", deliveries["items"][0]["createdAt"])
    assert "score 100: Pass" in out, context
    # The demo service logged the signed callback.
    assert "io.analysisd.analysisrun.completed default/demo (signed)" in (
        (tmp_path / "demo.log").read_text()
    )
    assert not (tmp_path / "demo.env").exists()  # the demo was stopped and cleaned up


def _json_after(out: str, marker: str) -> Any:
    """The first JSON object in `out` that contains marker (curl prints them back to back)."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", out):
        try:
            loaded, end = decoder.raw_decode(out, match.start())
        except ValueError:
            continue
        if marker in out[match.start() : end]:
            return loaded
    raise AssertionError(f"no JSON with {marker} in:\n{out[-3000:]}")

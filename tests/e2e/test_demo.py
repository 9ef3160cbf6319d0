"""`analysisd demo`: a real Prometheus, a good canary that passes and a bad one that fails."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "analysisd.cli"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not alive: our own child we have not reaped cannot be one here.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_demo_shows_the_good_canary_pass_and_the_bad_one_fail_within_a_minute() -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [*CLI, "demo"], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    took = time.monotonic() - started
    out = proc.stdout
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "--arg version=good" in out and "exit 0 (Successful; expected exit 0)" in out
    assert "--arg version=bad" in out and "exit 1 (Failed; expected exit 1)" in out
    assert took < 60
    # It stopped the Prometheus it started (and only that one: it names it by pid).
    pid = int(re.search(r"\(pid (\d+)\)", out).group(1))  # type: ignore[union-attr]
    assert not _alive(pid)


def test_kept_running_demo_serves_analysisd_run_until_sigterm(tmp_path: Path) -> None:
    env_file = tmp_path / "demo.env"
    demo = subprocess.Popen(
        [*CLI, "demo", "--keep-running", "--env-file", str(env_file)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not env_file.exists():
            assert demo.poll() is None, demo.stdout.read() if demo.stdout else ""
            assert time.monotonic() < deadline, "no env file after 60 s"
            time.sleep(0.2)
        values = dict(
            line.removeprefix("export ").split("=", 1)
            for line in env_file.read_text().split()
            if "=" in line
        )
        assert values["DEMO_PID"] == str(demo.pid)
        example = "examples/http-success-rate.yaml"
        common = ["--arg", f"prometheus-address={values['PROMETHEUS_ADDRESS']}"]
        common += ["--arg", "app=checkout", "--arg", "interval=1s", "--arg", "count=2", "-q"]
        for version, code in (("good", 0), ("bad", 1)):
            run = subprocess.run(
                [*CLI, "run", example, *common, "--arg", f"version={version}"],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert run.returncode == code, run.stderr
            assert run.stdout == ""  # -q: no final document
    finally:
        demo.send_signal(signal.SIGTERM)
        output, _ = demo.communicate(timeout=30)
    assert demo.returncode == 0, output
    assert not env_file.exists()  # it cleans up after itself
    pid = int(re.search(r"\(pid (\d+)\)", output).group(1))  # type: ignore[union-attr]
    assert not _alive(pid)

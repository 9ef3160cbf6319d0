"""The judge's HTML report opens in headless Chromium (Debian `chromium`), one plot per metric.

Fails, not skips, when chromium is missing: scripts/install-test-deps.sh installs it.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import struct
import subprocess
from pathlib import Path

from analysisd.judge.config import parse_canary_config
from analysisd.judge.judge import JudgeResult, judge
from analysisd.judge.report import render_report

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def sample_judgement() -> JudgeResult:
    """Four metrics, one of each outcome a reader meets: High (critical), Low, Pass, Nodata."""
    rng = random.Random(15)
    baseline = [rng.lognormvariate(-2.0, 0.3) for _ in range(120)]
    config = parse_canary_config(
        {
            "name": "checkout",
            "metrics": [
                {
                    "name": "p99 latency",
                    "groups": ["latency"],
                    "analysisConfigurations": {
                        "canary": {
                            "direction": "increase",
                            "critical": True,
                            "effectSize": {"allowedIncrease": 1.1, "criticalIncrease": 1.2},
                        }
                    },
                },
                {"name": "throughput", "groups": ["traffic"]},
                {"name": "error rate", "groups": ["errors"]},
                {"name": "queue depth", "groups": ["errors"]},
            ],
            "classifier": {"groupWeights": {"latency": 50, "traffic": 25, "errors": 25}},
        }
    )
    throughput = [rng.gauss(500, 20) for _ in range(120)]
    errors = [rng.gauss(0.01, 0.002) for _ in range(120)]
    return judge(
        config,
        {
            "p99 latency": (baseline, [v * 1.31 for v in baseline]),
            "throughput": (throughput, [v * 0.8 for v in throughput]),
            "error rate": (errors, [rng.gauss(0.01, 0.002) for _ in range(120)]),
            "queue depth": ([3.0, 4.0, 5.0], []),
        },
    )


def run_chromium(args: list[str], profile: Path, timeout: float = 60.0) -> str:
    chromium = shutil.which("chromium")
    assert chromium, "Debian chromium is not installed (scripts/install-test-deps.sh)"
    process = subprocess.Popen(
        [chromium, *FLAGS, f"--user-data-dir={profile}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # our own session: chromium and its helpers
            process.wait()
    return out


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_report_opens_in_chromium_with_one_plot_per_metric(tmp_path: Path) -> None:
    result = sample_judgement()
    page = tmp_path / "judgement.html"
    page.write_text(render_report(result, title="Canary judgement: checkout"), encoding="utf-8")

    dom = run_chromium(["--dump-dom", page.as_uri()], tmp_path / "profile-dom")
    plots = re.findall(r'<svg class="metric-plot" data-metric="([^"]+)"', dom)
    assert plots == [m.name for m in result.metrics]
    assert dom.count('<section class="metric"') == len(result.metrics)
    assert 'id="verdict"' in dom
    # the interval of the shift, for every metric the rank test ran on
    judged = [m for m in result.metrics if m.outcome.ci_lower is not None]
    assert dom.count('<svg class="interval-plot"') == len(judged) == 3

    shot = Path(os.environ.get("JUDGE_REPORT_SCREENSHOT", tmp_path / "judgement.png"))
    run_chromium(
        ["--hide-scrollbars", "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri()],
        tmp_path / "profile-shot",
    )
    assert png_size(shot) == (1200, 1600)
    assert shot.stat().st_size > 20_000  # a blank page compresses to a few kB

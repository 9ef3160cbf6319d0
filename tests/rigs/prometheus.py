"""A real Prometheus on 127.0.0.1 with an hour of deterministic history, for tests.

Use it in a test module with::

    # ruff: noqa: F811  (the fixture is imported, then named as a parameter)
    from tests.rigs.prometheus import PrometheusRig, prometheus_rig  # noqa: F401

    async def test_x(prometheus_rig: PrometheusRig) -> None:
        url = prometheus_rig.url  # e.g. "http://127.0.0.1:41234"

``prometheus_rig`` (session scope) starts Debian's ``/usr/bin/prometheus`` with a
scratch config and data dir. Before start, ``promtool tsdb create-blocks-from
openmetrics`` backfills history from ``now - 1h`` to ``now + 10m`` (one sample
every 5 s), so every query at wall-clock now has data at once and the answers
below hold exactly (to ~1e-9) over any window from 1m to 55m. Prometheus also
scrapes the demo app (tests/rigs/demo_app.py, prometheus-client, 1 s interval)
as ``job="demo"``; its samples continue the very same lines (job/instance are
dropped by metric relabelling), so history and live data never disagree.
``up{job="demo"}`` shows the scrape working (after a second or two).
Tests are skipped when the prometheus or promtool binary is missing, and fail
instead under CI (tests.rigs.peers).

Series (every one has ``app="demo"``):

``http_requests_total{app="demo", version=V, status=S}`` (counter)
    V in ``stable``, ``canary``, ``canary-fast``; S in ``"200"``, ``"500"``.
    Mean rates (requests/s; the instantaneous rate swings ±50% over 5 minutes,
    so range data is not flat, but ratios within a version are constant):

    ============  ======  ======  ==============================
    version       200     500     success rate (non-5xx / all)
    ============  ======  ======  ==============================
    stable        99      1       0.99
    canary        9       1       0.90
    canary-fast   9.9     0.1     0.99
    ============  ======  ======  ==============================

``http_request_duration_seconds_bucket{app="demo", version=V, le=L}`` (histogram)
    L in ``0.05 0.1 0.25 0.5 1.0 2.5 +Inf``; plus ``_count`` and ``_sum``.
    ``histogram_quantile(q, sum by (le) (rate(..._bucket{version=V}[5m])))``:

    ============  ========  ========  ========================
    version       p50 (s)   p99 (s)   mean (s) = rate(sum)/rate(count)
    ============  ========  ========  ========================
    stable        0.05      0.375     0.08
    canary        0.175     2.35      0.4
    canary-fast   0.03125   0.22      0.04
    ============  ========  ========  ========================

Handy constants: ``STABLE_SUCCESS_RATE``, ``CANARY_SUCCESS_RATE``,
``P99_SECONDS``, ``SUCCESS_RATE_QUERY`` (a format string taking ``version``).

``prometheus_scratch`` (function scope) adds recording/alerting rules or extra
scrape targets for one test and removes them afterwards
(``scratch.add_rules(yaml_text)``, ``scratch.add_target("127.0.0.1:PORT")``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.rigs.demo_app import DemoApp, render_history
from tests.rigs.peers import peer_missing

PROMETHEUS_BIN = os.environ.get("ANALYSISD_PROMETHEUS_BIN", "/usr/bin/prometheus")
PROMTOOL_BIN = os.environ.get("ANALYSISD_PROMTOOL_BIN", "/usr/bin/promtool")
HISTORY_S = 3600.0
FUTURE_S = 600.0  # blocks reach past now, so "now" has data for the whole session
STEP_S = 5.0
START_TIMEOUT_S = 30.0
PORT_ATTEMPTS = 3

STABLE_SUCCESS_RATE = 0.99
CANARY_SUCCESS_RATE = 0.90
CANARY_FAST_SUCCESS_RATE = 0.99
P99_SECONDS = {"stable": 0.375, "canary": 2.35, "canary-fast": 0.22}
P50_SECONDS = {"stable": 0.05, "canary": 0.175, "canary-fast": 0.03125}
MEAN_SECONDS = {"stable": 0.08, "canary": 0.4, "canary-fast": 0.04}
SUCCESS_RATE_QUERY = (
    'sum(rate(http_requests_total{{app="demo",version="{version}",status!~"5.."}}[1m]))'
    ' / sum(rate(http_requests_total{{app="demo",version="{version}"}}[1m]))'
)
P99_QUERY = (
    "histogram_quantile(0.99, sum by (le) "
    '(rate(http_request_duration_seconds_bucket{{app="demo",version="{version}"}}[5m])))'
)


@dataclass(frozen=True, slots=True)
class PrometheusRig:
    """A running Prometheus; ``url`` has no trailing slash."""

    url: str
    port: int
    workdir: Path
    demo_target: str
    history_start: float
    history_end: float


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _config(demo_target: str, workdir: Path) -> str:
    # JSON is valid YAML; no YAML writer needed.
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        # The head would otherwise refuse every sample older than the backfilled
        # blocks' end (now + FUTURE_S): no `up`, no rule results, for ten minutes.
        "storage": {"tsdb": {"out_of_order_time_window": "30m"}},
        "rule_files": [str(workdir / "rules" / "*.yml")],
        "scrape_configs": [
            {
                "job_name": "demo",
                "static_configs": [{"targets": [demo_target]}],
                # The live scrape must land on the backfilled series, not beside them.
                "metric_relabel_configs": [{"action": "labeldrop", "regex": "job|instance"}],
            },
            {
                "job_name": "scratch",
                "file_sd_configs": [
                    {"files": [str(workdir / "targets" / "*.json")], "refresh_interval": "1s"}
                ],
            },
        ],
    }
    return json.dumps(config, indent=2)


def _get_json(url: str, timeout: float = 2.0) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        data: dict[str, object] = json.load(response)
        return data


def _wait_for_data(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Ready is not enough: poll until a query at now sees the backfilled series."""
    query = urllib.parse.urlencode({"query": 'count(http_requests_total{app="demo"})'})
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text()[-2000:]
            raise RuntimeError(f"prometheus exited ({process.returncode}): {tail}")
        with contextlib.suppress(OSError, ValueError):
            body = _get_json(f"{url}/api/v1/query?{query}")
            data = body.get("data")
            if isinstance(data, dict) and data.get("result"):
                return
        time.sleep(0.1)
    tail = log.read_text()[-2000:]
    raise RuntimeError(f"prometheus had no data after {START_TIMEOUT_S}s: {tail}")


def _backfill(workdir: Path, data_dir: Path, now: float, epoch: float) -> None:
    history = workdir / "history.om"
    with history.open("w") as out:
        for line in render_history(now - HISTORY_S, now + FUTURE_S, STEP_S, epoch):
            out.write(line + "\n")
    subprocess.run(
        [PROMTOOL_BIN, "tsdb", "create-blocks-from", "openmetrics", str(history), str(data_dir)],
        check=True,
        capture_output=True,
        timeout=60,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _launch(config_file: Path, data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as log_out:
        return subprocess.Popen(
            [
                PROMETHEUS_BIN,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={data_dir}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=1d",
                "--log.level=warn",
            ],
            stdout=log_out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def require_binaries(prometheus: str = PROMETHEUS_BIN, promtool: str = PROMTOOL_BIN) -> None:
    """Skip (fail under CI) unless both binaries are installed."""
    if not (shutil.which(prometheus) and shutil.which(promtool)):
        peer_missing(f"{prometheus} / {promtool} not installed (Debian package prometheus)")


@contextlib.contextmanager
def running_prometheus() -> Iterator[PrometheusRig]:
    """Start demo app + backfilled Prometheus; stop both and remove every file on exit."""
    require_binaries()
    workdir = Path(tempfile.mkdtemp(prefix="analysisd-prom-"))
    now = time.time()
    # Aligned history timestamps; an epoch shortly before history keeps counters small.
    start = math.floor((now - HISTORY_S) / STEP_S) * STEP_S
    epoch = start - 60.0
    demo = DemoApp(epoch)
    process: subprocess.Popen[bytes] | None = None
    try:
        data_dir = workdir / "data"
        for sub in ("data", "rules", "targets"):
            (workdir / sub).mkdir()
        _backfill(workdir, data_dir, start + HISTORY_S, epoch)
        config_file = workdir / "prometheus.yml"
        config_file.write_text(_config(demo.target, workdir))
        log = workdir / "prometheus.log"
        for attempt in range(PORT_ATTEMPTS):
            port = _free_port()
            process = _launch(config_file, data_dir, port, log)
            url = f"http://127.0.0.1:{port}"
            try:
                _wait_for_data(url, process, log)
                break
            except RuntimeError:
                # Another process may have taken the free port in between: try another.
                _stop(process)
                process = None
                in_use = "address already in use" in log.read_text()
                if not in_use or attempt == PORT_ATTEMPTS - 1:
                    raise
        yield PrometheusRig(
            url=url,
            port=port,
            workdir=workdir,
            demo_target=demo.target,
            history_start=start,
            history_end=start + HISTORY_S + FUTURE_S,
        )
    finally:
        if process is not None:
            _stop(process)
        demo.close()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def prometheus_rig() -> Iterator[PrometheusRig]:
    """A real Prometheus with the demo series (see the module docstring)."""
    with running_prometheus() as rig:
        yield rig


@dataclass
class PrometheusScratch:
    """Per-test rules and targets; files are removed (and Prometheus reloaded) afterwards."""

    rig: PrometheusRig
    name: str
    written: list[Path] = field(default_factory=list)

    def add_rules(self, rules_yaml: str) -> Path:
        """Write a rule file (Prometheus rule-file YAML) and reload; returns its path."""
        path = self.rig.workdir / "rules" / f"{self.name}-{len(self.written)}.yml"
        path.write_text(rules_yaml)
        self.written.append(path)
        self.reload()
        return path

    def add_target(self, target: str, labels: dict[str, str] | None = None) -> Path:
        """Scrape target ``host:port`` under ``job="scratch"`` (picked up within ~1 s)."""
        path = self.rig.workdir / "targets" / f"{self.name}-{len(self.written)}.json"
        path.write_text(json.dumps([{"targets": [target], "labels": labels or {}}]))
        self.written.append(path)
        return path

    def reload(self) -> None:
        request = urllib.request.Request(f"{self.rig.url}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def cleanup(self) -> None:
        had_rules = any(path.suffix == ".yml" for path in self.written)
        for path in self.written:
            path.unlink(missing_ok=True)
        self.written.clear()
        if had_rules:
            self.reload()


@pytest.fixture
def prometheus_scratch(
    prometheus_rig: PrometheusRig, request: pytest.FixtureRequest
) -> Iterator[PrometheusScratch]:
    """Rules/targets for one test on the shared rig; import it with prometheus_rig."""
    safe = "".join(ch if ch.isalnum() else "-" for ch in request.node.name)[:80]
    scratch = PrometheusScratch(prometheus_rig, safe)
    try:
        yield scratch
    finally:
        scratch.cleanup()

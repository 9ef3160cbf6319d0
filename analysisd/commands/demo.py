"""`analysisd demo`: a first verdict in under a minute, on loopback only.

Starts a small service instrumented with prometheus-client (it serves a `good` and a
`bad` version of app `checkout`), a real Prometheus (Debian's `prometheus` binary,
scratch config and data directory, a free port) scraping it every second, then runs
`analysisd run examples/http-success-rate.yaml` twice: against the good version
(Successful, exit 0) and the bad one (Failed, exit 1). Only the processes it started
are stopped, by their pid. The demo exits 0 when both verdicts are the expected ones.

`--keep-running --env-file FILE` starts the same peers, writes their addresses to FILE
(`. ./FILE` in a shell) and serves until SIGINT or SIGTERM, for trying `analysisd run`
and `analysisd serve` by hand (the quick start does this). The service also accepts
webhook deliveries (`POST /hooks/...`) and prints each one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric

APP = "checkout"
# Requests per second by status: good serves 99.5 % non-5xx, bad 80 % (the example's
# threshold is 95 %).
VERSIONS: dict[str, dict[str, float]] = {
    "good": {"200": 19.9, "500": 0.1},
    "bad": {"200": 16.0, "500": 4.0},
}
EXAMPLE = "http-success-rate.yaml"
# Fast enough for a demo: three measurements two seconds apart.
RUN_ARGS = ("--arg", "interval=2s", "--arg", "count=3")
EXPECTED_EXIT = {"good": 0, "bad": 1}
STARTUP_TIMEOUT_S = 30.0
REPO_EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class DemoError(Exception):
    """The demo could not start its peers; printed as `analysisd demo: <message>`, exit 2."""


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="start a loopback Prometheus and demo service, show one pass and one fail",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--prometheus",
        default=shutil.which("prometheus") or "/usr/bin/prometheus",
        metavar="PATH",
        help="the Prometheus server binary (default: prometheus on PATH, Debian package "
        "`prometheus`)",
    )
    parser.add_argument(
        "--examples",
        default=str(REPO_EXAMPLES),
        metavar="DIR",
        help=f"directory holding {EXAMPLE} (default: the repository's examples/)",
    )
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="do not run the examples: keep Prometheus and the service up until SIGINT/SIGTERM",
    )
    parser.add_argument(
        "--env-file",
        metavar="FILE",
        help="write PROMETHEUS_ADDRESS, DEMO_APP and DEMO_PID to FILE (shell syntax) "
        "once Prometheus has data",
    )
    parser.set_defaults(func=main)


# ---- the demo service ----


class CheckoutCollector:
    """Request counters of both versions as a function of wall-clock time (exact rates)."""

    def __init__(self, started: float) -> None:
        self._started = started

    def collect(self) -> Iterable[Metric]:
        elapsed = time.time() - self._started
        requests = CounterMetricFamily(
            "http_requests", "Requests served.", labels=["app", "version", "status"]
        )
        for version, by_status in VERSIONS.items():
            for status, per_second in by_status.items():
                requests.add_metric([APP, version, status], per_second * elapsed)
        return [requests]


class DemoService:
    """`/metrics` for Prometheus and `POST /hooks/...` for webhooks, on 127.0.0.1 (free port)."""

    def __init__(self) -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(CheckoutCollector(time.time()))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(registry))
        self.port: int = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


def _handler(registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self._answer(404, b"not found\n")
                return
            self._answer(200, generate_latest(registry), "text/plain; version=0.0.4")

        def do_POST(self) -> None:
            if not self.path.startswith("/hooks"):
                self._answer(404, b"not found\n")
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                event = json.loads(body)
                summary = f"{event.get('type')} {event.get('subject')}"
            except ValueError:
                summary = f"{len(body)} bytes"
            signed = "signed" if self.headers.get("X-Analysisd-Signature") else "unsigned"
            print(f"demo: webhook {self.path}: {summary} ({signed})", file=sys.stderr, flush=True)
            self._answer(200, b'{"ok": true}\n', "application/json")

        def _answer(self, status: int, body: bytes, kind: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: Prometheus scrapes every second."""

    return Handler


# ---- the real Prometheus ----


@dataclass
class Prometheus:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop the one process we started (by its pid), waiting for it to exit."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return json.load(resp)


def start_prometheus(binary: str, scratch: Path, target: str) -> Prometheus:
    """Debian's Prometheus on a free loopback port, scraping `target` every second."""
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        raise DemoError(
            f"no Prometheus server at {binary}: install Debian's package "
            "(apt-get install prometheus) or pass --prometheus PATH"
        )
    config = scratch / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"- job_name: demo\n  static_configs: [{{targets: ['{target}']}}]\n"
    )
    log = scratch / "prometheus.log"
    for _attempt in range(3):  # another process may take the free port in between
        port = _free_port()
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={scratch / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches us; we stop it in order
            )
        prometheus = Prometheus(process, port, log)
        if _wait_ready(prometheus):
            return prometheus
        prometheus.stop()
    raise DemoError(f"Prometheus did not start; its log:\n{_tail(log)}")


def _wait_ready(prometheus: Prometheus) -> bool:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if prometheus.process.poll() is not None:
            return False
        with contextlib.suppress(OSError, ValueError):
            urllib.request.urlopen(f"{prometheus.url}/-/ready", timeout=2).close()
            return True
        time.sleep(0.2)
    return False


def wait_for_data(prometheus: Prometheus) -> None:
    """Readiness is not data: wait until the example's rate() has an answer for both versions."""
    query = f'sum by (version) (rate(http_requests_total{{app="{APP}"}}[1m]))'
    url = f"{prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if prometheus.process.poll() is not None:
            raise DemoError(f"Prometheus exited; its log:\n{_tail(prometheus.log)}")
        with contextlib.suppress(OSError, ValueError):
            body = _get_json(url)
            if len(body.get("data", {}).get("result", [])) == len(VERSIONS):
                return
        time.sleep(0.5)
    raise DemoError(f"Prometheus has no samples of the demo service after {STARTUP_TIMEOUT_S:.0f}s")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def peers(binary: str) -> Iterator[tuple[DemoService, Prometheus]]:
    """The demo service and a Prometheus scraping it, stopped (only they) on the way out."""
    service = DemoService()
    try:
        with tempfile.TemporaryDirectory(prefix="analysisd-demo-") as scratch:
            prometheus = start_prometheus(binary, Path(scratch), f"127.0.0.1:{service.port}")
            try:
                wait_for_data(prometheus)
                yield service, prometheus
            finally:
                prometheus.stop()
    finally:
        service.close()


# ---- the command ----


def run_command(example: Path, prometheus_url: str, version: str) -> list[str]:
    shown = os.path.relpath(example) if example.is_relative_to(Path.cwd()) else str(example)
    return [
        "analysisd",
        "run",
        shown,
        "--arg",
        f"prometheus-address={prometheus_url}",
        "--arg",
        f"app={APP}",
        "--arg",
        f"version={version}",
        *RUN_ARGS,
        "-o",
        "none",
    ]


def _shell_words(argv: list[str]) -> str:
    import shlex

    return " ".join(shlex.quote(word) for word in argv)


def run_examples(example: Path, prometheus_url: str) -> bool:
    """`analysisd run` (the real command, as a child process) on the good and the bad version."""
    as_expected = True
    for version, expected in EXPECTED_EXIT.items():
        argv = run_command(example, prometheus_url, version)
        print(f"\n$ {_shell_words(argv)}", flush=True)
        # The same program the user would type; `python -m` so no PATH entry is needed.
        code = subprocess.call([sys.executable, "-m", "analysisd.cli", *argv[1:]])
        verdict = {0: "Successful", 1: "Failed", 2: "Error", 3: "Inconclusive"}.get(code, "?")
        print(f"exit {code} ({verdict}; expected exit {expected})", flush=True)
        as_expected = as_expected and code == expected
    return as_expected


def write_env_file(path: Path, service: DemoService, prometheus: Prometheus) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(
        f"export PROMETHEUS_ADDRESS={prometheus.url}\n"
        f"export DEMO_APP={service.url}\n"
        f"export DEMO_PID={os.getpid()}\n"
    )
    tmp.replace(path)  # readers never see half a file


def serve_until_signalled() -> None:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()


def main(args: argparse.Namespace) -> int:
    example = Path(args.examples) / EXAMPLE
    if not args.keep_running and not example.is_file():
        print(f"analysisd demo: {example} not found; pass --examples DIR", file=sys.stderr)
        return 2
    env_file = Path(args.env_file) if args.env_file else None
    started = time.monotonic()
    try:
        with peers(args.prometheus) as (service, prometheus):
            print(
                f"demo: Prometheus {prometheus.url} (pid {prometheus.process.pid}) scrapes "
                f"{service.url}/metrics: app={APP}, version=good (99.5 % non-5xx) "
                f"and version=bad (80 %); ready in {time.monotonic() - started:.1f}s",
                flush=True,
            )
            if env_file is not None:
                write_env_file(env_file, service, prometheus)
            if args.keep_running:
                print(
                    f"demo: serving until SIGINT/SIGTERM (kill {os.getpid()}); webhooks "
                    f"to {service.url}/hooks/<anything>",
                    flush=True,
                )
                serve_until_signalled()
                return 0
            as_expected = run_examples(example, prometheus.url)
    except DemoError as exc:
        print(f"analysisd demo: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        if env_file is not None:
            env_file.unlink(missing_ok=True)
    took = time.monotonic() - started
    if as_expected:
        print(f"\ndemo: good canary passed (exit 0), bad canary failed (exit 1) in {took:.0f}s")
        return 0
    print(f"\ndemo: unexpected verdicts (see above) after {took:.0f}s", file=sys.stderr)
    return 1

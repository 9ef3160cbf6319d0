"""A real Graphite on 127.0.0.1 (Debian's graphite-carbon + graphite-web), and a front for faults.

Use it in a test module with::

    # ruff: noqa: F811  (the fixture is imported, then named as a parameter)
    from tests.rigs.graphite import GraphiteRig, graphite_rig  # noqa: F401

    def test_x(graphite_rig: GraphiteRig) -> None:
        graphite_rig.write({"app.checkout.errors": [(now - 20, 1.5), (now - 10, 2.5)]})
        graphite_rig.wait_for("app.checkout.errors", 2)
        url = graphite_rig.url  # graphite-web, e.g. "http://127.0.0.1:41234"

``graphite_rig`` (session scope) starts, on free loopback ports and with a scratch
config and storage directory, Debian's ``carbon-cache`` (plaintext, pickle and cache
query ports) and graphite-web's WSGI application under Debian's own Python 3
(``/usr/bin/python3``, where the ``graphite`` and ``django`` packages live) in a
threading wsgiref server. graphite-web reads carbon's cache over CARBONLINK, so a
point written through the plaintext port is rendered at once, before carbon flushes
it to whisper. Storage: 10 s resolution for a day, ``average`` rollup, xFilesFactor 0.
Both processes are stopped by their process ids when the session ends.

Tests skip when the Debian packages are missing, and fail under CI (tests.rigs.peers).

``GraphiteFront`` is an aiohttp server to put in front of the real one: it passes
every request through unchanged unless a fault is scripted (``Fault(status, body,
headers, delay_s)``), and with ``basic_auth=(user, password)`` it answers 401 to a
request without those credentials, as a proxy guarding a Graphite would.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import aiohttp
import pytest
from aiohttp import web

from tests.rigs.peers import peer_missing

CARBON_CACHE = os.environ.get("ANALYSISD_CARBON_CACHE_BIN", "/usr/bin/carbon-cache")
DEBIAN_PYTHON = os.environ.get("ANALYSISD_GRAPHITE_PYTHON", "/usr/bin/python3")
START_TIMEOUT_S = 60.0

_WEB_MAIN = """\
import os, sys
sys.path.insert(0, sys.argv[2])
os.environ["DJANGO_SETTINGS_MODULE"] = "graphite.settings"
os.environ["GRAPHITE_SETTINGS_MODULE"] = "analysisd_graphite_settings"
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from graphite.wsgi import application
class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass
make_server("127.0.0.1", int(sys.argv[1]), application, Server, Quiet).serve_forever()
"""


_PROBE = (
    "import importlib.util as u, sys; "
    "sys.exit(0 if u.find_spec('graphite.wsgi') and u.find_spec('django') else 3)"
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def debian_graphite_missing() -> str | None:
    """Why the real Graphite cannot run here, or None."""
    if not Path(CARBON_CACHE).exists():
        return f"{CARBON_CACHE} not found (Debian package graphite-carbon)"
    if not Path(DEBIAN_PYTHON).exists():
        return f"{DEBIAN_PYTHON} not found"
    probe = subprocess.run(
        [DEBIAN_PYTHON, "-c", _PROBE],
        capture_output=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    if probe.returncode != 0:
        return "graphite-web is not installed for Debian's python3 (Debian package graphite-web)"
    return None


@dataclass
class GraphiteRig:
    """A running carbon-cache + graphite-web; ``url`` is graphite-web's, no trailing slash."""

    url: str
    carbon_port: int
    workdir: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def write(self, series: Mapping[str, Sequence[tuple[float, float]]]) -> None:
        """Send ``metric value timestamp`` lines through carbon's plaintext port."""
        lines = [
            f"{name} {value!r} {int(stamp)}\n"
            for name, points in series.items()
            for stamp, value in points
        ]
        with socket.create_connection(("127.0.0.1", self.carbon_port), timeout=5) as sock:
            sock.sendall("".join(lines).encode())

    def render(self, query: str) -> list[dict[str, object]]:
        with urllib.request.urlopen(f"{self.url}/render?{query}&format=json", timeout=10) as r:
            body: list[dict[str, object]] = json.load(r)
            return body

    def wait_for(self, target: str, count: int, window: str = "-10min") -> None:
        """Poll until ``target`` renders at least ``count`` non-null points."""
        deadline = time.monotonic() + 30
        seen = 0
        while time.monotonic() < deadline:
            answer = self.render(f"target={target}&from={window}")
            points = answer[0]["datapoints"] if answer else []
            assert isinstance(points, list)
            seen = sum(1 for value, _ in points if value is not None)
            if seen >= count:
                return
            time.sleep(0.1)
        raise AssertionError(f"graphite never rendered {count} points of {target} (saw {seen})")


def _write_config(workdir: Path, ports: Mapping[str, int]) -> Path:
    storage = workdir / "storage"
    for sub in ("whisper", "lists", "log/web", "log/carbon", "pid"):
        (storage / sub).mkdir(parents=True, exist_ok=True)
    conf = workdir / "conf"
    conf.mkdir(exist_ok=True)
    (conf / "carbon.conf").write_text(
        f"""[cache]
STORAGE_DIR = {storage}/
LOCAL_DATA_DIR = {storage}/whisper/
WHITELISTS_DIR = {storage}/lists/
CONF_DIR = {conf}/
LOG_DIR = {storage}/log/carbon/
PID_DIR = {storage}/pid/
DATABASE = whisper
ENABLE_LOGROTATION = False
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = 10000
MAX_CREATES_PER_MINUTE = inf
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = {ports["line"]}
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = {ports["pickle"]}
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = {ports["query"]}
LOG_LISTENER_CONN_SUCCESS = False
"""
    )
    (conf / "storage-schemas.conf").write_text("[default]\npattern = .*\nretentions = 10s:1d\n")
    (conf / "storage-aggregation.conf").write_text(
        "[default]\npattern = .*\nxFilesFactor = 0\naggregationMethod = average\n"
    )
    (workdir / "analysisd_graphite_settings.py").write_text(
        f"""SECRET_KEY = "analysisd-tests-only"
STORAGE_DIR = {str(storage)!r}
WHISPER_DIR = {str(storage / "whisper")!r}
LOG_DIR = {str(storage / "log" / "web")!r}
INDEX_FILE = {str(storage / "index")!r}
CONF_DIR = {str(conf)!r}
CARBONLINK_HOSTS = ["127.0.0.1:{ports["query"]}"]
DATABASES = {{"default": {{"NAME": {str(storage / "graphite.db")!r},
                          "ENGINE": "django.db.backends.sqlite3"}}}}
LOG_ROTATION = False
DEFAULT_XFILES_FACTOR = 0
FUNCTION_PLUGINS = []
"""
    )
    (workdir / "serve_graphite_web.py").write_text(_WEB_MAIN)
    return conf / "carbon.conf"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.returncode}): {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not listening after {START_TIMEOUT_S}s: {log.read_text()[-2000:]}")


def _wait_rendering(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"graphite-web exited: {log.read_text()[-2000:]}")
        probe = f"{url}/render?target=none&format=json"
        with (
            contextlib.suppress(OSError, ValueError),
            urllib.request.urlopen(probe, timeout=5) as r,
        ):
            if r.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"graphite-web did not answer after {START_TIMEOUT_S}s: {log.read_text()}")


@contextlib.contextmanager
def running_graphite() -> Iterator[GraphiteRig]:
    """Start carbon-cache and graphite-web in a scratch directory; stop both by pid."""
    workdir = Path(tempfile.mkdtemp(prefix="analysisd-graphite-"))
    ports = {"line": _free_port(), "pickle": _free_port(), "query": _free_port()}
    web_port = _free_port()
    config = _write_config(workdir, ports)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "LANG": "C.UTF-8"}
    rig = GraphiteRig(f"http://127.0.0.1:{web_port}", ports["line"], workdir)
    carbon_log, web_log = workdir / "carbon.log", workdir / "web.log"
    try:
        with carbon_log.open("wb") as out:
            carbon = subprocess.Popen(
                [
                    DEBIAN_PYTHON,
                    CARBON_CACHE,
                    f"--config={config}",
                    f"--pidfile={workdir / 'carbon.pid'}",
                    f"--logdir={workdir / 'storage' / 'log' / 'carbon'}",
                    "--nodaemon",
                    "start",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=workdir,
            )
        rig.processes.append(carbon)
        _wait_listening(ports["line"], carbon, carbon_log, "carbon-cache")
        _wait_listening(ports["query"], carbon, carbon_log, "carbon-cache")
        with web_log.open("wb") as out:
            graphite_web = subprocess.Popen(
                [
                    DEBIAN_PYTHON,
                    str(workdir / "serve_graphite_web.py"),
                    str(web_port),
                    str(workdir),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=workdir,
            )
        rig.processes.append(graphite_web)
        _wait_rendering(rig.url, graphite_web, web_log)
        yield rig
    finally:
        for process in reversed(rig.processes):
            _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def graphite_rig() -> Iterator[GraphiteRig]:
    reason = debian_graphite_missing()
    if reason is not None:
        peer_missing(reason)
    with running_graphite() as rig:
        yield rig


# ---------------------------------------------------------------- the front


@dataclass
class Fault:
    """One scripted answer the front gives instead of passing the request through."""

    status: int = 200
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Seen:
    path: str
    query: str
    authorization: str


class GraphiteFront:
    """An aiohttp server passing requests to graphite-web, or answering a scripted Fault."""

    def __init__(self, upstream: str, *, basic_auth: tuple[str, str] | None = None) -> None:
        self.upstream = upstream
        self.script: list[Fault] = []
        self.requests: list[Seen] = []
        self._expected = (
            "Basic " + base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode()
            if basic_auth
            else None
        )
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self.url = ""

    async def __aenter__(self) -> GraphiteFront:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._client = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        authorization = request.headers.get("Authorization", "")
        self.requests.append(Seen(request.path, request.query_string, authorization))
        if self._expected is not None and authorization != self._expected:
            return web.Response(
                status=401,
                text="401 Unauthorized: wrong or missing credentials\n",
                headers={"WWW-Authenticate": 'Basic realm="graphite"'},
            )
        if self.script:
            fault = self.script.pop(0)
            if fault.delay_s:
                await asyncio.sleep(fault.delay_s)
            return web.Response(status=fault.status, text=fault.body, headers=dict(fault.headers))
        assert self._client is not None
        target = f"{self.upstream}{request.path_qs}"
        async with self._client.get(target) as upstream:
            body = await upstream.read()
            return web.Response(
                status=upstream.status,
                body=body,
                content_type=upstream.content_type,
            )

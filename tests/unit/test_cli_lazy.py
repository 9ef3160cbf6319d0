"""The CLI imports only what the command and the template need (issue 21).

Each command runs in a fresh interpreter through a small wrapper that calls
analysisd.cli.main and then prints the loaded module names: `--version`, `lint` of a
Web template and `run` of a Web template load neither the judge's numpy/scipy nor
CloudWatch's aiobotocore nor Datadog's client (and lint not even aiohttp).
The time it saves is measured in bench/bench_cli.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from analysisd import cli

REPO = Path(__file__).resolve().parents[2]
WEB_TEMPLATE = REPO / "examples" / "argo-web-gate.yaml"
HEAVY = ("numpy", "scipy", "aiobotocore", "botocore", "datadog_api_client")

WRAPPER = """
import json, sys
from analysisd.cli import main
code = 0
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
sys.stdout.flush()
sys.stderr.write("\\nMODULES " + json.dumps(sorted(sys.modules)) + "\\n")
sys.exit(code)
"""


def loaded(*argv: str) -> tuple[int, set[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, *argv],
        capture_output=True,
        text=True,
        cwd=str(REPO),
        timeout=120,
        check=False,
    )
    marker = done.stderr.rfind("\nMODULES ")
    assert marker >= 0, done.stderr
    modules = set(json.loads(done.stderr[marker + len("\nMODULES ") :]))
    return done.returncode, modules, done.stdout + done.stderr[:marker]


def tops(modules: set[str]) -> set[str]:
    return {name.partition(".")[0] for name in modules}


def test_version_loads_no_command() -> None:
    code, modules, output = loaded("--version")
    assert code == 0, output
    assert not {m for m in modules if m.startswith(("analysisd.", "providers"))} - {"analysisd.cli"}
    assert not tops(modules) & {*HEAVY, "aiohttp", "pydantic", "yaml"}


def test_lint_of_a_web_template_loads_neither_judge_nor_network_stack() -> None:
    code, modules, output = loaded("lint", str(WEB_TEMPLATE))
    assert code == 0, output
    assert "analysisd.commands.lint" in modules and "providers.web" in modules
    assert not tops(modules) & {*HEAVY, "aiohttp"}
    assert "analysisd.commands.judge" not in modules and "analysisd.judge" not in modules
    # Checking blocks needs the kinds table, not the registry's runtime.
    assert "providers.kinds" in modules and "providers.registry" not in modules
    assert not tops(modules) & {"prometheus_client", "asyncio"}
    # The conditions were compiled (expr's own parser) without lark or its `regex`.
    assert "analysisd.expr.compiler" in modules
    assert not tops(modules) & {"lark", "regex"}
    assert "difflib" not in modules  # only an unknown field's "did you mean" needs it


def test_lint_of_a_prometheus_template_loads_no_http_stack_or_signer(tmp_path: Path) -> None:
    # A SigV4 block (Amazon Managed Prometheus) as well: the signer is built with the
    # provider, so checking the block loads neither botocore nor the HTTP stack.
    template = tmp_path / "amp.yaml"
    template.write_text(
        "apiVersion: argoproj.io/v1alpha1\n"
        "kind: AnalysisTemplate\n"
        "metadata: {name: amp}\n"
        "spec:\n"
        "  metrics:\n"
        "  - name: rate\n"
        "    successCondition: result[0] >= 0.95\n"
        "    provider:\n"
        "      prometheus:\n"
        "        address: https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1\n"
        "        query: sum(rate(http_requests_total[1m]))\n"
        "        authentication: {sigv4: {region: eu-west-1}}\n"
    )
    for path in (REPO / "examples" / "http-success-rate.yaml", template):
        code, modules, output = loaded("lint", str(path))
        assert code == 0, output
        assert "providers.prometheus" in modules and "analysisd.expr.compiler" in modules
        assert not tops(modules) & {*HEAVY, "aiohttp", "asyncio", "lark", "regex"}
        assert "providers.sigv4" not in modules and "providers.http" not in modules


PLUGINS_WRAPPER = """
import os, sys
from analysisd.cli import main
code = main(sys.argv[1:])
from pydantic.plugin import _loader
print("scanned during lint:", _loader._plugins is not None)
print("switch after lint:", os.environ.get("PYDANTIC_DISABLE_PLUGINS"))
import pydantic
class Later(pydantic.BaseModel):
    x: int = 0
print("scanned for a later model:", _loader._plugins is not None)
sys.exit(code)
"""


@pytest.mark.parametrize("user_setting", [None, "someplugin"])
def test_lint_skips_pydantic_plugin_discovery_only_while_importing(
    user_setting: str | None,
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    if user_setting is not None:
        env["PYDANTIC_DISABLE_PLUGINS"] = user_setting
    done = subprocess.run(
        [sys.executable, "-c", PLUGINS_WRAPPER, "lint", str(WEB_TEMPLATE)],
        capture_output=True,
        text=True,
        cwd=str(REPO),
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # _plugins is pydantic's cache of discovered plugins: None until it scans.
    if user_setting is None:
        assert "scanned during lint: False" in done.stdout
    else:  # the user's own setting is theirs: discovery runs (skipping their names)
        assert "scanned during lint: True" in done.stdout
    assert f"switch after lint: {user_setting}" in done.stdout
    assert "scanned for a later model: True" in done.stdout


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"value": 1}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/value"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_run_of_a_web_template_loads_no_judge_and_no_vendor_clients(
    endpoint: str, tmp_path: Path
) -> None:
    template = tmp_path / "web.yaml"
    template.write_text(
        "apiVersion: argoproj.io/v1alpha1\n"
        "kind: AnalysisTemplate\n"
        "metadata: {name: web-once}\n"
        "spec:\n"
        "  metrics:\n"
        "  - name: value\n"
        "    successCondition: result == 1\n"
        f"    provider: {{web: {{url: '{endpoint}', jsonPath: '{{$.value}}'}}}}\n"
    )
    code, modules, output = loaded("run", str(template), "-o", "json")
    assert code == 0, output
    assert '"phase": "Successful"' in output
    assert "aiohttp" in tops(modules)  # it measured over HTTP
    assert not tops(modules) & {"aiobotocore", "botocore", "datadog_api_client"}
    assert "analysisd.commands.judge" not in modules


def test_run_of_a_web_template_loads_no_numpy_or_scipy(endpoint: str, tmp_path: Path) -> None:
    template = tmp_path / "web.yaml"
    template.write_text(
        "apiVersion: argoproj.io/v1alpha1\n"
        "kind: AnalysisTemplate\n"
        "metadata: {name: web-once}\n"
        "spec:\n"
        "  metrics:\n"
        "  - name: value\n"
        "    successCondition: result == 1\n"
        f"    provider: {{web: {{url: '{endpoint}', jsonPath: '{{$.value}}'}}}}\n"
    )
    code, modules, output = loaded("run", str(template), "-o", "json")
    assert code == 0, output
    assert not tops(modules) & {"numpy", "scipy"}


def _help_lines(parser: argparse.ArgumentParser) -> dict[str, str | None]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {action.dest: action.help for action in sub._choices_actions}


def test_stand_in_commands_say_what_the_commands_themselves_say() -> None:
    full = _help_lines(cli.build_parser())
    for command in full:
        lazy = _help_lines(cli.build_parser(command, full=False))
        assert lazy == full, command
    assert cli.command_of(["--version"]) is None
    assert cli.command_of(["lint", "a.yaml"]) == "lint"
    assert cli.command_of(["--", "run"]) is None

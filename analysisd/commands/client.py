"""`analysisd list | get NAME [--watch] | terminate NAME`: a client of a running daemon.

`--server URL` / ANALYSISD_SERVER (default http://127.0.0.1:8080), `--token` /
ANALYSISD_TOKEN, `-n NS` (default `default`). `get --watch` follows the run's
event stream, redrawing `analysisd run`'s table on a terminal (one line per event
otherwise), and exits like `analysisd run`: 0 Successful, 1 Failed, 2 Error,
3 Inconclusive; 130 when interrupted. A daemon that cannot be reached, refuses
the token or has no such run: a message on stderr and exit 2 (never a pass).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp

from analysisd.commands.run import EXIT_CODES, render_table
from analysisd.spec import AnalysisRun

DEFAULT_SERVER = "http://127.0.0.1:8080"
FAILED_TO_ASK = 2
RECONNECTS = 30  # a watch survives a daemon restart of up to ~30 s


class ClientError(Exception):
    """The daemon could not answer what was asked; the message says why."""


def add_parser(subparsers: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--server",
        default=os.environ.get("ANALYSISD_SERVER", DEFAULT_SERVER),
        help="the daemon's address (env ANALYSISD_SERVER; default %(default)s)",
    )
    common.add_argument(
        "--token",
        default=os.environ.get("ANALYSISD_TOKEN"),
        help="API token (env ANALYSISD_TOKEN)",
    )
    common.add_argument("-n", "--namespace", default="default", help="(default: %(default)s)")
    listing = subparsers.add_parser(
        "list", parents=[common], help="list the AnalysisRuns of a namespace on a daemon"
    )
    listing.add_argument("-l", "--selector", default="", help="label selector, e.g. app=web")
    listing.add_argument("--phase", default="", help="only runs in this phase")
    listing.add_argument("-o", "--output", choices=("table", "json"), default="table")
    listing.set_defaults(func=main_list)
    get = subparsers.add_parser(
        "get", parents=[common], help="show one AnalysisRun on a daemon (--watch: follow it)"
    )
    get.add_argument("name")
    get.add_argument(
        "-w", "--watch", action="store_true", help="follow until it completes; exit by its phase"
    )
    get.add_argument("-o", "--output", choices=("table", "json"), default="table")
    get.set_defaults(func=main_get)
    term = subparsers.add_parser(
        "terminate", parents=[common], help="terminate an AnalysisRun on a daemon"
    )
    term.add_argument("name")
    term.set_defaults(func=main_terminate)


def _runs_url(args: argparse.Namespace) -> str:
    return (
        f"{args.server.rstrip('/')}/api/v1/namespaces/{quote(args.namespace, safe='')}/analysisruns"
    )


def _run_url(args: argparse.Namespace) -> str:
    return f"{_runs_url(args)}/{quote(args.name, safe='')}"


def _session(args: argparse.Namespace) -> aiohttp.ClientSession:
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    return aiohttp.ClientSession(headers=headers)


async def _json(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> dict[str, Any]:
    try:
        async with asyncio.timeout(30), session.request(method, url, **kw) as resp:
            text = await resp.text()
            if resp.status >= 400:
                try:
                    message = json.loads(text).get("message") or text
                except ValueError:
                    message = text
                raise ClientError(f"{resp.status} from {url}: {message.strip()[:500]}")
            body: dict[str, Any] = json.loads(text)
            return body
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ClientError(f"cannot reach {url}: {exc or type(exc).__name__}") from None


def _run(args: argparse.Namespace, body: Any) -> int:
    try:
        result: int = asyncio.run(body)
    except ClientError as exc:
        print(f"analysisd {args.command}: {exc}", file=sys.stderr)
        return FAILED_TO_ASK
    except KeyboardInterrupt:
        return 130
    return result


def _age(created: str | None, now: datetime) -> str:
    if not created:
        return "-"
    then = datetime.fromisoformat(created.replace("Z", "+00:00"))
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def list_table(items: list[dict[str, Any]], now: datetime) -> list[str]:
    """NAME PHASE AGE PROGRESS, kubectl-style."""
    rows = [["NAME", "PHASE", "AGE", "PROGRESS"]]
    for item in items:
        status = item.get("status") or {}
        counts = {r.get("name"): r.get("count", 0) for r in status.get("metricResults") or []}
        progress = " ".join(
            f"{m.get('name')}={counts.get(m.get('name'), 0)}"
            for m in (item.get("spec") or {}).get("metrics") or []
        )
        meta = item.get("metadata") or {}
        rows.append(
            [
                str(meta.get("name", "")),
                str(status.get("phase") or "Pending"),
                _age(meta.get("creationTimestamp"), now),
                progress,
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return [
        " ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)) + " " + r[3] for r in rows
    ]


def main_list(args: argparse.Namespace) -> int:
    async def body() -> int:
        params = {k: v for k, v in (("labelSelector", args.selector), ("phase", args.phase)) if v}
        async with _session(args) as session:
            data = await _json(session, "GET", _runs_url(args), params=params)
        items = data.get("items") or []
        if args.output == "json":
            print(json.dumps(data, indent=2))
        else:
            print("\n".join(line.rstrip() for line in list_table(items, datetime.now(UTC))))
        return 0

    return _run(args, body())


def _exit_code(manifest: dict[str, Any]) -> int:
    return EXIT_CODES.get(((manifest.get("status") or {}).get("phase")) or "", 2)


def _show(manifest: dict[str, Any], output: str) -> None:
    if output == "json":
        print(json.dumps(manifest, indent=2))
        return
    run = AnalysisRun.model_validate(manifest)
    print("\n".join(render_table(run, datetime.now(UTC))))


async def _events(session: aiohttp.ClientSession, url: str) -> AsyncIterator[tuple[str, Any]]:
    """(event, data) of a server-sent-event stream, until it ends."""
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=None, sock_read=60)) as resp:
        if resp.status >= 400:
            raise ClientError(f"{resp.status} from {url}: {(await resp.text())[:500]}")
        event, data = "message", ""
        async for raw in resp.content:
            line = raw.decode("utf-8").rstrip("\r\n")
            if not line:
                if data:
                    yield event, json.loads(data)
                event, data = "message", ""
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()


class Watcher:
    """Shows a run as its events arrive: the live table on a terminal, lines otherwise."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self.drawn = 0

    def draw(self, manifest: dict[str, Any]) -> None:
        run = AnalysisRun.model_validate(manifest)
        lines = render_table(run, datetime.now(UTC))
        prefix = f"\x1b[{self.drawn}F\x1b[J" if self.drawn else ""
        sys.stdout.write(prefix + "\n".join(lines) + "\n")
        sys.stdout.flush()
        self.drawn = len(lines)

    def event(self, event: str, data: Any) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        if event == "measurement":
            text = f"{stamp} {data.get('metric')}: {data.get('phase')}"
            if data.get("value"):
                text += f" value={' '.join(str(data['value']).split())}"
            if data.get("message"):
                text += f" ({' '.join(str(data['message']).split())})"
            print(text, flush=True)
        elif event == "phase":
            print(f"{stamp} run {data.get('previousPhase')} -> {data.get('phase')}", flush=True)


async def watch(args: argparse.Namespace, session: aiohttp.ClientSession) -> int:
    view = Watcher(sys.stdout.isatty() and args.output == "table")
    failures, connected = 0, False
    while True:
        try:
            async for event, data in _events(session, _run_url(args) + "/events"):
                failures, connected = 0, True
                if event == "completed" or view.tty:
                    manifest = await _json(session, "GET", _run_url(args))
                    if view.tty:
                        view.draw(manifest)
                    if event == "completed":
                        if not view.tty:
                            _show(manifest, args.output)
                        return _exit_code(manifest)
                elif event == "status":
                    if ((data.get("status") or {}).get("phase")) in EXIT_CODES:
                        _show(data, args.output)
                        return _exit_code(data)
                    print(f"watching {args.namespace}/{args.name}", flush=True)
                else:
                    view.event(event, data)
        except (aiohttp.ClientError, TimeoutError) as exc:
            if not connected:
                raise ClientError(f"cannot reach {args.server}: {exc}") from None
            failures += 1
            if failures > RECONNECTS:
                raise ClientError(f"lost the event stream of {args.name}: {exc}") from None
            await asyncio.sleep(1.0)
            continue
        # The stream ended without `completed` (the daemon stopped): reconnect.
        failures += 1
        if failures > RECONNECTS:
            raise ClientError(f"the event stream of {args.name} ended before it completed")
        await asyncio.sleep(1.0)


def main_get(args: argparse.Namespace) -> int:
    async def body() -> int:
        async with _session(args) as session:
            if args.watch:
                return await watch(args, session)
            manifest = await _json(session, "GET", _run_url(args))
        _show(manifest, args.output)
        return 0

    return _run(args, body())


def main_terminate(args: argparse.Namespace) -> int:
    async def body() -> int:
        async with _session(args) as session:
            manifest = await _json(session, "POST", _run_url(args) + "/terminate")
        phase = (manifest.get("status") or {}).get("phase") or "Pending"
        print(f"analysisrun {args.namespace}/{args.name} terminate requested (phase {phase})")
        return 0

    return _run(args, body())

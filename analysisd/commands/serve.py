"""`analysisd serve`: run the daemon until SIGTERM / SIGINT, then shut down gracefully."""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys
from typing import Any

import structlog

from analysisd.config import ConfigError, Settings, load_settings
from analysisd.store import StoreError

log = structlog.get_logger(__name__)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the analysis daemon (REST API, scheduler, webhooks)",
        description="Every flag is also an environment variable: ANALYSISD_HOST, "
        "ANALYSISD_PORT, ANALYSISD_STORE, ANALYSISD_SECRETS_DIR, ANALYSISD_CONFIG, "
        "ANALYSISD_ALLOW_ANONYMOUS.",
    )
    parser.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="listen port (default 8080)")
    parser.add_argument(
        "--store", default=None, help="sqlite:///PATH (default sqlite:///analysisd.db)"
    )
    parser.add_argument("--secrets-dir", default=None, help="DIR/<secret>/<key> files")
    parser.add_argument("--config", default=None, help="YAML settings file")
    parser.add_argument(
        "--allow-anonymous",
        action="store_true",
        default=None,
        help="serve an API without tokens on a non-loopback address (anyone may use it)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        type=str.upper,
        help="least severe log lines written (default: %(default)s)",
    )
    parser.set_defaults(func=main)


async def serve(settings: Settings) -> None:
    from analysisd.daemon import Daemon

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    daemon = Daemon(settings)
    await daemon.start()
    tune_gc()
    try:
        await stop.wait()
        log.info("shutting down", grace=settings.shutdown_grace)
    finally:
        await daemon.aclose()


# The collector's thresholds once the daemon runs (tune_gc; the benches use the same).
# A young collection walks what is still alive of the objects made since the last one;
# a first threshold of 500,000 instead of 50,000 left the saturated wave of
# bench/bench_scheduler.py without a collection, but only by putting it off: the
# steady state then paid one of 260 ms (longest 39 ms with these), p99 lag 452 ms
# against 35 ms. A smaller one (10,000) made middle-generation collections the tail.
GC_THRESHOLDS = (50_000, 50, 1000)


def tune_gc() -> None:
    """Collect less often: thousands of live runs are ~10^6 tracked objects.

    With CPython's default thresholds, full collections over that heap cost as much as
    the measurements themselves (bench/bench_scheduler.py: 48 % vs 68 % of a bare
    aiohttp loop per CPU-second). Objects alive after start-up are frozen out of
    collection altogether.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def main(args: argparse.Namespace) -> int:
    from analysisd.telemetry import configure_logging

    configure_logging(args.log_level)
    flags = {
        "host": args.host,
        "port": args.port,
        "store": args.store,
        "secrets_dir": args.secrets_dir,
        "config": args.config,
        "allow_anonymous": args.allow_anonymous,
    }
    try:
        settings = load_settings(flags)
        problem = sqlite_path_problem(settings.store)
        if problem:
            print(f"analysisd serve: store {settings.store}: {problem}", file=sys.stderr)
            return 2
        asyncio.run(serve(settings))
    except (ConfigError, StoreError) as exc:
        print(f"analysisd serve: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the port is taken, the store path is unwritable
        print(f"analysisd serve: {exc}", file=sys.stderr)
        return 1
    return 0


def sqlite_path_problem(url: str) -> str | None:
    """Why a sqlite:/// store path cannot be used, checked before anything starts.

    A directory is not a database file, and a missing directory is a typo more often
    than a wish: it is not created (the daemon often runs as root).
    """
    from pathlib import Path

    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///") :]
    if path in ("", ":memory:") or path.startswith("file:"):
        return None
    target = Path(path)
    if target.is_dir():
        return f"{path} is a directory; name a file in it, e.g. sqlite:///{target / 'analysisd.db'}"
    parent = target.parent
    if not parent.is_dir():
        return f"directory {parent} does not exist; create it first (it is not created for you)"
    return None

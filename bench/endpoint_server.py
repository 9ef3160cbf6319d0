"""A tiny JSON endpoint for benchmarks, run as its own process.

    python bench/endpoint_server.py [--port 0] [--workers 2] [--delay-ms 0]

Prints `PORT <n>` on stdout once it listens on 127.0.0.1, then serves
`GET /metric` -> {"value": 1, "ok": true} until killed. Extra workers are child
processes sharing the port (SO_REUSEPORT) so the server is not the bottleneck.
`--delay-ms` makes every answer wait that long (a slow provider: the measurement
workers, not the CPU, are then what runs out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from aiohttp import web

BODY = json.dumps({"value": 1, "ok": True}).encode()


async def metric(request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="application/json")


def slow_metric(delay: float) -> Any:
    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(delay)
        return web.Response(body=BODY, content_type="application/json")

    return handler


async def serve(port: int, workers: int, delay_ms: float = 0.0) -> None:
    app = web.Application()
    app.router.add_get("/metric", slow_metric(delay_ms / 1000) if delay_ms else metric)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096, reuse_port=True)
    await site.start()
    server = site._server
    assert server is not None
    bound = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            *("--port", str(bound), "--delay-ms", str(delay_ms)),
            stdout=asyncio.subprocess.DEVNULL,
        )
        for _ in range(workers - 1)
    ]
    sys.stdout.write(f"PORT {bound}\n")
    sys.stdout.flush()
    try:
        await asyncio.Event().wait()
    finally:
        for child in children:
            child.terminate()
            await child.wait()
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.workers, args.delay_ms))


if __name__ == "__main__":
    main()

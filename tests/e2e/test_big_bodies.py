"""A 100 MB metric response and a 100 MB webhook answer against a real `analysisd serve`.

The bytes come from a loopback server that generates them as it writes (it never
holds them). The daemon stops reading at its caps, so its memory stays flat (its
RSS, read from /proc/<pid>/status, grows by less than 50 MB), the stored value is
at most the 4 KiB cap, and a quiet run and the API do not notice: the quiet run's
measurement spacing and the API's latency while the big bodies flow are compared,
as ratios, with the same quantities measured in the same test without them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from analysisd.outbox import CALLBACK_URL
from tests.e2e.process import COMPLETED, start_daemon

HUNDRED_MB = 100 * 1024 * 1024
CHUNK = b"x" * 65536
STORED_CAP = 4096
INTERVAL_S = 0.2


class Generator:
    """Serves generated bodies; counts what it managed to write before the client hung up."""

    def __init__(self) -> None:
        self.url = ""
        self.written: dict[str, int] = {}
        self.calls: dict[str, int] = {}

    async def stream(self, request: web.Request, total: int) -> web.StreamResponse:
        name = request.path
        self.calls[name] = self.calls.get(name, 0) + 1
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        sent = 0
        try:
            while sent < total:
                await response.write(CHUNK)
                sent += len(CHUNK)
        except (ConnectionError, RuntimeError):
            pass  # the daemon stopped reading: what the cap is for
        self.written[name] = max(self.written.get(name, 0), sent)
        return response

    async def huge(self, request: web.Request) -> web.StreamResponse:
        return await self.stream(request, HUNDRED_MB)

    async def hook(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        return await self.stream(request, HUNDRED_MB)

    async def mid(self, request: web.Request) -> web.StreamResponse:
        return await self.stream(request, 1024 * 1024)  # under the response cap

    async def quiet(self, request: web.Request) -> web.Response:
        return web.json_response({"v": 1.0})


@asynccontextmanager
async def generator() -> AsyncIterator[Generator]:
    gen = Generator()
    app = web.Application()
    app.router.add_get("/huge", gen.huge)
    app.router.add_get("/mid", gen.mid)
    app.router.add_get("/quiet", gen.quiet)
    app.router.add_post("/hook", gen.hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    gen.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield gen
    finally:
        await runner.cleanup()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def run(name: str, url: str, count: int, **annotations: str) -> dict[str, Any]:
    metric: dict[str, Any] = {
        "name": "m",
        "count": count,
        "interval": f"{int(INTERVAL_S * 1000)}ms",
        "failureLimit": count,
        "consecutiveErrorLimit": count,
        "provider": {"web": {"url": url, "timeoutSeconds": 30}},
    }
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"metrics": [metric]},
    }


async def finished(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with asyncio.timeout(120):
        while True:
            async with session.get(url) as resp:
                body: dict[str, Any] = await resp.json()
            if (body.get("status") or {}).get("phase") in COMPLETED:
                return body
            await asyncio.sleep(0.1)


async def spacing(session: aiohttp.ClientSession, url: str) -> list[float]:
    """Seconds between consecutive measurement starts of a finished run."""
    async with session.get(url + "/measurements") as resp:
        items = (await resp.json())["items"]
    starts = sorted(datetime.fromisoformat(i["startedAt"]).timestamp() for i in items)
    return [b - a for a, b in itertools.pairwise(starts)]


async def api_latencies(
    session: aiohttp.ClientSession, url: str, until: asyncio.Event
) -> list[float]:
    out: list[float] = []
    while not until.is_set():
        started = time.perf_counter()
        async with session.get(url) as resp:
            await resp.read()
        out.append(time.perf_counter() - started)
        await asyncio.sleep(0.02)
    return out


async def quiet_phase(
    session: aiohttp.ClientSession, base: str, name: str, quiet_url: str, count: int
) -> tuple[list[float], list[float]]:
    runs = f"{base}/api/v1/namespaces/team/analysisruns"
    async with session.post(runs, json=run(name, quiet_url, count)) as resp:
        assert resp.status == 201, await resp.text()
    done = asyncio.Event()
    probe = asyncio.create_task(api_latencies(session, runs, done))
    await finished(session, f"{runs}/{name}")
    done.set()
    return await spacing(session, f"{runs}/{name}"), await probe


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


async def test_hundred_megabyte_bodies_are_cut_off_and_nobody_else_notices(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    async with generator() as gen, aiohttp.ClientSession() as s:
        daemon = await start_daemon(
            f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "secrets", tmp_path / "daemon.log"
        )
        pid = daemon.process.pid
        runs = f"{daemon.base}/api/v1/namespaces/team/analysisruns"
        try:
            # Warm up (imports, pools, the first measurement), then the baseline.
            await quiet_phase(s, daemon.base, "warm", f"{gen.url}/quiet", 3)
            quiet_gaps, quiet_api = await quiet_phase(
                s, daemon.base, "quiet", f"{gen.url}/quiet", 20
            )
            rss_before = rss_bytes(pid)
            peak = rss_before
            sampling = True

            async def sample() -> None:
                nonlocal peak
                while sampling:
                    peak = max(peak, rss_bytes(pid))
                    await asyncio.sleep(0.01)

            sampler = asyncio.create_task(sample())
            # The noisy neighbours: 100 MB answers measured every interval, a 1 MiB text
            # value (under the response cap, over the stored cap), a 100 MB webhook answer
            # after each event.
            hooked = {CALLBACK_URL: f"{gen.url}/hook"}
            # (An Error measurement is retried after 10 s, as in Argo: two span the phase.)
            for name, path, count in (("huge", "/huge", 2), ("mid", "/mid", 3)):
                body = run(name, gen.url + path, count, **hooked)
                async with s.post(runs, json=body) as resp:
                    assert resp.status == 201, await resp.text()
            busy_gaps, busy_api = await quiet_phase(s, daemon.base, "busy", f"{gen.url}/quiet", 60)
            huge = await finished(s, f"{runs}/huge")
            mid = await finished(s, f"{runs}/mid")
            async with asyncio.timeout(60):
                # Every measurement and both completions.
                while gen.calls.get("/hook", 0) < 2 + 3 + 2:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            async with s.get(f"{runs}/huge/deliveries") as resp:
                deliveries = (await resp.json())["items"]
            sampling = False
            await sampler
        finally:
            assert await daemon.terminate() == 0

    growth = peak - rss_before
    assert growth < 50 * 1024 * 1024, f"RSS grew {growth / 2**20:.1f} MiB"
    # The daemon read 10 MiB of each 100 MB answer and hung up (socket buffers aside).
    assert gen.written["/huge"] < 30 * 1024 * 1024
    assert gen.written["/hook"] < 30 * 1024 * 1024
    measurements = huge["status"]["metricResults"][0]["measurements"]
    assert all(m["phase"] == "Error" for m in measurements)
    assert all("10485760-byte cap (maxResponseBytes)" in m["message"] for m in measurements)
    value = mid["status"]["metricResults"][0]["measurements"][-1]["value"]
    assert len(value.encode()) <= STORED_CAP
    assert value.endswith(f"[truncated: {1024 * 1024} bytes in full]")
    assert all(len(json.dumps(m).encode()) < 2 * STORED_CAP for m in measurements)
    # The 100 MB webhook answers acknowledged (2xx), read no further than 64 KiB.
    assert deliveries and all(d["state"] == "delivered" for d in deliveries)
    # Ratios to the quiet baseline measured above, in this same test.
    gap_ratio = p90(busy_gaps) / p90(quiet_gaps)
    api_ratio = statistics.median(busy_api) / statistics.median(quiet_api)
    print(
        f"RSS growth {growth / 2**20:.1f} MiB; bytes written before the hang-up: "
        f"{gen.written['/huge'] / 2**20:.1f} MiB (metric), {gen.written['/hook'] / 2**20:.1f} MiB"
        f" (webhook); measurement spacing p90 ratio {gap_ratio:.2f}, API median latency "
        f"ratio {api_ratio:.2f}"
    )
    assert gap_ratio < 1.5
    assert api_ratio < 3.0

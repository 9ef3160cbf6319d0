"""Scale-out benchmark: one, two and three `analysisd serve` processes on one PostgreSQL.

    python bench/bench_scale_out.py [--replicas 1,2,3,3,2,1] [--runs 3000] [--count 8]
                                    [--lag-runs 250] [--dsn postgresql://postgres@127.0.0.1:5432/test]

Per replica count N, on a fresh scratch schema of the `test` database (dropped after):
N daemons (`python -m analysisd.cli serve`, each its own process and replica id) and one
Web endpoint (`bench/endpoint_server.py`, its own process). Runs are created through
the daemons' APIs in turn (a load balancer's round robin; the creating replica holds the
run), each with one Web metric (`?run=<name>`, so nothing is coalesced across runs).

- **Throughput**: `--runs` runs x `--count` measurements, interval 1 s, first measurement
  15 s after creation (so creating is over): 3,000 measurements/s offered once all are
  running, far more than one daemon can take, so the aggregate measurements/s is what
  the replicas can do. Window: the first measurement's start to the last one's finish,
  from the stored history. A replica count listed twice (the default 1,2,3,3,2,1, so
  that the machine's drift falls on every count alike) is reported per pass, and the
  ratio is to the median of the one-daemon passes.
- **Lag**: `--lag-runs` runs x 5 measurements, interval 1 s (`--lag-runs` measurements/s
  offered, which one daemon keeps up with): a later measurement's lag is its start minus
  (the previous one's finish + 1 s); p50/p99 over all of them.
- **Nothing lost or doubled**: every run ends Successful, and every metric has exactly
  `count` stored measurements and a status count of `count`; the bench fails otherwise.
- The provider registry's per-endpoint rate limit is off (policy, not cost), as in
  bench_scheduler.py.
- CPU: the daemons' own CPU seconds (from /proc) per measurement, and how busy the
  machine's cores were during the window (/proc/stat), to tell a CPU ceiling from a
  coordination one.

Results go to stdout as JSON; docs/benchmarks.md ("Scale-out") has the table.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parents[1]
DSN = os.environ.get("ANALYSISD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
NAMESPACE = "scale"


@dataclass
class Replica:
    process: asyncio.subprocess.Process
    base: str
    name: str

    def cpu_seconds(self) -> float:
        return _proc_cpu(self.process.pid)


def _proc_cpu(pid: int) -> float:
    """utime + stime of a process, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def scratch_schema(dsn: str) -> Any:
    admin = await asyncpg.connect(dsn, timeout=5)
    name = f"scale_{uuid.uuid4().hex[:12]}"
    await admin.execute(f"CREATE SCHEMA {name}")
    try:
        yield admin, name
    finally:
        await admin.execute(f"DROP SCHEMA {name} CASCADE")
        await admin.close()


async def start_endpoint() -> tuple[asyncio.subprocess.Process, int]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bench" / "endpoint_server.py"),
        *("--port", "0", "--workers", "1"),
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
    return process, int(line.split()[1])


async def start_replicas(count: int, store: str, folder: Path) -> list[Replica]:
    config = folder / "analysisd.yaml"
    # The registry's per-endpoint rate limit (100/s by default) is policy, not cost: off,
    # as in bench_scheduler.py (and the window for reusing results: URLs differ anyway).
    config.write_text(
        "maxActiveRunsPerNamespace: 1000000\nttlCheckInterval: 0\n"
        "providers:\n  limits:\n    rate: 0\n    concurrency: 1000\n"
        "    coalesceWindowSeconds: 0\n"
    )
    replicas = []
    for i in range(count):
        port = _free_port()
        name = f"replica-{i + 1}"
        log = (folder / f"{name}.log").open("ab")
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "analysisd.cli", "serve"),
            *("--host", "127.0.0.1", "--port", str(port), "--store", store),
            *("--config", str(config), "--secrets-dir", str(folder / "secrets")),
            *("--log-level", "WARNING"),
            stdout=log,
            stderr=log,
            env={**os.environ, "ANALYSISD_REPLICA_ID": name},
            cwd=str(ROOT),
        )
        log.close()
        replicas.append(Replica(process, f"http://127.0.0.1:{port}", name))
    async with aiohttp.ClientSession() as session:
        for replica in replicas:
            async with asyncio.timeout(60):
                while True:
                    if replica.process.returncode is not None:
                        text = (folder / f"{replica.name}.log").read_text()
                        raise RuntimeError(f"{replica.name} exited: {text[-2000:]}")
                    try:
                        async with session.get(f"{replica.base}/readyz") as resp:
                            if resp.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
    return replicas


async def stop_replicas(replicas: list[Replica]) -> None:
    for replica in replicas:
        if replica.process.returncode is None:
            replica.process.send_signal(signal.SIGTERM)
    for replica in replicas:
        try:
            await asyncio.wait_for(replica.process.wait(), 60)
        except TimeoutError:
            replica.process.kill()
            await replica.process.wait()


def manifest(name: str, endpoint: int, count: int, initial_delay: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": name},
        "spec": {
            "metrics": [
                {
                    "name": "m",
                    "count": count,
                    "interval": "1s",
                    "initialDelay": initial_delay,
                    "successCondition": "result == 1",
                    "provider": {
                        "web": {
                            "url": f"http://127.0.0.1:{endpoint}/metric?run={name}",
                            "jsonPath": "{$.value}",
                        }
                    },
                }
            ]
        },
    }


async def create_runs(
    replicas: list[Replica], names: list[str], endpoint: int, count: int, delay: str
) -> float:
    """Create the runs through the replicas in turn (32 in flight); creates per second."""
    queue = iter(enumerate(names))

    async def worker(session: aiohttp.ClientSession) -> None:
        for i, name in queue:
            base = replicas[i % len(replicas)].base
            url = f"{base}/api/v1/namespaces/{NAMESPACE}/analysisruns"
            body = manifest(name, endpoint, count, delay)
            async with session.post(url, json=body) as resp:
                if resp.status != 201:
                    raise RuntimeError(f"create {name}: {resp.status} {await resp.text()}")

    start = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=32)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(32)))
    return len(names) / (time.perf_counter() - start)


async def wait_done(admin: Any, schema: str, runs: int, limit: float) -> None:
    async with asyncio.timeout(limit):
        while True:
            done = await admin.fetchval(f"SELECT COUNT(*) FROM {schema}.runs WHERE completed=1")
            if done >= runs:
                return
            await asyncio.sleep(0.25)


def _t(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def history(admin: Any, schema: str, count: int, prefix: str) -> dict[str, Any]:
    """The stored measurements: window, lags, and every miscount (lost or doubled)."""
    rows = await admin.fetch(
        f"SELECT name, metric, body FROM {schema}.measurements WHERE name LIKE $1",
        prefix + "%",
    )
    by_metric: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for row in rows:
        body = json.loads(row["body"])
        span = (_t(body["startedAt"]), _t(body["finishedAt"]))
        by_metric.setdefault((row["name"], row["metric"]), []).append(span)
    runs = await admin.fetch(
        f"SELECT name, phase, status, owner FROM {schema}.runs WHERE name LIKE $1", prefix + "%"
    )
    wrong_count = [key for key, spans in by_metric.items() if len(spans) != count]
    missing = [r["name"] for r in runs if (r["name"], "m") not in by_metric]
    not_successful = [r["name"] for r in runs if r["phase"] != "Successful"]
    status_counts = Counter(
        result["count"]
        for r in runs
        for result in (json.loads(r["status"]) or {}).get("metricResults", [])
    )
    lags: list[float] = []
    for times in by_metric.values():
        times.sort()
        for (_, finished), (started, _) in itertools.pairwise(times):
            lags.append(started - (finished + 1.0))
    starts = [t[0] for times in by_metric.values() for t in times]
    ends = [t[1] for times in by_metric.values() for t in times]
    lags.sort()
    return {
        "measurements": len(rows),
        "window_s": max(ends) - min(starts) if rows else float("nan"),
        "lag_p50_ms": 1000 * lags[len(lags) // 2] if lags else float("nan"),
        "lag_p99_ms": 1000 * lags[int(len(lags) * 0.99)] if lags else float("nan"),
        "runs": len(runs),
        "runs_per_owner": dict(Counter(r["owner"] or "-" for r in runs)),
        "metrics_not_exactly_count": len(wrong_count) + len(missing),
        "runs_not_successful": len(not_successful),
        "status_counts": {str(k): v for k, v in status_counts.items()},
    }


async def one_count(replica_count: int, args: argparse.Namespace, endpoint: int) -> dict[str, Any]:
    async with scratch_schema(args.dsn) as (admin, schema):
        store = f"{args.dsn}?search_path={schema}"
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "secrets").mkdir()
            replicas = await start_replicas(replica_count, store, folder)
            try:
                out: dict[str, Any] = {"replicas": replica_count}
                # Throughput: far more offered than one daemon takes.
                names = [f"tp-{i:05d}" for i in range(args.runs)]
                out["creates_per_s"] = round(
                    await create_runs(replicas, names, endpoint, args.count, "15s")
                )
                cpu0 = sum(r.cpu_seconds() for r in replicas)
                busy0, total0 = _machine_busy()
                await wait_done(admin, schema, args.runs, 600)
                cpu1 = sum(r.cpu_seconds() for r in replicas)
                busy1, total1 = _machine_busy()
                tp = await history(admin, schema, args.count, "tp-")
                out["throughput"] = {
                    **tp,
                    "measurements_per_s": round(tp["measurements"] / tp["window_s"]),
                    "daemon_cpu_us_per_measurement": round(
                        1e6 * (cpu1 - cpu0) / max(1, tp["measurements"])
                    ),
                    "machine_busy": round((busy1 - busy0) / (total1 - total0), 2),
                }
                # Lag at a load one daemon keeps up with.
                names = [f"lag-{i:05d}" for i in range(args.lag_runs)]
                await create_runs(replicas, names, endpoint, 5, "5s")
                await wait_done(admin, schema, args.runs + args.lag_runs, 300)
                out["lag"] = await history(admin, schema, 5, "lag-")
                return out
            finally:
                await stop_replicas(replicas)


def _check(result: dict[str, Any]) -> list[str]:
    wrong = []
    for phase in ("throughput", "lag"):
        h = result[phase]
        if h["metrics_not_exactly_count"] or h["runs_not_successful"]:
            wrong.append(
                f"{result['replicas']} replicas, {phase}: {h['metrics_not_exactly_count']} "
                f"metrics without exactly count measurements, "
                f"{h['runs_not_successful']} runs not Successful"
            )
    return wrong


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicas", default="1,2,3,3,2,1")
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--lag-runs", type=int, default=250)
    parser.add_argument("--dsn", default=DSN)
    args = parser.parse_args()
    endpoint_process, endpoint = await start_endpoint()
    results = []
    try:
        for count in (int(c) for c in args.replicas.split(",")):
            results.append(await one_count(count, args, endpoint))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    finally:
        endpoint_process.terminate()
        await endpoint_process.wait()
    ones = [r["throughput"]["measurements_per_s"] for r in results if r["replicas"] == 1]
    base = statistics.median(ones or [results[0]["throughput"]["measurements_per_s"]])
    table = [
        {
            "replicas": r["replicas"],
            "measurements_per_s": r["throughput"]["measurements_per_s"],
            "ratio_to_one": round(r["throughput"]["measurements_per_s"] / base, 2),
            "saturated_lag_p99_ms": round(r["throughput"]["lag_p99_ms"]),
            "lag_p50_ms": round(r["lag"]["lag_p50_ms"], 1),
            "lag_p99_ms": round(r["lag"]["lag_p99_ms"], 1),
            "creates_per_s": r["creates_per_s"],
            "daemon_cpu_us_per_measurement": r["throughput"]["daemon_cpu_us_per_measurement"],
            "machine_busy": r["throughput"]["machine_busy"],
            "runs_per_owner": r["throughput"]["runs_per_owner"],
            "lost_or_doubled": r["throughput"]["metrics_not_exactly_count"]
            + r["lag"]["metrics_not_exactly_count"],
        }
        for r in results
    ]
    print(json.dumps({"cpus": os.cpu_count(), "table": table}, indent=2))
    wrong = [w for r in results for w in _check(r)]
    for line in wrong:
        print("FAILED:", line, file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

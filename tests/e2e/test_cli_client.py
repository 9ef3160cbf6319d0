"""`analysisd list | get --watch | terminate` against a real `analysisd serve` with tokens:
`get --watch` ends with the run's exit code (0 Successful, 1 Failed, 2 Error, 3 Inconclusive)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.e2e.process import start_daemon

TOKEN = "team-shop-token"
OTHER = "team-pay-token"


async def _endpoint() -> tuple[web.AppRunner, str]:
    async def handle(request: web.Request) -> web.Response:
        return web.json_response({"v": float(request.query.get("v", "1"))})

    app = web.Application()
    app.router.add_get("/metric", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/metric"


def _run(name: str, url: str, value: float, **metric: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "m",
        "count": 3,
        "interval": "300ms",
        "successCondition": "result < 10",
        "provider": {"web": {"url": f"{url}?v={value}", "jsonPath": "{$.v}"}},
    }
    body.update(metric)
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": name, "labels": {"app": "shop"}},
        "spec": {"metrics": [body]},
    }


async def cli(base: str, *args: str, token: str = TOKEN) -> tuple[int, str, str]:
    env = {**os.environ, "ANALYSISD_SERVER": base, "ANALYSISD_TOKEN": token}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "analysisd.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=str(Path(__file__).parents[2]),
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_list_get_watch_and_terminate_against_a_real_daemon(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    config = tmp_path / "analysisd.yaml"
    config.write_text(f"tokens:\n  {TOKEN}: [shop]\n  {OTHER}: [pay]\n")
    runner, url = await _endpoint()
    daemon = await start_daemon(
        f"sqlite:///{tmp_path / 'cli.db'}", tmp_path / "secrets", tmp_path / "d.log", config=config
    )
    try:
        runs = {
            "passes": _run("passes", url, 1),
            "fails": _run("fails", url, 50),
            # neither condition holds: Inconclusive
            "unsure": _run(
                "unsure", url, 5, successCondition="result > 100", failureCondition="result < 0"
            ),
            # the path finds nothing: an Error, and no errors are tolerated
            "breaks": _run(
                "breaks",
                url,
                1,
                consecutiveErrorLimit=0,
                provider={"web": {"url": f"{url}?v=1", "jsonPath": "{$.missing}"}},
            ),
            # an interval and no count: measures until terminated
            "endless": {
                **_run("endless", url, 1),
                "spec": {
                    "metrics": [
                        {
                            "name": "m",
                            "interval": "300ms",
                            "successCondition": "result < 10",
                            "provider": {"web": {"url": f"{url}?v=1", "jsonPath": "{$.v}"}},
                        }
                    ]
                },
            },
        }
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            for manifest in runs.values():
                async with session.post(
                    f"{daemon.base}/api/v1/namespaces/shop/analysisruns", json=manifest
                ) as resp:
                    assert resp.status == 201, await resp.text()

        # get --watch follows each run to its end and exits as `analysisd run` does
        watched = await asyncio.gather(
            *(
                cli(daemon.base, "get", name, "-n", "shop", "--watch")
                for name in ("passes", "fails", "breaks", "unsure")
            )
        )
        codes = [code for code, _, _ in watched]
        assert codes == [0, 1, 2, 3], watched
        assert "AnalysisRun shop/passes: Successful" in watched[0][1]  # the final table
        assert "AnalysisRun shop/fails: Failed" in watched[1][1]

        code, out, err = await cli(daemon.base, "list", "-n", "shop")
        assert code == 0, err
        lines = out.splitlines()
        assert lines[0].split() == ["NAME", "PHASE", "AGE", "PROGRESS"]
        phases = {line.split()[0]: line.split()[1] for line in lines[1:]}
        assert phases == {
            "breaks": "Error",
            "endless": "Running",
            "fails": "Failed",
            "passes": "Successful",
            "unsure": "Inconclusive",
        }

        # terminate: the open-ended run stops, Successful as Argo ends a terminated run
        watcher = asyncio.create_task(cli(daemon.base, "get", "endless", "-n", "shop", "-w"))
        await asyncio.sleep(1.0)
        code, out, err = await cli(daemon.base, "terminate", "endless", "-n", "shop")
        assert code == 0, err
        assert "terminate requested" in out
        code, out, err = await watcher
        assert code == 0, (out, err)
        assert "watching shop/endless" in out
        assert "m: Successful value=1" in out  # a line per measurement event (not a TTY)
        assert "AnalysisRun shop/endless: Successful" in out
        code, out, _ = await cli(daemon.base, "get", "endless", "-n", "shop")
        assert code == 0 and "AnalysisRun shop/endless: Successful" in out

        # another team's token sees nothing of shop; a bad server address is not a pass
        code, _, err = await cli(daemon.base, "list", "-n", "shop", token=OTHER)
        assert code == 2 and "403" in err
        code, _, err = await cli("http://127.0.0.1:9", "get", "passes", "-n", "shop", "-w")
        assert code == 2 and "cannot reach" in err
    finally:
        assert await daemon.terminate() == 0
        await runner.cleanup()

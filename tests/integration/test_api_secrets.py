"""Secret argument values never leave the daemon: not in the run, history, events or logs."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from structlog.testing import capture_logs

from analysisd.outbox import CALLBACK_URL
from tests.e2e.process import COMPLETED
from tests.e2e.rig import (
    SCRIPTED_URL,
    ScriptedSource,
    receiver,
    run_manifest,
    running_daemon,
    settings_for,
    write_secret,
)

SECRET = "hunter2-very-secret-token"


async def test_secret_argument_is_redacted_everywhere(tmp_path: Path) -> None:
    write_secret(tmp_path, "api-creds", "token", SECRET)
    metric = {
        "name": "m",
        "successCondition": "result < 10",
        # The provider fails with a message quoting its config, secret included.
        "provider": {"web": {"url": SCRIPTED_URL, "error": "401 for token {{args.token}}"}},
    }
    args = [{"name": "token", "valueFrom": {"secretKeyRef": {"name": "api-creds", "key": "token"}}}]
    async with receiver() as hook:
        manifest = run_manifest("r", [metric], args=args, annotations={CALLBACK_URL: hook.url})
        manifest["spec"]["metrics"][0]["consecutiveErrorLimit"] = 0
        with capture_logs() as logs:
            async with (
                running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
                aiohttp.ClientSession() as s,
            ):
                url = f"{base}/api/v1/namespaces/ns/analysisruns"
                async with s.post(url, json=manifest) as resp:
                    assert resp.status == 201
                    created = await resp.text()
                async with s.get(f"{url}/r/events") as resp:
                    stream = await resp.text()
                async with s.get(f"{url}/r") as resp:
                    run = await resp.json()
                    run_text = str(run)
                async with s.get(f"{url}/r/measurements") as resp:
                    history = await resp.text()
                await hook.wait_for(lambda r: len(r.deliveries) >= 2)
        assert run["status"]["phase"] in COMPLETED
        assert "*****" in run_text
        for text in (created, stream, run_text, history, str(logs)):
            assert SECRET not in text
        assert all(SECRET.encode() not in d.body for d in hook.deliveries)

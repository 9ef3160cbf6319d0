"""Liveness, readiness and the Prometheus scrape endpoint."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from analysisd.api.context import context


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    ctx = context(request)
    if not ctx.ready():
        draining = ctx.extra.get("draining")
        # Shutting down: still answering, so a load balancer sees "not ready" rather
        # than refused connections, and stops sending before the listener closes.
        status = "draining" if draining is not None and draining() else "starting"
        return web.json_response({"status": status}, status=503)
    loop_problems = ctx.extra.get("loop_problems")
    unhealthy = loop_problems() if loop_problems is not None else {}
    if unhealthy:
        # A dead or failing background loop (webhooks, leases, TTL) is not "ready", even
        # though HTTP still answers: say which one, so the operator knows where to look.
        return web.json_response({"status": "unhealthy", "loops": unhealthy}, status=503)
    try:
        await ctx.store.schema_version()
    except Exception:
        return web.json_response({"status": "store unavailable"}, status=503)
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    ctx = context(request)
    refresh = ctx.extra.get("refresh_metrics")
    if refresh is not None:
        await refresh()
    body = generate_latest(ctx.metrics_registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

"""The aiohttp application: routes, middlewares and limits."""

from __future__ import annotations

from aiohttp import web

from analysisd import ui
from analysisd.api import events, flagger, health, kayenta, runs, templates, verdicts
from analysisd.api.auth import auth_middleware
from analysisd.api.context import CONTEXT, ApiContext
from analysisd.api.errors import error_middleware
from analysisd.api.openapi import build_openapi

RUNS = "/api/v1/namespaces/{namespace}/analysisruns"
TEMPLATES = "/api/v1/namespaces/{namespace}/analysistemplates"
CLUSTER_TEMPLATES = "/api/v1/clusteranalysistemplates"
VERDICTS = "/api/v1/namespaces/{namespace}/verdicts/{key}"
FLAGGER = "/flagger/{namespace}/{template}"


def build_app(ctx: ApiContext) -> web.Application:
    # error_middleware first: it is outermost, so auth failures become JSON too.
    app = web.Application(
        client_max_size=ctx.settings.max_body_bytes,
        middlewares=[
            error_middleware,
            ui.middleware(ctx.settings.tokens),  # /ui/ pages: session token -> bearer
            auth_middleware(ctx.settings.tokens),
        ],
    )
    app[CONTEXT] = ctx
    document = build_openapi()

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(document)

    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", health.metrics)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get(RUNS, runs.list_runs)
    app.router.add_post(RUNS, runs.create_run)
    app.router.add_get(RUNS + "/{name}", runs.get_run)
    app.router.add_delete(RUNS + "/{name}", runs.delete_run)
    app.router.add_post(RUNS + "/{name}/terminate", runs.terminate_run)
    app.router.add_get(RUNS + "/{name}/events", events.run_events)
    app.router.add_get(RUNS + "/{name}/deliveries", runs.list_deliveries)
    app.router.add_get(RUNS + "/{name}/measurements", runs.list_measurements)
    app.router.add_post(VERDICTS, verdicts.post_verdict)
    app.router.add_get(VERDICTS, verdicts.get_verdict)
    app.router.add_post(FLAGGER, flagger.flagger_hook)
    kayenta.add_routes(app)  # /kayenta: Kayenta's API (analysisd/api/kayenta)
    for base in (TEMPLATES, CLUSTER_TEMPLATES):
        app.router.add_get(base, templates.list_templates)
        app.router.add_post(base, templates.create_template)
        app.router.add_get(base + "/{name}", templates.get_template)
        app.router.add_put(base + "/{name}", templates.replace_template)
        app.router.add_delete(base + "/{name}", templates.delete_template)
    ui.add_routes(app)  # /ui/ pages for people (analysisd.ui); not part of the REST API
    return app

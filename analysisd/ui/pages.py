"""The /ui/ handlers: the way in, the run list, a run, a judge metric, terminate, assets."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from importlib import resources

from aiohttp import web

from analysisd.api import runs
from analysisd.api.auth import ALL
from analysisd.api.bodies import path_name, path_namespace
from analysisd.api.context import CONTEXT, context
from analysisd.api.errors import ApiError
from analysisd.api.selectors import SelectorError, parse_selector
from analysisd.store import RunRecord
from analysisd.ui import access, listing, live
from analysisd.ui.judgepage import judge_page
from analysisd.ui.layout import e, list_url, page, run_url
from analysisd.ui.runlist import list_page
from analysisd.ui.runpage import judge_url, run_page

NS = "/ui/namespaces/{namespace}"
RUN = NS + "/analysisruns/{name}"
_TYPES = {"ui.css": "text/css", "ui.js": "text/javascript"}


def _html(text: str, status: int = 200) -> web.Response:
    response = web.Response(text=text, status=status, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


async def root(request: web.Request) -> web.Response:
    return access.see_other("/ui/")


async def index(request: web.Request) -> web.Response:
    """/ui/: the namespaces this token may read, and a box to type one."""
    ctx = context(request)
    granted = access.granted(ctx.settings.tokens, request)
    if granted is not None and ALL not in granted:
        names = sorted(granted)
    else:  # every namespace: those with unfinished runs, and the box for the rest
        names = sorted({r.namespace for r in await ctx.store.unfinished_runs()})
    items = "".join(f'<li><a href="{e(list_url(n))}">{e(n)}</a></li>' for n in names)
    body = (
        "<h1>AnalysisRuns</h1>"
        + (f'<ul class="namespaces">{items}</ul>' if items else "<p>No running analyses.</p>")
        + '<form class="filters" method="get" action="/ui/go">'
        '<label for="ns">Namespace</label> <input id="ns" name="namespace" required'
        ' pattern="[a-z0-9]([-a-z0-9]*[a-z0-9])?"> <button type=submit>Open</button></form>'
    )
    if ctx.settings.tokens:
        body += '<p><a href="/ui/logout">Forget the token of this session</a></p>'
    return _html(page("Namespaces", body, crumbs=[("namespaces", "")], script=False))


async def go(request: web.Request) -> web.Response:
    namespace = request.query.get("namespace", "").strip()
    return access.see_other(list_url(namespace) if namespace else "/ui/")


def _filters(request: web.Request) -> tuple[str, str]:
    return request.query.get("phase", ""), request.query.get("label", "")


def _phase_filter(phase: str) -> partial[bool]:
    return partial(_same_phase, phase)


def _same_phase(phase: str, record: RunRecord) -> bool:
    return not phase or (record.phase or "Pending") == phase


async def run_list(request: web.Request) -> web.Response:
    ctx = context(request)
    namespace = path_namespace(request)
    phase, label = _filters(request)
    problem = ""
    try:
        selector = parse_selector(label)
    except SelectorError as exc:
        selector, problem = [], f"labels: {exc}"
    number = listing.page_number(request.query.get("page"))
    shown = await listing.run_page(ctx, namespace, phase, selector, number)
    html = list_page(namespace, shown, datetime.now(UTC), phase=phase, label=label, problem=problem)
    return _html(html)


async def list_live(request: web.Request) -> web.StreamResponse:
    phase, label = _filters(request)
    try:
        selector = parse_selector(label)
    except SelectorError as exc:
        raise ApiError(400, f"labels: {exc}", field="label") from None
    number = listing.page_number(request.query.get("page"))
    try:
        return await live.list_stream(request, _phase_filter(phase), selector, phase, number)
    except ConnectionResetError:  # the page was left while its stream opened or wrote
        return web.Response(status=204)


async def _record(request: web.Request) -> RunRecord:
    namespace, name = path_namespace(request), path_name(request)
    record = await context(request).store.get_run(namespace, name)
    if record is None:
        raise ApiError(404, f'AnalysisRun "{name}" not found in namespace "{namespace}"')
    return record


async def run_detail(request: web.Request) -> web.Response:
    record = await _record(request)
    history = await context(request).store.measurements(record.namespace, record.name)
    html = run_page(record, history, datetime.now(UTC))
    version = live.version(record, history)
    return _html(html.replace(' data-page="run"', f' data-page="run" data-version="{version}"', 1))


async def run_live(request: web.Request) -> web.StreamResponse:
    try:
        return await live.run_stream(request)
    except ConnectionResetError:  # the page was left while its stream opened or wrote
        return web.Response(status=204)


async def metric_detail(request: web.Request) -> web.Response:
    """A judge metric's report; any other metric is a section of the run page."""
    record = await _record(request)
    metric = request.match_info["metric"]
    spec = next(
        (
            m
            for m in (record.body.get("spec") or {}).get("metrics") or []
            if m.get("name") == metric
        ),
        None,
    )
    if spec is None:
        raise ApiError(404, f'metric "{metric}" not found in AnalysisRun "{record.name}"')
    if "judge" not in (spec.get("provider") or {}):
        return access.see_other(f"{run_url(record.namespace, record.name)}#metric-{metric}")
    history = await context(request).store.measurements(record.namespace, record.name)
    try:
        chosen = int(request.query.get("measurement", "0")) or None
    except ValueError:
        chosen = None
    return _html(judge_page(record, metric, history, chosen))


async def terminate(request: web.Request) -> web.Response:
    """The terminate button: the API's own terminate, answered as JSON (script) or a redirect."""
    answer = await runs.terminate_run(request)
    if "application/json" in request.headers.get("Accept", ""):
        return answer
    return access.see_other(run_url(path_namespace(request), path_name(request)))


def _assets() -> dict[str, bytes]:
    folder = resources.files("analysisd.ui") / "static"
    return {name: (folder / name).read_bytes() for name in _TYPES}


def add_routes(app: web.Application) -> None:
    """Every /ui/ route (DESIGN §7.2), and `/` leading to them."""
    assets = _assets()
    tokens = app[CONTEXT].settings.tokens

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["file"]
        if name not in assets:
            raise web.HTTPNotFound()
        return web.Response(
            body=assets[name],
            content_type=_TYPES[name],
            headers={"Cache-Control": "public, max-age=86400"},  # URLs carry ?v=
        )

    async def login(request: web.Request) -> web.Response:
        return await access.login(request, tokens)

    app.router.add_get("/", root)
    app.router.add_get("/ui", root)
    app.router.add_get("/ui/", index)
    app.router.add_get("/ui/go", go)
    app.router.add_post(access.LOGIN, login)
    app.router.add_get(access.LOGOUT, access.logout)
    app.router.add_get("/ui/static/{file}", asset)
    app.router.add_get(NS, run_list)
    app.router.add_get(NS + "/live", list_live)
    app.router.add_get(RUN, run_detail)
    app.router.add_get(RUN + "/live", run_live)
    app.router.add_get(RUN + "/metrics/{metric}", metric_detail)
    app.router.add_post(RUN + "/terminate", terminate)


__all__ = ["add_routes", "judge_url"]

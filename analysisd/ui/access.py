"""Tokens for the pages: the API's tokens and namespace rules, carried by a session cookie.

With tokens configured, `?token=T` on any page (as Jupyter does) or the token
form stores T in a cookie that lives as long as the browser session (no expiry,
HttpOnly, SameSite=Strict, path /ui) and answers with a redirect to the same
address without the token, so T leaves the address bar and the history. On every
/ui/ request the cookie becomes the request's `Authorization: Bearer` header and
the API's own auth middleware (next in the chain) decides, with the API's rules:
a page of namespace N needs a token granted N. Failures become HTML pages with
the token form instead of JSON. A state-changing POST must come from the page's
own origin (Origin / Sec-Fetch-Site), the cookie being sent automatically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit

from aiohttp import web
from multidict import CIMultiDict

from analysisd.api.auth import _find as token_namespaces  # the API's constant-time lookup
from analysisd.api.errors import ApiError, Handler
from analysisd.ui.layout import e, page

COOKIE = "analysisd_ui_token"
PREFIX = "/ui"
STATIC = "/ui/static/"
LOGIN = "/ui/login"
LOGOUT = "/ui/logout"
OPEN = frozenset({"/", PREFIX, LOGIN, LOGOUT})


def is_page(path: str) -> bool:
    return path == "/" or path == PREFIX or path.startswith(PREFIX + "/")


def presented_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def granted(tokens: Mapping[str, Sequence[str]], request: web.Request) -> Sequence[str] | None:
    """The namespaces the request's token may read (None: no tokens configured, all)."""
    if not tokens:
        return None
    token = presented_token(request)
    return token_namespaces(tokens, token) if token else ()


def _safe_next(target: str) -> str:
    """Where the token form leads: a page of ours, never with a token in its query (a
    mistyped token is not shown back in the form, nor kept in the history)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(PREFIX + "/"):
        return PREFIX + "/"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "token"]
    return parts.path + (f"?{urlencode(query)}" if query else "")


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def _with_cookie(location: str, token: str, request: web.Request) -> web.Response:
    response = see_other(location)
    # No max_age/expires: a session cookie, gone when the browser session ends.
    response.set_cookie(
        COOKIE, token, path=PREFIX, httponly=True, samesite="Strict", secure=request.secure
    )
    return response


async def login(request: web.Request, tokens: Mapping[str, Sequence[str]]) -> web.Response:
    """POST /ui/login (the token form): keep the token for the session, go where asked."""
    form = await request.post()
    token, target = str(form.get("token", "")).strip(), str(form.get("next", ""))
    if tokens and token_namespaces(tokens, token) is None:
        html = page(
            "401",
            "<h1>401: unknown token</h1>" + token_form(_safe_next(target), wrong=True),
            script=False,
        )
        return web.Response(text=html, status=401, content_type="text/html")
    return _with_cookie(_safe_next(target), token, request)


async def logout(request: web.Request) -> web.Response:
    response = see_other(PREFIX + "/")
    response.del_cookie(COOKIE, path=PREFIX)
    return response


def token_form(next_url: str, *, wrong: bool = False) -> str:
    hint = '<p class="problem" role="alert">That token was not accepted.</p>' if wrong else ""
    return (
        f'{hint}<form class="token" method="post" action="{LOGIN}">'
        '<label for="token">API token</label> '
        '<input id="token" name="token" type="password" autocomplete="off" required autofocus>'
        f'<input type="hidden" name="next" value="{e(next_url)}"> '
        "<button type=submit>Open</button></form>"
        '<p class="muted">The token stays in this browser session only (a session cookie);'
        " it is the API token your team uses with <code>Authorization: Bearer</code>.</p>"
    )


def error_page(status: int, message: str, request: web.Request) -> web.Response:
    body = f"<h1>{status}: {e(message)}</h1>"
    if status in (401, 403):
        target = request.path_qs if request.method == "GET" else PREFIX + "/"
        body += token_form(_safe_next(target), wrong=status == 401 and COOKIE in request.cookies)
        body += '<p><a href="/ui/logout">Forget the token of this session</a></p>'
    html = page(f"{status}", body, crumbs=[("namespaces", "/ui/")], script=False)
    response = web.Response(text=html, status=status, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def _cross_site(request: web.Request) -> bool:
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("Origin")
    return bool(origin) and origin != "null" and urlsplit(origin).netloc != request.host


def ui_middleware(tokens: Mapping[str, Sequence[str]]) -> web.middleware:  # type: ignore[valid-type]
    """Sits between the error middleware and the API's auth middleware; /ui/ only."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not is_page(request.path):
            return await handler(request)
        try:
            return await _page(request, handler)
        except ApiError as exc:
            return error_page(exc.status, exc.message, request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            message = "no such page" if exc.status == 404 else exc.reason
            return error_page(exc.status, message, request)

    async def _page(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "POST" and _cross_site(request):
            raise ApiError(403, "cross-site request refused")
        if request.path.startswith(STATIC) or request.path in OPEN:
            # Stylesheet, script, the way in and the token form's own handlers hold nothing
            # of any team: they skip the token check (the token form is styled by them).
            return await request.match_info.handler(request)
        if "token" in request.query and request.method == "GET":
            # Out of the address bar at once, known or not: an unknown one is refused by
            # the next request (the token form, 401), from the cookie.
            token = request.query["token"]
            query = {k: v for k, v in request.query.items() if k != "token"}
            location = str(request.rel_url.with_query(query))
            if not tokens:
                return see_other(location)
            return _with_cookie(location, token, request)
        cookie = request.cookies.get(COOKIE)
        if tokens and cookie and presented_token(request) is None:
            headers = CIMultiDict(request.headers)
            headers["Authorization"] = f"Bearer {cookie}"
            request = request.clone(headers=headers)
        return await handler(request)

    return middleware

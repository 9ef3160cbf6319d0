"""API tokens scoped to namespaces (a namespace is a team).

Configured as token -> namespaces; "*" grants every namespace and cluster-scoped
writes. With no tokens configured the API is open (the zero-setup default; beyond
loopback only with --allow-anonymous). With tokens, /metrics needs a "*" token:
its per-namespace series name every team. A request's token is known to the
handlers (and the audit log) only by its name, `token_name`: never the token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence

from aiohttp import web

from analysisd.api.audit import ANONYMOUS, caller
from analysisd.api.errors import ApiError, Handler

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json"})
ADMIN_PATHS = frozenset({"/metrics"})
ALL = "*"


def token_name(token: str) -> str:
    """A name for a token that does not reveal it: `token-` + 12 hex digits of its
    SHA-256 (`printf %s "$TOKEN" | sha256sum | cut -c1-12` names your own)."""
    return "token-" + hashlib.sha256(token.encode()).hexdigest()[:12]


# Front doors whose callers cannot set an Authorization header.
QUERY_TOKEN_PREFIXES = ("/flagger/",)
# Front doors whose namespace only the handler knows (the Kayenta API maps an application
# to one): the middleware checks the token, the handler calls `check_namespace`. Their
# callers may send the token as HTTP Basic's password (Argo's kayenta provider, a Go
# client, sends `http://user:TOKEN@host/kayenta` that way).
HANDLER_NAMESPACE_PREFIXES = ("/kayenta/",)
# The token's namespaces, for those handlers (absent: the API is open).
GRANTS: web.RequestKey[tuple[str, ...]] = web.RequestKey("analysisd_grants", tuple)


def check_namespace(request: web.Request, namespace: str, *, write: bool) -> None:
    """For HANDLER_NAMESPACE_PREFIXES routes: 403 unless the token may use `namespace`."""
    namespaces = request.get(GRANTS)
    if namespaces is not None and not allowed(namespaces, namespace, write=write):
        verb = "change" if write else "read"
        raise ApiError(403, f'this token may not {verb} namespace "{namespace}"')


def _basic_password(presented: str) -> str:
    try:
        decoded = base64.b64decode(presented.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[2]


def _find(tokens: Mapping[str, Sequence[str]], presented: str) -> Sequence[str] | None:
    # Compare every token in constant time so response timing does not leak prefixes.
    found: Sequence[str] | None = None
    for token, namespaces in tokens.items():
        if hmac.compare_digest(token.encode(), presented.encode()):
            found = namespaces
    return found


def allowed(namespaces: Sequence[str], namespace: str | None, *, write: bool) -> bool:
    if ALL in namespaces:
        return True
    if namespace is None:  # cluster-scoped: readable by any team, writable by admins only
        return not write
    return namespace in namespaces


def auth_middleware(tokens: Mapping[str, Sequence[str]]) -> web.middleware:  # type: ignore[valid-type]
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not tokens or request.path in PUBLIC_PATHS:
            caller.set(ANONYMOUS)
            return await handler(request)
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        if not header and request.path.startswith(QUERY_TOKEN_PREFIXES):
            # Flagger cannot send headers: its webhook URL carries ?token=.
            scheme, presented = "bearer", request.query.get("token", "")
        handler_namespace = request.path.startswith(HANDLER_NAMESPACE_PREFIXES)
        if handler_namespace and scheme.lower() == "basic":
            scheme, presented = "bearer", _basic_password(presented)
        if scheme.lower() != "bearer" or not presented:
            raise ApiError(401, "missing bearer token (Authorization: Bearer <token>)")
        namespaces = _find(tokens, presented.strip())
        if namespaces is None:
            raise ApiError(401, "unknown token")
        if request.path in ADMIN_PATHS and ALL not in namespaces:
            raise ApiError(403, f'{request.path} needs a token granted "*" (every namespace)')
        caller.set(token_name(presented.strip()))  # for the audit log (api/audit.py)
        if handler_namespace:
            request[GRANTS] = tuple(namespaces)
            return await handler(request)
        namespace = request.match_info.get("namespace")
        write = request.method not in ("GET", "HEAD", "OPTIONS")
        if not allowed(namespaces, namespace, write=write):
            where = f'namespace "{namespace}"' if namespace else "cluster-scoped objects"
            raise ApiError(403, f"this token may not {'change' if write else 'read'} {where}")
        return await handler(request)

    return middleware

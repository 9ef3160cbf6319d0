"""A local InfluxDB 2 query endpoint (``POST /api/v2/query``) answering annotated CSV.

Debian's InfluxDB is 1.6 and has no Flux, so this server speaks the one endpoint Argo's
influxdb provider uses, as InfluxDB 2's API reference and its annotated-CSV spec describe:

- ``Authorization: Token <token>`` required; otherwise 401
  ``{"code":"unauthorized","message":"unauthorized access"}``.
- ``?org=<name>`` (or ``orgID``) required and known; otherwise 400 / 404 with the
  ``{"code", "message"}`` error body InfluxDB gives.
- The body is JSON: ``query`` (required, else 400 ``invalid``), ``type`` ``flux``, and a
  ``dialect`` whose annotations say which annotation rows to write (``datatype``,
  ``group``, ``default``) and whether to write the header row.
- A query the server was given tables for (``server.tables[query_text] = [Table(...)]``)
  answers them; any other query answers no tables (an empty body), as InfluxDB does for a
  range with no data. ``server.errors[query_text] = "..."`` answers InfluxDB's in-band
  error table (HTTP 200 with ``#datatype,string,string`` / ``,error,reference``).
- The CSV is InfluxDB's: ``\\r\\n`` line ends, the annotation rows, a header row led by an
  empty column, ``result`` and ``table`` columns, one blank line between tables of
  different schemas, RFC 3339 times, booleans as ``true``/``false``.

Faults: ``server.script`` holds ``Canned(status, body, headers, delay_s)`` answers given
(in order) instead. Every request is kept in ``server.requests``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from aiohttp import web

from providers.gocompat import format_f

_ANNOTATIONS = ("datatype", "group", "default")


@dataclass
class Column:
    name: str
    datatype: str  # string, double, long, unsignedLong, boolean, dateTime:RFC3339
    group: bool = False
    default: str = ""


@dataclass
class Table:
    """One Flux table: its columns (after ``result`` and ``table``) and rows of values."""

    columns: Sequence[Column]
    rows: Sequence[Sequence[Any]]
    result: str = "_result"


def value_table(values: Sequence[Any], *, field_name: str = "value", start: int = 0) -> Table:
    """The usual shape of a Flux answer: _start/_stop/_time/_value/_field/_measurement."""
    datatype = _datatype_of(values)
    t0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp() + start
    rows = [
        [
            datetime.fromtimestamp(t0, UTC),
            datetime.fromtimestamp(t0 + 600, UTC),
            datetime.fromtimestamp(t0 + 60 * (i + 1), UTC),
            value,
            field_name,
            "http",
        ]
        for i, value in enumerate(values)
    ]
    columns = [
        Column("_start", "dateTime:RFC3339", group=True),
        Column("_stop", "dateTime:RFC3339", group=True),
        Column("_time", "dateTime:RFC3339"),
        Column("_value", datatype),
        Column("_field", "string", group=True),
        Column("_measurement", "string", group=True),
    ]
    return Table(columns, rows)


def _datatype_of(values: Sequence[Any]) -> str:
    if all(isinstance(v, bool) for v in values) and values:
        return "boolean"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values) and values:
        return "long"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "double"
    return "string"


def _cell(value: Any, datatype: str) -> str:
    if value is None:
        return ""
    if datatype == "boolean":
        return "true" if value else "false"
    if datatype.startswith("dateTime"):
        assert isinstance(value, datetime)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if datatype == "double":
        return format_f(float(value))  # Go's strconv.FormatFloat(v, 'f', -1, 64): NaN, +Inf
    return str(value)


def annotated_csv(tables: Sequence[Table], annotations: Sequence[str], header: bool = True) -> str:
    """Tables as InfluxDB 2 writes them (\\r\\n line ends, blank line between schemas)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    previous: list[tuple[str, str]] | None = None
    for index, table in enumerate(tables):
        columns = [Column("result", "string"), Column("table", "long"), *table.columns]
        schema = [(c.name, c.datatype) for c in columns]
        if schema != previous:
            if previous is not None:
                out.write("\r\n")
            for annotation in annotations:
                row = [f"#{annotation}"]
                for column in columns:
                    if annotation == "datatype":
                        row.append(column.datatype)
                    elif annotation == "group":
                        row.append("true" if column.group else "false")
                    else:
                        row.append(table.result if column.name == "result" else column.default)
                writer.writerow(row)
            if header:
                writer.writerow(["", *(c.name for c in columns)])
            previous = schema
        for values in table.rows:
            cells = [_cell(v, c.datatype) for v, c in zip(values, table.columns, strict=True)]
            result = "" if "default" in annotations else table.result
            writer.writerow(["", result, str(index), *cells])
    if tables:
        out.write("\r\n")
    return out.getvalue()


def error_csv(message: str) -> str:
    """InfluxDB's in-band error table (an error met while the answer was streaming)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["#datatype", "string", "string"])
    writer.writerow(["#group", "true", "true"])
    writer.writerow(["#default", "", ""])
    writer.writerow(["", "error", "reference"])
    writer.writerow(["", message, ""])
    out.write("\r\n")
    return out.getvalue()


@dataclass
class Canned:
    status: int
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Seen:
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: Any


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message}, status=status)


class InfluxApi:
    """``async with InfluxApi(token="t", org="acme") as server: server.url``."""

    def __init__(self, *, token: str, org: str, org_id: str = "0123456789abcdef") -> None:
        self.token = token
        self.org = org
        self.org_id = org_id
        self.tables: dict[str, list[Table]] = {}
        self.errors: dict[str, str] = {}
        self.script: list[Canned] = []
        self.requests: list[Seen] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> InfluxApi:
        app = web.Application()
        app.router.add_post("/api/v2/query", self._query)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _query(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self.requests.append(Seen(request.path, dict(request.query), dict(request.headers), body))
        if self.script:
            canned = self.script.pop(0)
            if canned.delay_s:
                await asyncio.sleep(canned.delay_s)
            return web.Response(status=canned.status, text=canned.body, headers=canned.headers)
        if request.headers.get("Authorization") != f"Token {self.token}":
            return _error(401, "unauthorized", "unauthorized access")
        org, org_id = request.query.get("org"), request.query.get("orgID")
        if not org and not org_id:
            return _error(400, "invalid", "Please provide either orgID or org")
        if (org and org != self.org) or (org_id and org_id != self.org_id):
            return _error(404, "not found", f'organization name "{org or org_id}" not found')
        if not isinstance(body, Mapping):
            return _error(400, "invalid", "failed to decode request body: invalid JSON")
        query = body.get("query")
        if not isinstance(query, str) or not query:
            return _error(400, "invalid", "query or AST is required")
        if body.get("type", "flux") != "flux":
            return _error(400, "invalid", f"unknown query type {body.get('type')!r}")
        dialect = body.get("dialect") or {}
        annotations = [a for a in dialect.get("annotations") or [] if a in _ANNOTATIONS]
        header = dialect.get("header", True) is not False
        if query in self.errors:
            text = error_csv(self.errors[query])
        else:
            text = annotated_csv(self.tables.get(query, []), annotations, header)
        return web.Response(status=200, text=text, content_type="text/csv", charset="utf-8")

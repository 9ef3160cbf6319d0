"""Building blocks of the OpenAPI document: path parameters, error responses, operations."""

from __future__ import annotations

from typing import Any

NS = {"name": "namespace", "in": "path", "required": True, "schema": {"type": "string"}}
NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
ERRORS = {
    "400": "Bad request (field named in details.field)",
    "401": "Missing or unknown token",
    "403": "Token not allowed in this namespace, or a quota refuses the run "
    "(metricsPerRun, minInterval: named in the message and details)",
    "404": "Not found",
    "409": "Already exists",
    "413": "Body too large",
    "429": "A namespace quota is full for now (activeRuns, measurementsPerSecond: named "
    "in the message and details.field); retry later",
    "503": "Shutting down",
}


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def op(
    op_id: str,
    summary: str,
    ok: dict[str, dict[str, Any]],
    *,
    params: list[dict[str, Any]] | None = None,
    body: str | None = None,
    errors: tuple[str, ...] = ("400", "401", "403", "404"),
) -> dict[str, Any]:
    responses: dict[str, Any] = dict(ok)
    for code in errors:
        responses[code] = json_response(ref("Status"), ERRORS.get(code, "Error"))
    built: dict[str, Any] = {"operationId": op_id, "summary": summary, "responses": responses}
    if params:
        built["parameters"] = params
    if body:
        schema = ref(body)
        built["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": schema},
                "application/yaml": {"schema": {"type": "string"}},
            },
        }
    return built


KEY = {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}
TEMPLATE = {"name": "template", "in": "path", "required": True, "schema": {"type": "string"}}

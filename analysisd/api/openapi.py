"""The OpenAPI 3 document of the REST API; tests hold it and the router together.

The building blocks are in openapi_common, the front doors' paths (verdicts, Flagger,
Kayenta) in openapi_doors, the component schemas in openapi_schemas.
"""

from __future__ import annotations

from typing import Any

from analysisd.api.openapi_common import ERRORS, NAME, NS, json_response, op, ref
from analysisd.api.openapi_doors import front_door_paths, kayenta_paths
from analysisd.api.openapi_schemas import component_schemas


def _template_paths(kind: str, plural: str, base: str, params: list[Any]) -> dict[str, Any]:
    write_errors = ("400", "401", "403", "404", "413")
    return {
        base: {
            "get": op(
                f"list{kind}s",
                f"List {kind}s",
                {"200": json_response(ref("ObjectList"), "List")},
                params=params,
            ),
            "post": op(
                f"create{kind}",
                f"Create a {kind}",
                {"201": json_response(ref(kind), "Created")},
                params=params,
                body=kind,
                errors=(*write_errors, "409"),
            ),
        },
        base + "/{name}": {
            "get": op(
                f"get{kind}",
                f"Get a {kind}",
                {"200": json_response(ref(kind), "The object")},
                params=[*params, NAME],
            ),
            "put": op(
                f"replace{kind}",
                f"Replace (or create) a {kind}",
                {
                    "200": json_response(ref(kind), "Replaced"),
                    "201": json_response(ref(kind), "Created"),
                },
                params=[*params, NAME],
                body=kind,
                errors=write_errors,
            ),
            "delete": op(
                f"delete{kind}",
                f"Delete a {kind}",
                {"200": json_response(ref("Status"), "Deleted")},
                params=[*params, NAME],
            ),
        },
    }


def build_openapi() -> dict[str, Any]:
    runs = "/api/v1/namespaces/{namespace}/analysisruns"
    run = runs + "/{name}"
    paths: dict[str, Any] = {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness",
                "responses": {"200": json_response({"type": "object"}, "Alive")},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Readiness",
                "responses": {
                    "200": json_response({"type": "object"}, "Ready"),
                    "503": json_response(
                        {"type": "object"},
                        'Not ready: "starting", "draining" (shutting down, in-flight '
                        'measurements finishing), "unhealthy" or "store unavailable"',
                    ),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics (per-namespace aggregates; with tokens "
                'configured, a token granted "*")',
                "responses": {
                    "200": {
                        "description": "Text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": json_response(ref("Status"), ERRORS["401"]),
                    "403": json_response(ref("Status"), 'The token is not granted "*"'),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": {"200": json_response({"type": "object"}, "OpenAPI 3")},
            }
        },
        runs: {
            "get": op(
                "listAnalysisRuns",
                "List runs (labelSelector, phase filters)",
                {"200": json_response(ref("ObjectList"), "List")},
                params=[
                    NS,
                    {
                        "name": "labelSelector",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "phase",
                        "in": "query",
                        "required": False,
                        "schema": {
                            "type": "string",
                            "enum": [
                                "Pending",
                                "Running",
                                "Successful",
                                "Failed",
                                "Error",
                                "Inconclusive",
                            ],
                        },
                    },
                ],
            ),
            "post": op(
                "createAnalysisRun",
                "Create a run from a manifest, or from template references + args",
                {"201": json_response(ref("AnalysisRun"), "Created")},
                params=[NS],
                body="AnalysisRunOrRequest",
                errors=("400", "401", "403", "404", "409", "413", "429", "503"),
            ),
        },
        run: {
            "get": op(
                "getAnalysisRun",
                "Get a run with its status",
                {"200": json_response(ref("AnalysisRun"), "The run")},
                params=[NS, NAME],
            ),
            "delete": op(
                "deleteAnalysisRun",
                "Delete a run (terminating it first)",
                {"200": json_response(ref("Status"), "Deleted")},
                params=[NS, NAME],
            ),
        },
        run + "/terminate": {
            "post": op(
                "terminateAnalysisRun",
                "Terminate a run",
                {"202": json_response(ref("AnalysisRun"), "Terminating")},
                params=[NS, NAME],
            ),
        },
        run + "/events": {
            "get": op(
                "watchAnalysisRun",
                "Server-sent events: status, measurement, phase, completed",
                {
                    "200": {
                        "description": "text/event-stream",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    }
                },
                params=[NS, NAME],
            ),
        },
        run + "/deliveries": {
            "get": op(
                "listDeliveries",
                "Webhook delivery status of the run's events",
                {"200": json_response(ref("ItemList"), "Deliveries")},
                params=[NS, NAME],
            ),
        },
        run + "/measurements": {
            "get": op(
                "listMeasurements",
                "Full measurement history",
                {"200": json_response(ref("ItemList"), "Measurements")},
                params=[NS, NAME],
            ),
        },
    }
    paths.update(front_door_paths())
    paths.update(kayenta_paths())
    paths.update(
        _template_paths(
            "AnalysisTemplate",
            "analysistemplates",
            "/api/v1/namespaces/{namespace}/analysistemplates",
            [NS],
        )
    )
    paths.update(
        _template_paths(
            "ClusterAnalysisTemplate",
            "clusteranalysistemplates",
            "/api/v1/clusteranalysistemplates",
            [],
        )
    )
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "analysisd",
            "version": "1",
            "description": "Argo Rollouts AnalysisRuns as a service."
            " Bodies are Argo manifests (JSON or YAML).",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": component_schemas(),
        },
        "security": [{}, {"bearer": []}],
        "paths": paths,
    }

"""The OpenAPI 3 document of the REST API; tests hold it and the router together."""

from __future__ import annotations

from typing import Any

NS = {"name": "namespace", "in": "path", "required": True, "schema": {"type": "string"}}
NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_ERRORS = {
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


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(
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
        responses[code] = _json(_ref("Status"), _ERRORS.get(code, "Error"))
    op: dict[str, Any] = {"operationId": op_id, "summary": summary, "responses": responses}
    if params:
        op["parameters"] = params
    if body:
        schema = _ref(body)
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": schema},
                "application/yaml": {"schema": {"type": "string"}},
            },
        }
    return op


def _template_paths(kind: str, plural: str, base: str, params: list[Any]) -> dict[str, Any]:
    write_errors = ("400", "401", "403", "404", "413")
    return {
        base: {
            "get": _op(
                f"list{kind}s",
                f"List {kind}s",
                {"200": _json(_ref("ObjectList"), "List")},
                params=params,
            ),
            "post": _op(
                f"create{kind}",
                f"Create a {kind}",
                {"201": _json(_ref(kind), "Created")},
                params=params,
                body=kind,
                errors=(*write_errors, "409"),
            ),
        },
        base + "/{name}": {
            "get": _op(
                f"get{kind}",
                f"Get a {kind}",
                {"200": _json(_ref(kind), "The object")},
                params=[*params, NAME],
            ),
            "put": _op(
                f"replace{kind}",
                f"Replace (or create) a {kind}",
                {"200": _json(_ref(kind), "Replaced"), "201": _json(_ref(kind), "Created")},
                params=[*params, NAME],
                body=kind,
                errors=write_errors,
            ),
            "delete": _op(
                f"delete{kind}",
                f"Delete a {kind}",
                {"200": _json(_ref("Status"), "Deleted")},
                params=[*params, NAME],
            ),
        },
    }


def _object(kind: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"type": "string", "example": "argoproj.io/v1alpha1"},
            "kind": {"type": "string", "enum": [kind]},
            "metadata": _ref("ObjectMeta"),
            "spec": {"type": "object"},
            **({"status": {"type": "object"}} if kind == "AnalysisRun" else {}),
        },
    }


KEY = {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}
TEMPLATE = {"name": "template", "in": "path", "required": True, "schema": {"type": "string"}}


def _front_door_paths() -> dict[str, Any]:
    """The verdict gate an Argo `web` metric polls and Flagger's webhook gate."""
    verdict = {
        "type": "object",
        "required": ["phase", "message", "run", "complete", "metrics"],
        "properties": {
            "phase": {"type": "string"},
            "message": {"type": "string"},
            "run": {"type": "string"},
            "complete": {"type": "boolean"},
            "metrics": {"type": "array", "items": {"type": "object"}},
        },
    }
    verdict_request = {
        "type": "object",
        "properties": {
            "templateName": {"type": "string"},
            "clusterTemplateName": {"type": "string"},
            "args": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    flagger_request = {
        "type": "object",
        "required": ["name", "namespace", "phase"],
        "properties": {
            "name": {"type": "string"},
            "namespace": {"type": "string"},
            "phase": {"type": "string"},
            "checksum": {"type": "string"},
            "type": {"type": "string"},
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    text = {"text/plain": {"schema": {"type": "string"}}}
    # A refusal of the request itself is a Status object; a verdict is a sentence.
    either = {**text, "application/json": {"schema": _ref("Status")}}
    path = "/api/v1/namespaces/{namespace}/verdicts/{key}"
    get = _op(
        "getVerdict",
        "The phase of the run started for this key",
        {"200": _json(verdict, "The run's verdict")},
        params=[NS, KEY],
    )
    post = _op(
        "postVerdict",
        "Start one run per key from a template (later calls answer the same run)",
        {"200": _json(verdict, "The run's verdict")},
        params=[NS, KEY],
        errors=("400", "401", "403", "404", "413", "429", "503"),
    )
    post["requestBody"] = {
        "required": False,
        "content": {"application/json": {"schema": verdict_request}},
    }
    hook = {
        "operationId": "flaggerWebhook",
        "summary": "Flagger webhook gate: one run per canary checksum, answered by hook type",
        "parameters": [NS, TEMPLATE],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": flagger_request}},
        },
        "responses": {
            "200": {"description": "Go ahead", "content": text},
            "400": {"description": "Not a Flagger webhook payload", "content": either},
            "401": {"description": "Missing or unknown token", "content": either},
            "403": {"description": "A definitive no, or namespace refused", "content": either},
            "404": {"description": "No such template", "content": either},
            "409": {"description": "Not yet: the run is still measuring", "content": either},
            "413": {"description": "Body too large", "content": either},
            "429": {"description": "A namespace quota is full for now", "content": either},
            "503": {"description": "Shutting down", "content": either},
        },
    }
    return {path: {"get": get, "post": post}, "/flagger/{namespace}/{template}": {"post": hook}}


def _kayenta_paths() -> dict[str, Any]:
    """Kayenta's API under /kayenta (analysisd/api/kayenta): Kayenta's JSON shapes."""
    anything = {"type": "object"}
    config_id = {"name": "configId", "in": "path", "required": True, "schema": {"type": "string"}}
    # POST /kayenta/canary/{id} names a config, GET an execution.
    the_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    application = {"name": "application", "in": "query", "schema": {"type": "string"}}
    accounts = [
        {"name": name, "in": "query", "schema": {"type": "string"}}
        for name in ("metricsAccountName", "configurationAccountName", "storageAccountName")
    ]
    summary = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "updatedTimestamp": {"type": "integer"},
            "updatedTimestampIso": {"type": "string"},
            "applications": {"type": "array", "items": {"type": "string"}},
        },
    }
    config_ack = {
        "type": "object",
        "required": ["canaryConfigId"],
        "properties": {"canaryConfigId": {"type": "string"}},
    }
    canary_request = {
        "type": "object",
        "required": ["scopes"],
        "properties": {
            "scopes": {"type": "object", "additionalProperties": {"type": "object"}},
            "thresholds": {
                "type": "object",
                "properties": {"pass": {"type": "number"}, "marginal": {"type": "number"}},
            },
        },
    }
    canary_status = {
        "type": "object",
        "required": ["complete", "status"],
        "properties": {
            "complete": {"type": "boolean"},
            "status": {"type": "string"},
            "result": {"type": "object", "nullable": True},
            "canaryConfigId": {"type": "string", "nullable": True},
        },
    }
    writes = ("400", "401", "403", "404", "413", "429", "503")

    def json_body(op: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
        return op

    standalone_request = {
        "type": "object",
        "properties": {
            "scopes": {"type": "array", "items": {"type": "object"}},
            "thresholds": {"type": "object"},
            "lifetimeDurationMins": {"type": "number"},
            "beginAfterMins": {"type": "number"},
            "lookbackMins": {"type": "number"},
            "analysisIntervalMins": {"type": "number"},
            "canaryConfig": {"type": "object"},
            "executionRequest": {"type": "object"},
        },
    }
    standalone_ack = {
        "type": "object",
        "required": ["canaryAnalysisExecutionId"],
        "properties": {"canaryAnalysisExecutionId": {"type": "string"}},
    }
    standalone_params: list[dict[str, Any]] = [
        application,
        *accounts,
        *(
            {"name": name, "in": "query", "schema": {"type": "string"}}
            for name in ("user", "parentPipelineExecutionId")
        ),
    ]
    standalone_status = {
        "type": "object",
        "required": ["complete", "executionStatus", "status"],
        "properties": {
            "complete": {"type": "boolean"},
            "executionStatus": {"type": "string"},
            "status": {"type": "string"},
            "canaryAnalysisExecutionResult": {"type": "object", "nullable": True},
        },
    }
    judge_request = {
        "type": "object",
        "required": ["canaryConfig", "metricSetPairList"],
        "properties": {
            "canaryConfig": {"type": "object"},
            "scoreThresholds": {"type": "object"},
            "metricSetPairList": {"type": "array", "items": {"type": "object"}},
        },
    }
    judge_result = {
        "type": "object",
        "required": ["judgeName", "results", "groupScores", "score"],
        "properties": {
            "judgeName": {"type": "string"},
            "results": {"type": "array", "items": {"type": "object"}},
            "groupScores": {"type": "array", "items": {"type": "object"}},
            "score": {"type": "object"},
        },
    }
    base = "/kayenta"
    standalone = base + "/standalone_canary_analysis"
    return {
        base + "/judge": {
            "post": json_body(
                _op(
                    "kayentaRemoteJudge",
                    "Kayenta RemoteJudge: judge a metric set pair list (CanaryJudgeResult)",
                    {"200": _json(judge_result, "The judgement")},
                    errors=("400", "401", "413"),
                ),
                judge_request,
            ),
        },
        base + "/judges": {
            "get": _op(
                "kayentaListJudges",
                "Kayenta: the judges served",
                {"200": _json({"type": "array", "items": {"type": "object"}}, "Judges")},
                errors=("401",),
            ),
        },
        standalone: {
            "post": json_body(
                _op(
                    "kayentaStartAdhocAnalysis",
                    "Kayenta: a standalone canary analysis of an inline config"
                    " ({canaryConfig, executionRequest}); one run of several judgements",
                    {"200": _json(standalone_ack, "Started")},
                    params=standalone_params,
                    errors=writes,
                ),
                standalone_request,
            ),
        },
        standalone + "/{id}": {
            "post": json_body(
                _op(
                    "kayentaStartAnalysis",
                    "Kayenta: a standalone canary analysis of a stored config (id)",
                    {"200": _json(standalone_ack, "Started")},
                    params=[the_id, *standalone_params],
                    errors=writes,
                ),
                standalone_request,
            ),
            "get": _op(
                "kayentaGetAnalysis",
                "Kayenta: a standalone analysis' status (CanaryAnalysisExecutionStatusResponse)",
                {"200": _json(standalone_status, "Status")},
                params=[the_id, accounts[2]],
                errors=("401", "403", "404"),
            ),
        },
        base + "/canaryConfig": {
            "get": _op(
                "kayentaListCanaryConfigs",
                "Kayenta: canary configs of ?application= (or the default namespace)",
                {"200": _json({"type": "array", "items": summary}, "Config summaries")},
                params=[application, accounts[1]],
                errors=("400", "401", "403"),
            ),
            "post": json_body(
                _op(
                    "kayentaCreateCanaryConfig",
                    "Kayenta: store a canary config",
                    {"200": _json(config_ack, "Stored")},
                    params=[application, accounts[1]],
                    errors=("400", "401", "403", "409", "413"),
                ),
                anything,
            ),
        },
        base + "/canaryConfig/{configId}": {
            "get": _op(
                "kayentaGetCanaryConfig",
                "Kayenta: a canary config",
                {"200": _json(anything, "The config")},
                params=[config_id, accounts[1]],
                errors=("401", "403", "404"),
            ),
            "put": json_body(
                _op(
                    "kayentaReplaceCanaryConfig",
                    "Kayenta: replace a canary config",
                    {"200": _json(config_ack, "Stored")},
                    params=[config_id, application, accounts[1]],
                    errors=("400", "401", "403", "404", "413"),
                ),
                anything,
            ),
            "delete": _op(
                "kayentaDeleteCanaryConfig",
                "Kayenta: delete a canary config",
                {"204": {"description": "Deleted"}},
                params=[config_id, accounts[1]],
                errors=("401", "403", "404"),
            ),
        },
        base + "/canary/{id}": {
            "post": json_body(
                _op(
                    "kayentaStartCanary",
                    "Kayenta: one canary judgement (an AnalysisRun) as Argo's kayenta provider"
                    " starts it",
                    {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["canaryExecutionId"],
                                "properties": {"canaryExecutionId": {"type": "string"}},
                            },
                            "Started",
                        )
                    },
                    params=[
                        the_id,
                        application,
                        *accounts,
                        {
                            "name": "parentPipelineExecutionId",
                            "in": "query",
                            "schema": {"type": "string"},
                        },
                    ],
                    errors=writes,
                ),
                canary_request,
            ),
            "get": _op(
                "kayentaGetCanary",
                "Kayenta: a canary execution's status (CanaryExecutionStatusResponse)",
                {"200": _json(canary_status, "Status")},
                params=[the_id],
                errors=("401", "403", "404"),
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
                "responses": {"200": _json({"type": "object"}, "Alive")},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Readiness",
                "responses": {
                    "200": _json({"type": "object"}, "Ready"),
                    "503": _json(
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
                    "401": _json(_ref("Status"), _ERRORS["401"]),
                    "403": _json(_ref("Status"), 'The token is not granted "*"'),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3")},
            }
        },
        runs: {
            "get": _op(
                "listAnalysisRuns",
                "List runs (labelSelector, phase filters)",
                {"200": _json(_ref("ObjectList"), "List")},
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
            "post": _op(
                "createAnalysisRun",
                "Create a run from a manifest, or from template references + args",
                {"201": _json(_ref("AnalysisRun"), "Created")},
                params=[NS],
                body="AnalysisRunOrRequest",
                errors=("400", "401", "403", "404", "409", "413", "429", "503"),
            ),
        },
        run: {
            "get": _op(
                "getAnalysisRun",
                "Get a run with its status",
                {"200": _json(_ref("AnalysisRun"), "The run")},
                params=[NS, NAME],
            ),
            "delete": _op(
                "deleteAnalysisRun",
                "Delete a run (terminating it first)",
                {"200": _json(_ref("Status"), "Deleted")},
                params=[NS, NAME],
            ),
        },
        run + "/terminate": {
            "post": _op(
                "terminateAnalysisRun",
                "Terminate a run",
                {"202": _json(_ref("AnalysisRun"), "Terminating")},
                params=[NS, NAME],
            ),
        },
        run + "/events": {
            "get": _op(
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
            "get": _op(
                "listDeliveries",
                "Webhook delivery status of the run's events",
                {"200": _json(_ref("ItemList"), "Deliveries")},
                params=[NS, NAME],
            ),
        },
        run + "/measurements": {
            "get": _op(
                "listMeasurements",
                "Full measurement history",
                {"200": _json(_ref("ItemList"), "Measurements")},
                params=[NS, NAME],
            ),
        },
    }
    paths.update(_front_door_paths())
    paths.update(_kayenta_paths())
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
            "schemas": {
                "ObjectMeta": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "generateName": {"type": "string"},
                        "namespace": {"type": "string"},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "annotations": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                    },
                },
                "AnalysisTemplate": _object("AnalysisTemplate"),
                "ClusterAnalysisTemplate": _object("ClusterAnalysisTemplate"),
                "AnalysisRun": _object("AnalysisRun"),
                "RunRequest": {
                    "type": "object",
                    "required": ["templates"],
                    "properties": {
                        "metadata": _ref("ObjectMeta"),
                        "templates": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "templateName": {"type": "string"},
                                    "clusterScope": {"type": "boolean"},
                                },
                            },
                        },
                        "args": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "AnalysisRunOrRequest": {"oneOf": [_ref("AnalysisRun"), _ref("RunRequest")]},
                "ObjectList": {
                    "type": "object",
                    "required": ["kind", "items"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "items": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "ItemList": {
                    "type": "object",
                    "required": ["items"],
                    "properties": {
                        "kind": {"type": "string"},
                        "items": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "Status": {
                    "type": "object",
                    "required": ["kind", "status", "code", "message"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string", "enum": ["Status"]},
                        "status": {"type": "string"},
                        "code": {"type": "integer"},
                        "reason": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {"type": "object"},
                    },
                },
            },
        },
        "security": [{}, {"bearer": []}],
        "paths": paths,
    }

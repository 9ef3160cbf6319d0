"""The OpenAPI paths of the front doors: the verdict gate, Flagger's webhook, Kayenta's API."""

from __future__ import annotations

from typing import Any

from analysisd.api.openapi_common import KEY, NS, TEMPLATE, json_response, op, ref


def front_door_paths() -> dict[str, Any]:
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
    either = {**text, "application/json": {"schema": ref("Status")}}
    path = "/api/v1/namespaces/{namespace}/verdicts/{key}"
    get = op(
        "getVerdict",
        "The phase of the run started for this key",
        {"200": json_response(verdict, "The run's verdict")},
        params=[NS, KEY],
    )
    post = op(
        "postVerdict",
        "Start one run per key from a template (later calls answer the same run)",
        {"200": json_response(verdict, "The run's verdict")},
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


def kayenta_paths() -> dict[str, Any]:
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

    def json_body(operation: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
        return operation

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
                op(
                    "kayentaRemoteJudge",
                    "Kayenta RemoteJudge: judge a metric set pair list (CanaryJudgeResult)",
                    {"200": json_response(judge_result, "The judgement")},
                    errors=("400", "401", "413"),
                ),
                judge_request,
            ),
        },
        base + "/judges": {
            "get": op(
                "kayentaListJudges",
                "Kayenta: the judges served",
                {"200": json_response({"type": "array", "items": {"type": "object"}}, "Judges")},
                errors=("401",),
            ),
        },
        standalone: {
            "post": json_body(
                op(
                    "kayentaStartAdhocAnalysis",
                    "Kayenta: a standalone canary analysis of an inline config"
                    " ({canaryConfig, executionRequest}); one run of several judgements",
                    {"200": json_response(standalone_ack, "Started")},
                    params=standalone_params,
                    errors=writes,
                ),
                standalone_request,
            ),
        },
        standalone + "/{id}": {
            "post": json_body(
                op(
                    "kayentaStartAnalysis",
                    "Kayenta: a standalone canary analysis of a stored config (id)",
                    {"200": json_response(standalone_ack, "Started")},
                    params=[the_id, *standalone_params],
                    errors=writes,
                ),
                standalone_request,
            ),
            "get": op(
                "kayentaGetAnalysis",
                "Kayenta: a standalone analysis' status (CanaryAnalysisExecutionStatusResponse)",
                {"200": json_response(standalone_status, "Status")},
                params=[the_id, accounts[2]],
                errors=("401", "403", "404"),
            ),
        },
        base + "/canaryConfig": {
            "get": op(
                "kayentaListCanaryConfigs",
                "Kayenta: canary configs of ?application= (or the default namespace)",
                {"200": json_response({"type": "array", "items": summary}, "Config summaries")},
                params=[application, accounts[1]],
                errors=("400", "401", "403"),
            ),
            "post": json_body(
                op(
                    "kayentaCreateCanaryConfig",
                    "Kayenta: store a canary config",
                    {"200": json_response(config_ack, "Stored")},
                    params=[application, accounts[1]],
                    errors=("400", "401", "403", "409", "413"),
                ),
                anything,
            ),
        },
        base + "/canaryConfig/{configId}": {
            "get": op(
                "kayentaGetCanaryConfig",
                "Kayenta: a canary config",
                {"200": json_response(anything, "The config")},
                params=[config_id, accounts[1]],
                errors=("401", "403", "404"),
            ),
            "put": json_body(
                op(
                    "kayentaReplaceCanaryConfig",
                    "Kayenta: replace a canary config",
                    {"200": json_response(config_ack, "Stored")},
                    params=[config_id, application, accounts[1]],
                    errors=("400", "401", "403", "404", "413"),
                ),
                anything,
            ),
            "delete": op(
                "kayentaDeleteCanaryConfig",
                "Kayenta: delete a canary config",
                {"204": {"description": "Deleted"}},
                params=[config_id, accounts[1]],
                errors=("401", "403", "404"),
            ),
        },
        base + "/canary/{id}": {
            "post": json_body(
                op(
                    "kayentaStartCanary",
                    "Kayenta: one canary judgement (an AnalysisRun) as Argo's kayenta provider"
                    " starts it",
                    {
                        "200": json_response(
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
            "get": op(
                "kayentaGetCanary",
                "Kayenta: a canary execution's status (CanaryExecutionStatusResponse)",
                {"200": json_response(canary_status, "Status")},
                params=[the_id],
                errors=("401", "403", "404"),
            ),
        },
    }

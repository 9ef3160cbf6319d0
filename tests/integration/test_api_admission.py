"""Decide at the door, over real HTTP: every input that cannot run is a 400 naming its field.

Never a 500, never a 201 for something that cannot run, and nothing stored: the daemon
(SQLite, real aiohttp app on loopback) is asked for its runs after each refusal.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.rig import SCRIPTED_URL, ScriptedSource, running_daemon, settings_for

RUNS = "/api/v1/namespaces/team-a/analysisruns"
TEMPLATES = "/api/v1/namespaces/team-a/analysistemplates"
WEB = {"web": {"url": "http://metrics.example/api"}}


def run_body(*metrics: dict[str, Any], name: str = "r", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": name},
        "spec": {"metrics": list(metrics), **spec},
    }


def metric(**fields: Any) -> dict[str, Any]:
    return {"name": "m", "provider": WEB, **fields}


class Api:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def send(self, method: str, path: str, data: str | None = None) -> tuple[int, Any]:
        async with self.session.request(method, self.base + path, data=data) as resp:
            return resp.status, await resp.json()

    async def refused(self, method: str, path: str, data: str | None = None) -> dict[str, Any]:
        status, body = await self.send(method, path, data)
        assert status == 400, body
        assert body["kind"] == "Status" and body["code"] == 400
        assert "Traceback" not in body["message"]
        return dict(body)

    async def stored_runs(self) -> list[Any]:
        status, body = await self.send("GET", RUNS)
        assert status == 200
        return list(body["items"])


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with (
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as session,
    ):
        yield Api(session, base)


RUN_INPUTS = [
    pytest.param(
        metric(successCondition="result >="), "spec.metrics[0].successCondition", id="condition"
    ),
    pytest.param(
        metric(provider={"web": {"url": "http://x", "jsonPath": "{.a[?(@.b=="}}),
        "spec.metrics[0].provider.web.jsonPath",
        id="jsonPath",
    ),
    pytest.param(
        metric(provider={"web": {"timeoutSeconds": 5}}),
        "spec.metrics[0].provider.web.url",
        id="web-without-url",
    ),
    pytest.param(
        metric(provider={"web": {"url": "file:///etc/passwd"}}),
        "spec.metrics[0].provider.web.url",
        id="file-url",
    ),
    pytest.param(
        metric(provider={"web": {"url": "http://x", "method": "DELETE"}}),
        "spec.metrics[0].provider.web.method",
        id="method-DELETE",
    ),
    pytest.param(
        metric(
            provider={
                "web": {
                    "url": "http://x",
                    "headers": [{"key": "Authorization", "valueFrom": {"secretKeyRef": {}}}],
                }
            }
        ),
        "spec.metrics[0].provider.web.headers[0].value",
        id="header-valueFrom-without-value",
    ),
    pytest.param(
        metric(provider={"prometheus": {"address": "http://prom:9090"}}),
        "spec.metrics[0].provider.prometheus.query",
        id="prometheus-without-query",
    ),
    pytest.param(
        metric(provider={"prometheus": {"address": "not a url", "query": "up"}}),
        "spec.metrics[0].provider.prometheus.address",
        id="prometheus-address-not-a-url",
    ),
    pytest.param(metric(interval="0s"), "spec.metrics[0].interval", id="interval-0s"),
    pytest.param(metric(interval="-10s"), "spec.metrics[0].interval", id="interval-negative"),
    pytest.param(
        metric(initialDelay="-10s"), "spec.metrics[0].initialDelay", id="initialDelay-negative"
    ),
    pytest.param(metric(count=-1, interval="1s"), "spec.metrics[0].count", id="count-minus-1"),
    pytest.param(
        metric(count=2**63, interval="1s"), "spec.metrics[0].count", id="count-2-to-the-63"
    ),
    pytest.param(
        metric(interval="1" * 5000 + "s"), "spec.metrics[0].interval", id="5000-digit-duration"
    ),
    pytest.param(
        metric(initialDelay="9" * 5000 + "h"),
        "spec.metrics[0].initialDelay",
        id="5000-digit-initialDelay",
    ),
    pytest.param(
        metric(provider={"plugin": {"grafana/k6": {}}}),
        "spec.metrics[0].provider.plugin",
        id="kind-analysisd-does-not-run",
    ),
]


@pytest.mark.parametrize(("spec_metric", "field"), RUN_INPUTS)
async def test_run_that_cannot_run_is_a_400_naming_the_field(
    api: Api, spec_metric: dict[str, Any], field: str
) -> None:
    body = await api.refused("POST", RUNS, json.dumps(run_body(spec_metric)))
    assert body["details"]["field"] == field
    assert field in body["message"]
    assert await api.stored_runs() == []


async def test_every_problem_is_listed_in_details_causes(api: Api) -> None:
    bad = run_body(
        metric(name="a", interval="0s"),
        metric(name="b", successCondition="result >", provider={"web": {"url": "ftp://x"}}),
    )
    body = await api.refused("POST", RUNS, json.dumps(bad))
    assert [c["field"] for c in body["details"]["causes"]] == [
        "spec.metrics[0].interval",
        "spec.metrics[1].provider.web.url",
        "spec.metrics[1].successCondition",
    ]


async def test_ttl_strategy_null_is_accepted(api: Api) -> None:
    good = run_body(
        {"name": "m", "provider": {"web": {"url": SCRIPTED_URL, "value": 1}}}, ttlStrategy=None
    )
    status, body = await api.send("POST", RUNS, json.dumps(good))
    assert status == 201, body


@pytest.mark.parametrize(
    ("namespace", "shown"),
    [
        ("..%2F..%2Fetc", "../../etc"),
        ("a%20b%00c", "a b\0c"),
        ("x" * 5000, "x" * 5000),
        ("Team-A", "Team-A"),
    ],
    ids=["dot-dot", "space-and-nul", "5000-characters", "uppercase"],
)
async def test_bad_namespace_in_the_path_is_a_400(api: Api, namespace: str, shown: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/analysisruns"
    for method, data, suffix in (
        ("POST", json.dumps(run_body(metric())), ""),
        ("GET", None, ""),
        ("GET", None, "/r"),
        ("POST", None, "/r/terminate"),
        ("DELETE", None, "/r"),
        ("GET", None, "/r/events"),
        ("GET", None, "/r/measurements"),
    ):
        body = await api.refused(method, path + suffix, data)
        assert body["details"]["field"] == "namespace"
    body = await api.refused(
        "POST", f"/api/v1/namespaces/{namespace}/analysistemplates", json.dumps({})
    )
    assert body["details"]["field"] == "namespace"


async def test_bad_name_in_the_path_is_a_400(api: Api) -> None:
    body = await api.refused("GET", RUNS + "/Not_A_Name")
    assert body["details"]["field"] == "name"
    body = await api.refused("GET", RUNS + "/" + "x" * 300)
    assert body["details"]["field"] == "name"
    body = await api.refused("GET", RUNS + "/Not_A_Name/events")
    assert body["details"]["field"] == "name"


async def test_bad_metadata_names_are_a_400(api: Api) -> None:
    body = await api.refused("POST", RUNS, json.dumps(run_body(metric(), name="a b")))
    assert body["details"]["field"] == "metadata.name"
    bad_namespace = run_body(metric())
    bad_namespace["metadata"]["namespace"] = "../../etc"
    body = await api.refused("POST", RUNS, json.dumps(bad_namespace))
    assert body["details"]["field"] == "metadata.namespace"


@pytest.mark.parametrize("depth", [200, 30_000, 100_000])
async def test_deeply_nested_bodies_are_a_400(api: Api, depth: int) -> None:
    yaml_body = "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisRun\nspec: " + (
        "[" * depth + "]" * depth
    )
    json_body = '{"templates": ' + "[" * depth + "]" * depth + "}"
    for text in (yaml_body, json_body, "templates: " + "[" * depth + "]" * depth):
        body = await api.refused("POST", RUNS, text)
        assert "nested" in body["message"]
        assert body["details"]["field"] == "body"
    body = await api.refused("POST", TEMPLATES, yaml_body.replace("AnalysisRun", "Template"))
    assert await api.stored_runs() == []


async def test_five_thousand_digit_count_is_a_400_naming_it(api: Api) -> None:
    text = json.dumps(run_body(metric(count=1))).replace('"count": 1', '"count": ' + "9" * 5000)
    body = await api.refused("POST", RUNS, text)
    assert body["details"]["field"] == "spec.metrics[0].count"


def template(*metrics: dict[str, Any]) -> str:
    return json.dumps(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AnalysisTemplate",
            "metadata": {"name": "t"},
            "spec": {"args": [{"name": "url"}, {"name": "limit"}], "metrics": list(metrics)},
        }
    )


async def test_template_waiting_for_arguments_is_accepted(api: Api) -> None:
    waiting = metric(
        successCondition="result >= {{args.limit}}", provider={"web": {"url": "{{args.url}}"}}
    )
    status, body = await api.send("POST", TEMPLATES, template(waiting))
    assert status == 201, body


@pytest.mark.parametrize(
    ("spec_metric", "field"),
    [
        (metric(successCondition="result >= {{args.limit}} &&"), "successCondition"),
        (metric(interval="0s"), "interval"),
        (
            metric(provider={"web": {"url": "{{args.url}}", "jsonPath": "{$.a["}}),
            "provider.web.jsonPath",
        ),
        (metric(provider={"kayenta": {"address": "http://k"}}), "provider.kayenta"),
    ],
    ids=["condition", "interval-0s", "jsonPath", "kind-analysisd-does-not-run"],
)
async def test_template_that_can_never_run_is_a_400(
    api: Api, spec_metric: dict[str, Any], field: str
) -> None:
    body = await api.refused("POST", TEMPLATES, template(spec_metric))
    assert body["details"]["field"].startswith(f"spec.metrics[0].{field}")
    status, listed = await api.send("GET", TEMPLATES)
    assert (status, listed["items"]) == (200, [])

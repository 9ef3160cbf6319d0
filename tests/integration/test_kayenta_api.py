"""The Kayenta API (/kayenta) over real HTTP against an in-process daemon: canary configs
(Kayenta's own samples load unchanged), bad input (400 naming the field, 404, never a
5xx), the namespace rule and tokens, RemoteJudge, and executions fetched from a
loopback Prometheus-compatible endpoint that records the queries asked."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import math
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from analysisd.config import Account, KayentaSettings
from analysisd.judge.config import parse_canary_config
from analysisd.judge.judge import judge
from tests.e2e.rig import running_daemon, settings_for

DATA = Path(__file__).resolve().parents[1] / "data" / "kayenta"
SAMPLES = {path.stem: json.loads(path.read_text()) for path in sorted(DATA.glob("*.json"))}
ADDED = {"id", "createdTimestamp", "createdTimestampIso", "updatedTimestamp", "updatedTimestampIso"}
KAYENTA = KayentaSettings("kayenta", {"checkout": "shop", "payments": "pay"})


@asynccontextmanager
async def fake_prometheus() -> AsyncIterator[tuple[str, list[str]]]:
    """query_range answers: a series of 30 points, around 1.0, or 3.0 when the query
    names "bad" (a canary that got worse). The queries asked are kept."""
    asked: list[str] = []

    async def query_range(request: web.Request) -> web.Response:
        params = dict(request.query)
        if request.method == "POST":
            params.update(dict(await request.post()))  # type: ignore[arg-type]
        query = str(params["query"])
        asked.append(query)
        start = float(params["start"]) if params["start"][0].isdigit() else 0.0
        level = 3.0 if "bad" in query else 1.0
        values = [[start + 60 * i, str(level + 0.01 * (i % 7))] for i in range(30)]
        return web.json_response(
            {
                "status": "success",
                "data": {"resultType": "matrix", "result": [{"metric": {}, "values": values}]},
            }
        )

    app = web.Application()
    app.router.add_route("*", "/api/v1/query_range", query_range)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", asked
    finally:
        await runner.cleanup()


@asynccontextmanager
async def kayenta_daemon(
    tmp_path: Path, prometheus: str = "http://127.0.0.1:9", **overrides: Any
) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    accounts = {
        "prom": Account("prom", "prometheus", {"address": prometheus}),
        "dd": Account("dd", "datadog", {}),
    }
    settings = settings_for(tmp_path, accounts=accounts, kayenta=KAYENTA, **overrides)
    async with running_daemon(settings) as (_, base), aiohttp.ClientSession() as session:
        yield base, session


def config(
    name: str = "cpu", applications: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "applications": applications if applications is not None else ["checkout"],
        "judge": {"name": "NetflixACAJudge-v1.0", "judgeConfigurations": {}},
        "metrics": [
            {
                "name": "cpu",
                "query": {
                    "type": "prometheus",
                    "metricName": "cpu_seconds",
                    "customFilterTemplate": "by-version",
                },
                "groups": ["system"],
                "analysisConfigurations": {"canary": {"direction": "increase"}},
                "scopeName": "default",
            }
        ],
        "templates": {"by-version": 'version="${scope}",region="${location}"'},
        "classifier": {"groupWeights": {"system": 100}},
        **extra,
    }


async def call(
    session: aiohttp.ClientSession, method: str, url: str, body: Any = None, **kw: Any
) -> tuple[int, Any]:
    data = body if isinstance(body, str) or body is None else json.dumps(body)
    headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
    async with session.request(method, url, data=data, headers=headers, **kw) as resp:
        text = await resp.text()
        return resp.status, (json.loads(text) if text else None)


def scopes(
    control: str = "stable", experiment: str = "canary", minutes: int = 30, **side: Any
) -> dict[str, Any]:
    end = datetime.now(UTC).replace(microsecond=0)
    window = {
        "start": (end - timedelta(minutes=minutes)).isoformat(),
        "end": end.isoformat(),
        "step": 60,
        "location": "eu",
        **side,
    }
    return {
        "default": {
            "controlScope": {"scope": control, **window},
            "experimentScope": {"scope": experiment, **window},
        }
    }


@pytest.mark.parametrize("sample", sorted(SAMPLES))
async def test_kayentas_own_sample_configs_load_unchanged(tmp_path: Path, sample: str) -> None:
    original = SAMPLES[sample]
    async with kayenta_daemon(tmp_path) as (base, s):
        status, ack = await call(
            s, "POST", f"{base}/kayenta/canaryConfig?application=samples", original
        )
        assert status == 200, ack
        status, stored = await call(
            s, "GET", f"{base}/kayenta/canaryConfig/{ack['canaryConfigId']}"
        )
        assert status == 200
        assert stored["id"] == ack["canaryConfigId"]
        # Every field as sent; a config without a name is named by its id, one without
        # applications takes ?application=.
        expected = {"name": ack["canaryConfigId"], "applications": ["samples"], **original}
        assert {k: v for k, v in stored.items() if k not in ADDED} == expected
        status, listed = await call(s, "GET", f"{base}/kayenta/canaryConfig?application=samples")
        assert [entry["id"] for entry in listed] == [ack["canaryConfigId"]]


async def test_canary_config_store_as_kayentas(tmp_path: Path) -> None:
    async with kayenta_daemon(tmp_path) as (base, s):
        url = f"{base}/kayenta/canaryConfig"
        status, ack = await call(s, "POST", url, config(id="cpu-1"))
        assert (status, ack) == (200, {"canaryConfigId": "cpu-1"})
        status, again = await call(s, "POST", url, config(id="cpu-1"))
        assert status == 409 and again["details"]["field"] == "id"
        status, other = await call(s, "POST", url, config("payments-cpu", ["payments"]))
        assert status == 200 and other["canaryConfigId"] != "cpu-1"

        status, listed = await call(s, "GET", url + "?application=checkout")
        assert [(e["id"], e["name"], e["applications"]) for e in listed] == [
            ("cpu-1", "cpu", ["checkout"])
        ]
        assert isinstance(listed[0]["updatedTimestamp"], int)
        assert listed[0]["updatedTimestampIso"].endswith("Z")
        status, both = await call(s, "GET", url + "?application=checkout&application=payments")
        assert sorted(e["name"] for e in both) == ["cpu", "payments-cpu"]
        status, default = await call(s, "GET", url)  # the default namespace holds neither
        assert (status, default) == (200, [])

        status, ack = await call(s, "PUT", url + "/cpu-1", config(description="v2"))
        assert (status, ack) == (200, {"canaryConfigId": "cpu-1"})
        status, stored = await call(s, "GET", url + "/cpu-1")
        assert stored["description"] == "v2" and stored["id"] == "cpu-1"
        assert stored["createdTimestamp"] <= stored["updatedTimestamp"]
        status, _ = await call(s, "PUT", url + "/nope", config())
        assert status == 404

        status, body = await call(s, "DELETE", url + "/cpu-1")
        assert (status, body) == (204, None)
        assert (await call(s, "GET", url + "/cpu-1"))[0] == 404
        assert (await call(s, "DELETE", url + "/cpu-1"))[0] == 404


def start_url(base: str, config_id: str, account: str = "prom", app: str = "checkout") -> str:
    return (
        f"{base}/kayenta/canary/{config_id}?application={app}&metricsAccountName={account}"
        "&configurationAccountName=store&storageAccountName=store"
    )


async def test_bad_input_is_a_400_naming_the_field_or_a_404_never_a_5xx(tmp_path: Path) -> None:
    async with kayenta_daemon(tmp_path) as (base, s):
        await call(s, "POST", f"{base}/kayenta/canaryConfig", config(id="cpu"))
        good = {"scopes": scopes(), "thresholds": {"pass": 90, "marginal": 75}}
        no_start = scopes()
        del no_start["default"]["controlScope"]["start"]
        backwards = scopes()
        backwards["default"]["experimentScope"]["end"] = "2001-01-01T00:00:00Z"
        datadog_config = config(
            id="dd", metrics=[{**config()["metrics"][0], "query": {"type": "datadog"}}]
        )
        cases: list[tuple[str, str, Any, int, str | None]] = [
            ("POST", "/kayenta/canaryConfig", "{not json", 400, "body"),
            ("POST", "/kayenta/canaryConfig", [1], 400, "body"),
            ("POST", "/kayenta/canaryConfig", config(metrics="cpu"), 400, "metrics"),
            ("POST", "/kayenta/canaryConfig", config(name="no spaces"), 400, "name"),
            ("POST", "/kayenta/canaryConfig", config(applications="checkout"), 400, "applications"),
            (
                "POST",
                "/kayenta/canaryConfig",
                config(applications=["checkout", "payments"]),
                400,
                "applications",
            ),
            ("GET", "/kayenta/canaryConfig/unknown", None, 404, None),
            ("GET", "/kayenta/canaryConfig/..%2Fetc", None, 404, None),
            (
                "POST",
                "/kayenta/canary/unknown?application=checkout&metricsAccountName=prom",
                good,
                404,
                None,
            ),
            ("POST", start_url("", "cpu", account="nope"), good, 400, "metricsAccountName"),
            ("POST", start_url("", "cpu"), {"thresholds": {"pass": 90}}, 400, "scopes"),
            (
                "POST",
                start_url("", "cpu"),
                {"scopes": no_start},
                400,
                "scopes.default.controlScope.start",
            ),
            (
                "POST",
                start_url("", "cpu"),
                {"scopes": backwards},
                400,
                "scopes.default.experimentScope.end",
            ),
            (
                "POST",
                start_url("", "cpu"),
                {"scopes": scopes(start="yesterday")},
                400,
                "scopes.default.controlScope.start",
            ),
            (
                "POST",
                start_url("", "cpu"),
                {**good, "thresholds": {"pass": 50, "marginal": 75}},
                400,
                "thresholds.marginal",
            ),
            (
                "POST",
                start_url("", "cpu"),
                {"scopes": {"other": scopes()["default"]}},
                400,
                "scopes.default",
            ),
            (
                "POST",
                start_url("", "cpu"),
                {"scopes": scopes(step=3600)},
                400,
                "scopes.default.experimentScope.step",
            ),
            ("GET", "/kayenta/canary/garbage", None, 404, None),
            ("GET", "/kayenta/canary/shop.kayenta-canary-none", None, 404, None),
            ("GET", "/kayenta/standalone_canary_analysis/shop.x", None, 404, None),
            (
                "POST",
                "/kayenta/standalone_canary_analysis?metricsAccountName=prom",
                {},
                400,
                "canaryConfig",
            ),
            (
                "POST",
                "/kayenta/standalone_canary_analysis/cpu?application=checkout"
                "&metricsAccountName=prom",
                {"scopes": [{"controlScope": "a"}]},
                400,
                "thresholds",
            ),
            (
                "POST",
                "/kayenta/standalone_canary_analysis/cpu?application=checkout"
                "&metricsAccountName=prom",
                {"scopes": [{}], "thresholds": {"pass": 90, "marginal": 75}},
                400,
                "lifetimeDurationMins",
            ),
            (
                "POST",
                "/kayenta/standalone_canary_analysis/cpu?application=checkout"
                "&metricsAccountName=prom",
                {
                    "scopes": [{"controlOffsetInMinutes": 5}],
                    "thresholds": {"pass": 90, "marginal": 75},
                    "lifetimeDurationMins": 5,
                },
                400,
                "scopes[0].controlOffsetInMinutes",
            ),
            (
                "POST",
                "/kayenta/standalone_canary_analysis?metricsAccountName=prom",
                {"canaryConfig": config(), "executionRequest": {"thresholds": {}}},
                400,
                "executionRequest.scopes",
            ),
            (
                "POST",
                "/kayenta/judge",
                {
                    "canaryConfig": config(),
                    "metricSetPairList": [
                        {"name": "memory", "values": {"control": [1], "experiment": [1]}}
                    ],
                },
                400,
                "metricSetPairList[0].name",
            ),
            (
                "POST",
                "/kayenta/judge",
                {
                    "canaryConfig": config(),
                    "metricSetPairList": [
                        {"name": "cpu", "values": {"control": ["x"], "experiment": [1]}}
                    ],
                },
                400,
                "metricSetPairList[0].values.control",
            ),
        ]
        cases.append(
            (
                "POST",
                "/kayenta/standalone_canary_analysis/cpu?application=checkout"
                "&metricsAccountName=prom",
                {
                    "scopes": [{"controlScope": "a", "experimentScope": "b"}],
                    "thresholds": {"pass": 90, "marginal": 75},
                    "lifetimeDurationMins": 1e300,
                },
                400,
                "lifetimeDurationMins",
            )
        )
        shorter = scopes()
        moment = datetime.fromisoformat(shorter["default"]["controlScope"]["start"])
        shorter["default"]["controlScope"]["start"] = (moment + timedelta(minutes=5)).isoformat()
        later = scopes()
        for side in ("start", "end"):
            moment = datetime.fromisoformat(later["default"]["controlScope"][side])
            later["default"]["controlScope"][side] = (moment + timedelta(minutes=5)).isoformat()
        earlier = scopes()
        for side in ("start", "end"):
            moment = datetime.fromisoformat(earlier["default"]["controlScope"][side])
            earlier["default"]["controlScope"][side] = (moment - timedelta(days=7)).isoformat()
        status, answer = await call(s, "POST", base + start_url("", "cpu"), {"scopes": earlier})
        assert status == 200, answer  # a week-old baseline: the judge's baselineOffset
        cases += [
            (
                "POST",
                start_url("", "cpu"),
                {"scopes": later},
                400,
                "scopes.default.controlScope.start",
            ),
        ]
        cases.append(
            ("POST", start_url("", "cpu"), {"scopes": shorter}, 400, "scopes.default.controlScope")
        )
        # Found by fuzzing: a weight past any share of 100 made the score's arithmetic
        # overflow (a 500); a template name that is not a string did too.
        huge = config(classifier={"groupWeights": {"a": 1, "b": 1e308}})
        cases.append(
            (
                "POST",
                "/kayenta/judge",
                {"canaryConfig": huge, "metricSetPairList": []},
                400,
                "canaryConfig.classifier.groupWeights",
            )
        )
        odd_template = config(id="odd")
        odd_template["metrics"][0]["query"]["customFilterTemplate"] = {"a": 1}
        status, _ = await call(s, "POST", f"{base}/kayenta/canaryConfig", odd_template)
        assert status == 200  # our judge does not read queries; the fetch does
        cases.append(("POST", start_url("", "odd"), good, 400, "canaryConfig.metrics[0].query"))
        status, _ = await call(s, "POST", f"{base}/kayenta/canaryConfig", datadog_config)
        assert status == 200
        cases.append(("POST", start_url("", "dd"), good, 400, "canaryConfig.metrics[0].query"))
        for method, path, body, want, field in cases:
            status, answer = await call(s, method, base + path, body)
            assert status == want, (method, path, answer)
            if field is not None:
                assert answer["details"]["field"] == field, (path, answer)
                assert (
                    answer["message"].startswith(field.split("[")[0]) or field in answer["message"]
                ), answer


async def test_remote_judge_answers_kayentas_canary_judge_result(tmp_path: Path) -> None:
    control = [1.0 + 0.01 * (i % 5) for i in range(40)]
    experiment = [2.0 + 0.01 * (i % 5) for i in range(40)]
    canary_config = config()
    request = {
        "canaryConfig": canary_config,
        "scoreThresholds": {"pass": 90, "marginal": 70},
        "metricSetPairList": [
            {
                "name": "cpu",
                "id": "a1",
                "tags": {},
                "values": {"control": [*control, "NaN"], "experiment": [None, *experiment]},
                "scopes": {
                    "control": {"startTimeIso": "2026-01-01T00:00:00Z", "stepMillis": 60000},
                    "experiment": {"startTimeIso": "2026-01-01T00:00:00Z", "stepMillis": 60000},
                },
                "attributes": {},
            }
        ],
    }
    async with kayenta_daemon(tmp_path) as (base, s):
        status, result = await call(s, "POST", f"{base}/kayenta/judge", request)
        status_judges, judges = await call(s, "GET", f"{base}/kayenta/judges")
    assert status == 200, result
    direct = judge(
        parse_canary_config(canary_config),
        {"cpu": (control, experiment)},
        pass_threshold=90,
        marginal_threshold=70,
    )
    assert result["judgeName"] == "NetflixACAJudge-v1.0"
    assert result["score"]["score"] == direct.score == 0
    assert result["score"]["classification"] == "Fail"
    [metric] = result["results"]
    assert metric["classification"] == "High"
    assert metric["controlMetadata"]["stats"]["count"] == 40  # NaN removed
    assert math.isclose(metric["resultMetadata"]["ratio"], 2.0, rel_tol=0.02)
    assert metric["explanation"]["why"]
    assert result["groupScores"] == [
        {"name": "system", "score": 0.0, "classification": "", "classificationReason": ""}
    ]
    assert status_judges == 200 and judges == [{"name": "NetflixACAJudge-v1.0", "visible": True}]


async def test_executions_run_in_the_applications_namespace_with_kayentas_queries(
    tmp_path: Path,
) -> None:
    async with (
        fake_prometheus() as (prometheus, asked),
        kayenta_daemon(tmp_path, prometheus) as (base, s),
    ):
        await call(s, "POST", f"{base}/kayenta/canaryConfig", config(id="cpu"))
        body = {"scopes": scopes("good", "bad"), "thresholds": {"pass": 90, "marginal": 75}}
        url = start_url(base, "cpu") + "&parentPipelineExecutionId=pipe-1"
        status, started = await call(s, "POST", url, body)
        assert status == 200, started
        execution = started["canaryExecutionId"]
        assert execution.startswith("shop.")
        async with asyncio.timeout(30):
            while True:
                status, state = await call(s, "GET", f"{base}/kayenta/canary/{execution}")
                assert status == 200 and isinstance(state["complete"], bool)
                if state["complete"]:
                    break
                assert state["status"] == "running" and state["result"] is None
                await asyncio.sleep(0.05)
        status, runs = await call(s, "GET", f"{base}/api/v1/namespaces/shop/analysisruns")
    # The queries PrometheusMetricsService builds: avg(metric{custom filter parts}).
    assert sorted(set(asked)) == [
        'avg(cpu_seconds{version="bad",region="eu"})',
        'avg(cpu_seconds{version="good",region="eu"})',
    ]
    assert state["status"] == "succeeded" and state["canaryConfigId"] == "cpu"
    assert state["result"]["judgeResult"]["score"] == {
        "score": 0.0,
        "classification": "Fail",
        "classificationReason": state["result"]["judgeResult"]["score"]["classificationReason"],
    }
    assert state["metricsAccountName"] == "prom" and state["storageAccountName"] == "store"
    assert state["canaryExecutionRequest"] == body
    assert state["parentPipelineExecutionId"] == "pipe-1" and state["application"] == "checkout"
    assert state["config"]["name"] == "cpu"
    [run] = runs["items"]
    assert execution == "shop." + run["metadata"]["name"]
    assert run["metadata"]["labels"]["analysisd.io/front-door"] == "kayenta"
    assert run["status"]["phase"] == "Failed"


async def test_tokens_and_the_application_namespace_rule(tmp_path: Path) -> None:
    tokens = {"shop-t": ("shop",), "default-t": ("kayenta",), "admin-t": ("*",)}
    async with kayenta_daemon(tmp_path, tokens=tokens) as (base, s):
        url = f"{base}/kayenta/canaryConfig"

        def auth(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        assert (await call(s, "POST", url, config(id="cpu")))[0] == 401
        status, refused = await call(s, "POST", url, config(id="cpu"), headers=auth("default-t"))
        assert status == 403 and '"shop"' in refused["message"]
        assert (await call(s, "POST", url, config(id="cpu"), headers=auth("shop-t")))[0] == 200
        # An application without a mapping lives in the default namespace.
        assert (
            await call(
                s, "POST", url, config(id="misc", applications=["misc"]), headers=auth("shop-t")
            )
        )[0] == 403
        assert (
            await call(
                s, "POST", url, config(id="misc", applications=["misc"]), headers=auth("default-t")
            )
        )[0] == 200
        # Reads by id find only what the token may read.
        assert (await call(s, "GET", url + "/cpu", headers=auth("default-t")))[0] == 404
        assert (await call(s, "GET", url + "/cpu", headers=auth("admin-t")))[0] == 200
        status, listed = await call(s, "GET", url + "?application=misc", headers=auth("admin-t"))
        assert [e["id"] for e in listed] == ["misc"]
        # Basic auth's password is the token (Go clients send URL userinfo so).
        basic = "Basic " + base64.b64encode(b"argo:shop-t").decode()
        assert (await call(s, "GET", url + "/cpu", headers={"Authorization": basic}))[0] == 200
        # The RemoteJudge computes for any valid token.
        judge_body = {"canaryConfig": config(), "metricSetPairList": []}
        assert (
            await call(s, "POST", f"{base}/kayenta/judge", judge_body, headers=auth("default-t"))
        )[0] == 200
        assert (await call(s, "POST", f"{base}/kayenta/judge", judge_body))[0] == 401


async def test_an_execution_ended_without_a_judgement_completes_with_no_score(
    tmp_path: Path,
) -> None:
    """Terminated before its series could be fetched (the account's address refuses):
    complete, no result, so Argo's provider reads no score and errs, as with Kayenta."""
    async with kayenta_daemon(tmp_path) as (base, s):
        await call(s, "POST", f"{base}/kayenta/canaryConfig", config(id="cpu"))
        body = {"scopes": scopes(), "thresholds": {"pass": 90, "marginal": 75}}
        status, started = await call(s, "POST", start_url(base, "cpu"), body)
        assert status == 200, started
        execution = started["canaryExecutionId"]
        status, running = await call(s, "GET", f"{base}/kayenta/canary/{execution}")
        assert (status, running["complete"], running["result"]) == (200, False, None)
        namespace, name = execution.split(".", 1)
        status, _ = await call(
            s, "POST", f"{base}/api/v1/namespaces/{namespace}/analysisruns/{name}/terminate"
        )
        assert status == 202
        async with asyncio.timeout(30):
            while True:
                status, done = await call(s, "GET", f"{base}/kayenta/canary/{execution}")
                if done["complete"]:
                    break
                await asyncio.sleep(0.05)
    assert status == 200 and done["complete"] is True
    assert done["result"] is None and done["status"] == "canceled"
    assert done["exception"]["message"]


WEIRD: list[Any] = [None, 0, -1, 1e308, 2**70, "", "x", "NaN", "2026-01-01T00:00:00Z", [], {}]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*path, index))
    return out


def mutated(body: Any, rnd: random.Random) -> Any:
    """`body` with one to three fields replaced by odd values (or dropped)."""
    out = copy.deepcopy(body)
    paths = _paths(out)
    for _ in range(rnd.randint(1, 3)):
        *parents, last = rnd.choice(paths)
        holder = out
        try:
            for key in parents:
                holder = holder[key]
            if isinstance(holder, dict) and rnd.random() < 0.2:
                del holder[last]
            else:
                holder[last] = rnd.choice(WEIRD)
        except (KeyError, IndexError, TypeError):
            continue
    return out


async def test_mutated_kayenta_bodies_never_get_a_server_error(tmp_path: Path) -> None:
    """Valid requests with fields swapped for odd values: 200 or a 4xx, never a 5xx."""
    rnd = random.Random(11)
    stand = {
        "scopes": [
            {
                "scopeName": "default",
                "controlScope": "a",
                "experimentScope": "b",
                "startTimeIso": "2026-12-05T06:00:00Z",
                "endTimeIso": "2026-12-05T07:00:00Z",
                "step": 60,
                "extendedScopeParams": {"k": "v"},
            }
        ],
        "thresholds": {"pass": 90, "marginal": 75},
        "lifetimeDurationMins": 60,
        "analysisIntervalMins": 20,
        "lookbackMins": 10,
    }
    pairs = [{"name": "cpu", "values": {"control": [1, 2, 3], "experiment": [1, 2, 4]}}]
    targets = [
        (
            "/kayenta/canary/cpu?application=checkout&metricsAccountName=prom",
            {"scopes": scopes(), "thresholds": {"pass": 90, "marginal": 75}},
        ),
        (
            "/kayenta/standalone_canary_analysis/cpu?application=checkout&metricsAccountName=prom",
            stand,
        ),
        (
            "/kayenta/standalone_canary_analysis?application=checkout&metricsAccountName=prom",
            {"canaryConfig": config(), "executionRequest": stand},
        ),
        ("/kayenta/judge", {"canaryConfig": config(), "metricSetPairList": pairs}),
        ("/kayenta/canaryConfig?application=checkout", config()),
    ]
    seen: dict[int, int] = {}
    async with kayenta_daemon(tmp_path) as (base, s):
        await call(s, "POST", f"{base}/kayenta/canaryConfig", config(id="cpu"))
        for _ in range(300):
            path, body = rnd.choice(targets)
            status, answer = await call(s, "POST", base + path, mutated(body, rnd))
            seen[status] = seen.get(status, 0) + 1
            assert status < 500, (path, answer)
    assert seen.get(200) and seen.get(400)  # both kinds of answer were reached

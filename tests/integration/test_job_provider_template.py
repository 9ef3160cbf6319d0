"""A real-world-shaped job AnalysisTemplate, linted and run by the daemon against the local
Kubernetes API (tests/rigs/kube_api.py), its cluster given in a settings file.

The template has the shape public job templates share (Argo's field names exactly): a
`curl` smoke test and a `k6` load test as Job containers, arguments substituted into
their command lines, a pod label to keep a mesh sidecar out, `ttlSecondsAfterFinished`.
A plugin template (k6 as an Argo RPC plugin) is linted too: one sentence naming it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from analysisd.cli import main
from analysisd.config import load_settings
from analysisd.daemon import Daemon
from providers.job.manifest import METRIC_NAME_ANNOTATION, RUN_NAME_ANNOTATION, RUN_UID_LABEL
from tests.rigs.kube_api import KubeAPI

pytestmark = pytest.mark.integration

NAMESPACE = "jobs"
TEMPLATE = """\
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: smoke-and-load
spec:
  args:
  - name: service-name
  - name: canary-url
  metrics:
  - name: smoke-test
    count: 1
    failureLimit: 0
    provider:
      job:
        metadata:
          labels:
            app: smoke-test
          annotations:
            owner: checkout-team
        spec:
          backoffLimit: 1
          ttlSecondsAfterFinished: 600
          template:
            metadata:
              labels:
                sidecar.istio.io/inject: "false"
            spec:
              restartPolicy: Never
              containers:
              - name: smoke-test
                image: curlimages/curl:8.8.0
                command: [sh, -c]
                args:
                - curl -fsS --retry 3 http://{{args.service-name}}/healthz
  - name: load-test
    count: 1
    provider:
      job:
        spec:
          backoffLimit: 0
          template:
            spec:
              restartPolicy: Never
              containers:
              - name: k6
                image: grafana/k6:0.52.0
                args: [run, /scripts/load.js, -e, "TARGET={{args.canary-url}}"]
                volumeMounts:
                - name: scripts
                  mountPath: /scripts
              volumes:
              - name: scripts
                configMap:
                  name: k6-scripts
"""
PLUGIN_TEMPLATE = """\
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: k6-plugin
spec:
  metrics:
  - name: k6-load
    successCondition: result.passed == true
    provider:
      plugin:
        grafana/k6:
          testRunId: "1234"
"""
ARGS = {"service-name": "checkout-canary.shop", "canary-url": "http://checkout-canary.shop"}


def test_the_job_template_lints_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "smoke-and-load.yaml"
    path.write_text(TEMPLATE)
    assert main(["lint", str(path)]) == 0
    assert capsys.readouterr().out == ""


def test_the_plugin_template_lint_names_the_plugin_in_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "k6-plugin.yaml"
    path.write_text(PLUGIN_TEMPLATE)
    assert main(["lint", str(path)]) == 1
    (line,) = capsys.readouterr().out.splitlines()
    assert line == (
        f"{path}: spec.metrics[0].provider.plugin: provider kind 'plugin' (plugin "
        "'grafana/k6') is not run by analysisd: Argo Rollouts runs metric plugins as Go "
        "binaries over RPC, which analysisd cannot; see docs/compatibility.md#plugin-metrics"
    )


def settings_for(kube: KubeAPI, tmp_path: Path, **extra: Any) -> Path:
    """A settings file: the daemon's SQLite store in tmp_path, the rig as its cluster."""
    kubeconfig = kube.kubeconfig(tmp_path / "kubeconfig", namespace=NAMESPACE)
    settings_file = tmp_path / "analysisd.yaml"
    settings = {
        "store": f"sqlite:///{tmp_path / 'analysisd.db'}",
        "providers": {"kubernetes": {"kubeconfig": str(kubeconfig)}},
        **extra,
    }
    settings_file.write_text(yaml.safe_dump(settings))
    return settings_file


async def started_daemon(settings_file: Path) -> Daemon:
    daemon = Daemon(load_settings({"config": str(settings_file), "port": 0}))
    await daemon.start()
    return daemon


def run_body(name: str) -> dict[str, Any]:
    template = yaml.safe_load(TEMPLATE)
    spec = template["spec"]
    spec["args"] = [{"name": k, "value": v} for k, v in ARGS.items()]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": name},
        "spec": spec,
    }


async def run_to_the_end(
    base: str, name: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    runs = f"{base}/api/v1/namespaces/shop/analysisruns"
    async with aiohttp.ClientSession() as http:
        async with http.post(runs, json=body or run_body(name)) as response:
            assert response.status == 201, await response.text()
        for _ in range(1000):
            async with http.get(f"{runs}/{name}") as response:
                run: dict[str, Any] = await response.json()
            if (run.get("status") or {}).get("phase") in ("Successful", "Failed", "Error"):
                return run
            await asyncio.sleep(0.02)
    raise AssertionError(f"run {name} did not end: {run.get('status')}")


@pytest.mark.parametrize(
    ("k6_outcome", "phase"), [("Complete", "Successful"), ("Failed", "Failed")]
)
async def test_the_job_template_runs_in_the_daemon_against_the_cluster(
    tmp_path: Path, k6_outcome: str, phase: str
) -> None:
    async with KubeAPI(token="daemon-sa-token") as kube:

        def outcome(job: dict[str, Any]) -> tuple[str | None, float]:
            container = job["spec"]["template"]["spec"]["containers"][0]
            return (k6_outcome if container["name"] == "k6" else "Complete"), 0.05

        kube.outcome = outcome
        settings_file = settings_for(kube, tmp_path)
        daemon = await started_daemon(settings_file)
        try:
            run = await run_to_the_end(
                f"http://127.0.0.1:{daemon.port}", f"release-{phase.lower()}"
            )
        finally:
            await daemon.aclose()
        jobs = {
            job["spec"]["template"]["spec"]["containers"][0]["name"]: job
            for job in kube.jobs.values()
        }

    status = run["status"]
    assert status["phase"] == phase
    results = {r["name"]: r for r in status["metricResults"]}
    assert results["smoke-test"]["phase"] == "Successful"
    assert results["load-test"]["phase"] == phase
    for metric, container in (("smoke-test", "smoke-test"), ("load-test", "k6")):
        (measurement,) = results[metric]["measurements"]
        assert measurement["phase"] == results[metric]["phase"]
        assert measurement.get("message", "") == ""
        assert measurement["metadata"]["job-name"] == jobs[container]["metadata"]["name"]
    smoke, load = jobs["smoke-test"], jobs["k6"]
    # As Argo's: in the run's namespace (not the kubeconfig context's), named
    # <run uid>.<metric>.<n>, the run's uid label and name annotations over the block's.
    uid, name = run["metadata"]["uid"], run["metadata"]["name"]
    for job, metric in ((smoke, "smoke-test"), (load, "load-test")):
        assert job["metadata"]["namespace"] == "shop" != NAMESPACE
        assert job["metadata"]["name"] == f"{uid}.{metric}.1"
        assert job["metadata"]["labels"][RUN_UID_LABEL] == uid
    assert smoke["metadata"]["labels"]["app"] == "smoke-test"
    assert smoke["metadata"]["annotations"] == {
        "owner": "checkout-team",
        RUN_NAME_ANNOTATION: name,
        METRIC_NAME_ANNOTATION: "smoke-test",
    }
    assert smoke["spec"]["ttlSecondsAfterFinished"] == 600
    assert smoke["spec"]["template"]["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"
    assert smoke["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "curl -fsS --retry 3 http://checkout-canary.shop/healthz"
    ]
    assert load["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "run",
        "/scripts/load.js",
        "-e",
        "TARGET=http://checkout-canary.shop",
    ]


async def test_daemon_shutdown_deletes_the_job_of_a_measurement_in_flight(tmp_path: Path) -> None:
    async with KubeAPI(token="daemon-sa-token") as kube:
        kube.outcome = lambda _job: (None, 0.0)  # the Job would run for ever
        settings_file = settings_for(kube, tmp_path, shutdownGrace=0.2)
        daemon = await started_daemon(settings_file)
        try:
            runs = f"http://127.0.0.1:{daemon.port}/api/v1/namespaces/shop/analysisruns"
            body = run_body("long-load-test")
            body["spec"]["metrics"] = body["spec"]["metrics"][1:]  # the k6 Job only
            async with aiohttp.ClientSession() as http, http.post(runs, json=body) as response:
                assert response.status == 201, await response.text()
            await kube.watching.wait()
            ((namespace, name),) = kube.jobs
        finally:
            await daemon.aclose()
        assert kube.deletions == [(namespace, name, "Foreground")]
        assert kube.jobs == {}


async def test_a_job_longer_than_the_measurement_timeout_runs_to_its_end(tmp_path: Path) -> None:
    # As in Argo, a Job metric has no measurement timeout of its own: the Job ends when it
    # completes or fails (or at its activeDeadlineSeconds). The daemon's
    # measurementTimeout (0.2 s here) still cuts off other providers' measurements.
    async with KubeAPI(token="daemon-sa-token") as kube:
        kube.outcome = lambda _job: ("Complete", 1.0)  # five timeouts long
        settings_file = settings_for(kube, tmp_path, measurementTimeout=0.2)
        daemon = await started_daemon(settings_file)
        try:
            body = run_body("slow-load-test")
            body["spec"]["metrics"] = body["spec"]["metrics"][1:]  # the k6 Job only
            run = await run_to_the_end(f"http://127.0.0.1:{daemon.port}", "slow-load-test", body)
        finally:
            await daemon.aclose()
        assert kube.deletions == []
    status = run["status"]
    assert status["phase"] == "Successful", status
    ((result),) = status["metricResults"]
    (measurement,) = result["measurements"]
    assert (measurement["phase"], measurement.get("message", "")) == ("Successful", "")


async def until(check: Any, what: str) -> None:
    """Poll `check()` (the daemon works in its own tasks) until true; no timing asserted."""
    for _ in range(1500):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


async def test_a_daemon_restarted_mid_measurement_takes_its_job_over(tmp_path: Path) -> None:
    # The load test measures twice. The daemon stops while Job 2 runs and, refused the
    # delete (as if killed), leaves it running. The next daemon resumes the run from the
    # store: one measurement counted, so the same Job 2, ours by its uid label, taken
    # over and watched to its end (Argo's Resume); no Job 3, no second Job 2.
    async with KubeAPI(token="daemon-sa-token") as kube:
        kube.outcome = lambda job: (
            ("Complete", 0.0) if job["metadata"]["name"].endswith(".1") else (None, 0.0)
        )
        settings_file = settings_for(kube, tmp_path, shutdownGrace=0.2)
        body = run_body("resumed-load-test")
        metric = body["spec"]["metrics"][1]
        metric.update(count=2, interval="10ms")
        body["spec"]["metrics"] = [metric]  # the k6 Job only

        def watched(name: str) -> bool:
            selector = f"metadata.name={name}"
            return any(
                r.verb == "watch" and r.query.get("fieldSelector") == selector
                for r in kube.requests
            )

        daemon = await started_daemon(settings_file)
        try:
            runs = f"http://127.0.0.1:{daemon.port}/api/v1/namespaces/shop/analysisruns"
            async with aiohttp.ClientSession() as http, http.post(runs, json=body) as response:
                assert response.status == 201, await response.text()
                uid = (await response.json())["metadata"]["uid"]
            second = f"{uid}.load-test.2"
            await until(lambda: watched(second), "Job 2 watched")
            kube.forbidden = {"delete"}
        finally:
            await daemon.aclose()
        assert ("shop", second) in kube.jobs  # left running
        kube.forbidden = set()
        kube.requests.clear()

        daemon = await started_daemon(settings_file)
        try:
            await until(lambda: watched(second), "Job 2 watched after the restart")
            kube.finish("shop", second, "Complete")
            runs = f"http://127.0.0.1:{daemon.port}/api/v1/namespaces/shop/analysisruns"
            run: dict[str, Any] = {}
            async with aiohttp.ClientSession() as http:
                for _ in range(1500):
                    async with http.get(f"{runs}/resumed-load-test") as response:
                        run = await response.json()
                    if (run.get("status") or {}).get("phase") == "Successful":
                        break
                    await asyncio.sleep(0.02)
        finally:
            await daemon.aclose()
    (result,) = run["status"]["metricResults"]
    assert (run["status"]["phase"], result["count"], result["successful"]) == (
        "Successful",
        2,
        2,
    )
    assert [m["metadata"]["job-name"] for m in result["measurements"]] == [
        f"{uid}.load-test.1",
        second,
    ]
    assert sorted(name for _ns, name in kube.jobs) == [f"{uid}.load-test.1", second]
    creates = [r for r in kube.requests if r.verb == "create"]
    assert [r.body["metadata"]["name"] for r in creates] == [second]  # answered 409


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        (
            lambda job: job["spec"]["template"]["spec"].pop("restartPolicy"),
            "spec.template.spec.restartPolicy",
            "job: spec.template.spec.restartPolicy must be Never or OnFailure for a Job, got None",
        ),
        (
            lambda job: job["spec"]["template"]["spec"].update(containers=[]),
            "spec.template.spec.containers",
            "job: spec.template.spec.containers must list at least one container",
        ),
        (
            lambda job: job.pop("spec"),
            "spec",
            "job: spec is required",
        ),
        (
            lambda job: job["metadata"]["labels"].update(tier=1),
            "metadata.labels",
            "job: metadata.labels['tier'] must be a string, got 1",
        ),
    ],
    ids=["no-restartPolicy", "no-containers", "no-spec", "label-not-a-string"],
)
def test_lint_names_the_field_of_a_job_block_that_can_never_run(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    edit: Any,
    field: str,
    message: str,
) -> None:
    template = yaml.safe_load(TEMPLATE)
    edit(template["spec"]["metrics"][0]["provider"]["job"])
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(template))
    assert main(["lint", str(path)]) == 1
    (line,) = capsys.readouterr().out.splitlines()
    assert line == f"{path}: spec.metrics[0].provider.job.{field}: {message}"

"""The job provider through the real kubernetes-asyncio client against tests/rigs/kube_api.py.

Each test takes a measurement the way the engine does (prepare_run, bind_metrics,
take_measurement) for a run with Argo's identity (uid, name, namespace) and checks
the Argo phase and message it ends with, and what the cluster saw: the Job created
(named, labelled and annotated as Argo's), watched, deleted.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from analysisd.config import ConfigError, load_settings
from analysisd.engine.dispatch import bind_metrics, take_measurement
from analysisd.engine.measure import NoSecrets, PreparedRun, prepare_run
from analysisd.spec import AnalysisRunSpec, AnalysisRunStatus, Measurement, ObjectMeta
from providers.base import MeasurementContext
from providers.job.manifest import METRIC_NAME_ANNOTATION, RUN_NAME_ANNOTATION, RUN_UID_LABEL
from providers.job.provider import HISTORY_LIMIT, JobProvider
from providers.limits import LimitsConfig
from providers.registry import ProviderRegistry
from tests.rigs.kube_api import Fault, KubeAPI, status_body

pytestmark = pytest.mark.integration

NAMESPACE = "team-a"  # the run's
RUN_UID = "3f1e0b2a-7c4d-4e8f-9a61-5b2c0d9e8f17"
RUN_NAME = "checkout-canary-7d9f"
METRIC = "smoke-test"
RUN = ObjectMeta(name=RUN_NAME, namespace=NAMESPACE, uid=RUN_UID)
SMOKE: dict[str, Any] = {
    "metadata": {
        "labels": {"app.kubernetes.io/part-of": "checkout"},
        "annotations": {"team": "payments"},
    },
    "spec": {
        "backoffLimit": 0,
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "smoke",
                        "image": "curlimages/curl:8.8.0",
                        "command": ["sh", "-c"],
                        "args": ["curl -fsS http://checkout-canary.team-a/healthz"],
                    }
                ],
            }
        },
    },
}


def now() -> datetime:
    return datetime.now(UTC)


class Cluster:
    """The rig, a kubeconfig for it, and a registry whose settings point at it."""

    def __init__(self, kube: KubeAPI, tmp_path: Path) -> None:
        self.kube = kube
        self.tmp_path = tmp_path
        self.kubeconfig = kube.kubeconfig(tmp_path / "kubeconfig")

    def settings(self, **extra: Any) -> dict[str, Any]:
        """providers.kubernetes without a namespace: Jobs go to the run's namespace."""
        return {"kubernetes": {"kubeconfig": str(self.kubeconfig), **extra}}

    def registry(self, settings: dict[str, Any] | None = None, **limits: Any) -> ProviderRegistry:
        return ProviderRegistry(
            secrets=lambda _name, _key: None,
            settings=self.settings() if settings is None else settings,
            limits=LimitsConfig(**{"backoff_base": 0.01, "backoff_max": 0.05, **limits}),
        )

    def verbs(self) -> list[str]:
        return [r.verb for r in self.kube.requests]


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with KubeAPI(token="rig-token-7f3a") as kube:
        yield Cluster(kube, tmp_path)


def set_up(
    registry: ProviderRegistry,
    config: dict[str, Any] | None = None,
    *,
    meta: ObjectMeta | None = RUN,
    status: AnalysisRunStatus | None = None,
    retention: int | None = None,
) -> PreparedRun:
    """A one-metric run set up as the scheduler sets it up: prepared, then bound with the
    status it starts (None) or resumes from."""
    spec: dict[str, Any] = {"metrics": [{"name": METRIC, "provider": {"job": config or SMOKE}}]}
    if retention is not None:
        spec["measurementRetention"] = [{"metricName": METRIC, "limit": retention}]
    prepared = prepare_run(AnalysisRunSpec.model_validate(spec), NoSecrets(), meta)
    bind_metrics(registry, prepared, status)
    return prepared


async def take(
    registry: ProviderRegistry, prepared: PreparedRun, timeout_seconds: float | None = None
) -> Measurement:
    """One measurement of the run's metric, as the scheduler takes it."""
    return await take_measurement(
        registry,
        prepared,
        prepared.metrics[0],
        clock=now,
        started=now(),
        timeout_seconds=timeout_seconds,
    )


async def measure(
    registry: ProviderRegistry,
    config: dict[str, Any] | None = None,
    *,
    timeout_seconds: float | None = None,
    meta: ObjectMeta | None = RUN,
) -> Measurement:
    """The first measurement of a new one-metric run."""
    return await take(registry, set_up(registry, config, meta=meta), timeout_seconds)


def only_job(kube: KubeAPI) -> dict[str, Any]:
    (job,) = kube.jobs.values()
    return job


# ---------------------------------------------------------------- happy paths


async def test_completed_job_is_successful_and_names_its_job(cluster: Cluster) -> None:
    async with cluster.registry() as registry:
        measurement = await measure(registry)
    assert (measurement.phase, measurement.message) == ("Successful", "")
    job = only_job(cluster.kube)
    meta = job["metadata"]
    assert measurement.metadata is not None
    assert measurement.metadata["job-name"] == meta["name"]
    # Argo's newMetricJob: <run uid>.<metric>.<n> in the run's namespace; the block's
    # labels and annotations with the run's uid label and name annotations; no owner.
    assert meta["name"] == f"{RUN_UID}.{METRIC}.1"
    assert meta["namespace"] == NAMESPACE
    assert meta["labels"]["app.kubernetes.io/part-of"] == "checkout"
    assert meta["labels"][RUN_UID_LABEL] == RUN_UID
    assert meta["annotations"] == {
        "team": "payments",
        RUN_NAME_ANNOTATION: RUN_NAME,
        METRIC_NAME_ANNOTATION: METRIC,
    }
    assert "ownerReferences" not in meta
    pod = job["spec"]["template"]["spec"]
    assert (
        pod["containers"][0]["args"] == SMOKE["spec"]["template"]["spec"]["containers"][0]["args"]
    )
    assert cluster.verbs() == ["create", "watch", "list"]  # list: garbage collection


async def test_failed_job_is_failed(cluster: Cluster) -> None:
    cluster.kube.outcome = lambda _job: ("Failed", 0.0)
    async with cluster.registry() as registry:
        measurement = await measure(registry)
    assert (measurement.phase, measurement.message) == ("Failed", "")
    conditions = [c["type"] for c in only_job(cluster.kube)["status"]["conditions"]]
    assert conditions == ["FailureTarget", "Failed"]  # FailureTarget alone decided nothing


async def test_a_job_that_runs_a_while_is_watched_to_its_end(cluster: Cluster) -> None:
    cluster.kube.outcome = lambda _job: ("Complete", 0.2)
    async with cluster.registry() as registry:
        measurement = await measure(registry)
    assert measurement.phase == "Successful"
    _create, watch = cluster.kube.requests[:2]
    assert watch.verb == "watch"
    assert watch.query["resourceVersion"] == str(1001)  # the version create answered
    assert (
        watch.query["fieldSelector"]
        == f"metadata.name={only_job(cluster.kube)['metadata']['name']}"
    )


# ---------------------------------------------------------------- no data


async def test_job_deleted_while_it_runs_is_an_error(cluster: Cluster) -> None:
    kube = cluster.kube
    kube.outcome = lambda _job: (None, 0.0)
    async with cluster.registry() as registry:
        task = asyncio.create_task(measure(registry))
        await kube.watching.wait()
        ((namespace, name),) = kube.jobs
        kube._remove((namespace, name))  # someone else deleted it
        measurement = await task
    assert measurement.phase == "Error"
    assert measurement.message == (
        f"job: Job {NAMESPACE}/{name} was deleted before it finished "
        f'(jobs.batch "{name}" not found)'
    )


async def test_no_cluster_configured_is_an_error_naming_the_setting(cluster: Cluster) -> None:
    async with cluster.registry(settings={}) as registry:
        measurement = await measure(registry)
    assert measurement.phase == "Error"
    assert measurement.message == (
        "job: no Kubernetes cluster is configured; set providers.kubernetes.kubeconfig "
        "(or providers.kubernetes.inCluster: true) in the settings file"
    )
    assert cluster.kube.requests == []


async def test_unreadable_kubeconfig_is_an_error_naming_it(cluster: Cluster) -> None:
    missing = cluster.tmp_path / "nope"
    async with cluster.registry(settings={"kubernetes": {"kubeconfig": str(missing)}}) as reg:
        measurement = await measure(reg)
    assert measurement.phase == "Error"
    assert measurement.message.startswith(
        f"job: cannot load kubeconfig {missing} (providers.kubernetes): "
    )


# ---------------------------------------------------------------- auth


async def test_rejected_token_is_an_error_saying_whose_credentials(cluster: Cluster) -> None:
    wrong = cluster.kube.kubeconfig(cluster.tmp_path / "wrong", token="stale-token")
    async with cluster.registry(settings={"kubernetes": {"kubeconfig": str(wrong)}}) as reg:
        measurement = await measure(reg)
    assert measurement.phase == "Error"
    assert measurement.message.startswith(f"job: Kubernetes API at {cluster.kube.url} refused ")
    assert f"the credentials of kubeconfig {wrong} for create Job {NAMESPACE}/" in (
        measurement.message
    )
    assert measurement.message.endswith(": Unauthorized (HTTP 401)")
    assert "stale-token" not in measurement.message


async def test_rbac_refusal_is_an_error_with_the_apiservers_sentence(cluster: Cluster) -> None:
    cluster.kube.forbidden = {"create"}
    async with cluster.registry() as registry:
        measurement = await measure(registry)
    assert measurement.phase == "Error"
    assert (
        'jobs.batch is forbidden: User "system:serviceaccount:analysisd:analysisd" cannot '
        'create resource "jobs" in API group "batch" in the namespace "team-a" (HTTP 403)'
    ) in measurement.message
    assert "jobProvider.rbac" in measurement.message
    assert cluster.kube.jobs == {}


# ---------------------------------------------------------------- 4xx / 5xx / 429


async def test_invalid_job_is_an_error_with_the_status_message(cluster: Cluster) -> None:
    message = 'Job.batch "x" is invalid: spec.template.spec.containers[0].image: Required value'
    cluster.kube.faults.append(
        Fault("create", 422, json.dumps(status_body(422, "Invalid", message)))
    )
    async with cluster.registry() as registry:
        measurement = await measure(registry)
    assert measurement.phase == "Error"
    assert measurement.message.endswith(f": {message} (HTTP 422)")
    assert measurement.message.startswith(f"job: create Job {NAMESPACE}/")


async def test_server_error_is_an_error_with_the_status_message(cluster: Cluster) -> None:
    body = status_body(500, "InternalError", "etcdserver: request timed out")
    cluster.kube.faults.append(Fault("create", 500, json.dumps(body)))
    async with cluster.registry() as registry:
        measurement = await measure(registry)
    assert measurement.phase == "Error"
    assert measurement.message.endswith(": etcdserver: request timed out (HTTP 500)")


async def test_429_on_create_is_retried_after_retry_after(cluster: Cluster) -> None:
    body = status_body(429, "TooManyRequests", "Too many requests, please try again later.")
    cluster.kube.faults.append(Fault("create", 429, json.dumps(body), {"Retry-After": "0"}))
    async with cluster.registry() as registry:
        measurement = await measure(registry)
    assert measurement.phase == "Successful"
    assert cluster.verbs() == ["create", "create", "watch", "list"]
    assert len(cluster.kube.jobs) == 1


async def test_503_with_retry_after_is_retried_and_without_is_an_error(cluster: Cluster) -> None:
    body = json.dumps(status_body(503, "ServiceUnavailable", "the server is shutting down"))
    cluster.kube.faults.append(Fault("create", 503, body, {"Retry-After": "0"}))
    async with cluster.registry(coalesce_window=0) as registry:
        prepared = set_up(registry)
        assert (await take(registry, prepared)).phase == "Successful"
        cluster.kube.faults.append(Fault("create", 503, body))
        measurement = await take(registry, prepared)  # Job 2
    assert measurement.phase == "Error"
    assert measurement.message.endswith(": the server is shutting down (HTTP 503)")
    assert cluster.verbs().count("create") == 3


async def test_429_until_attempts_run_out_is_an_error(cluster: Cluster) -> None:
    body = status_body(429, "TooManyRequests", "Too many requests, please try again later.")
    cluster.kube.faults.append(
        Fault("create", 429, json.dumps(body), {"Retry-After": "0"}, times=9)
    )
    async with cluster.registry(max_attempts=3) as registry:
        measurement = await measure(registry)
    assert measurement.phase == "Error"
    assert measurement.message.endswith(": Too many requests, please try again later. (HTTP 429)")
    assert cluster.verbs() == ["create", "create", "create"]


async def test_429_while_watching_takes_its_own_job_over_after_409(cluster: Cluster) -> None:
    body = status_body(429, "TooManyRequests", "Too many requests, please try again later.")
    cluster.kube.outcome = lambda _job: ("Complete", 0.1)
    cluster.kube.faults.append(Fault("watch", 429, json.dumps(body), {"Retry-After": "0"}))
    async with cluster.registry() as registry:
        measurement = await measure(registry)
    assert measurement.phase == "Successful"
    # The registry's retry creates again: 409 AlreadyExists, our uid label, so it is ours.
    assert cluster.verbs() == ["create", "watch", "create", "get", "watch", "list"]
    assert len(cluster.kube.jobs) == 1


async def test_409_for_another_runs_job_is_an_error(cluster: Cluster) -> None:
    provider = JobProvider.configured(cluster.settings()).create(SMOKE, lambda _s, _k: None)
    context = MeasurementContext(RUN_UID, RUN_NAME, NAMESPACE, METRIC)
    metric = provider.bind(SMOKE, context)
    taken = {**SMOKE, "metadata": {"name": metric.job_name(1), "labels": {RUN_UID_LABEL: "other"}}}
    headers = {"Authorization": f"Bearer {cluster.kube.token}"}
    async with aiohttp.ClientSession() as http:
        url = f"{cluster.kube.url}/apis/batch/v1/namespaces/{NAMESPACE}/jobs"
        async with http.post(url, json=taken, headers=headers) as response:
            assert response.status == 201
    try:
        with pytest.raises(Exception) as caught:
            await metric()
    finally:
        await provider.aclose()
    assert str(caught.value) == (
        f"job: create Job {NAMESPACE}/{metric.job_name(1)}: "
        f'jobs.batch "{metric.job_name(1)}" already exists (HTTP 409)'
    )


# ---------------------------------------------------------------- 410, timeout, garbage


async def test_stale_watch_410_reads_the_job_again_and_watches_on(cluster: Cluster) -> None:
    kube = cluster.kube

    def compact_then_complete(_job: dict[str, Any]) -> tuple[str | None, float]:
        kube.compact()  # the version create answered is gone from the watch cache
        return "Complete", 0.2

    kube.outcome = compact_then_complete
    # The first watch ends at once (as at its timeoutSeconds): the next starts stale.
    kube.faults.append(Fault("watch", 200, b"", {"Content-Type": "application/json"}))
    async with cluster.registry() as registry:
        measurement = await measure(registry)
    assert measurement.phase == "Successful"
    assert cluster.verbs() == ["create", "watch", "watch", "get", "watch", "list"]
    stale, fresh = kube.requests[2], kube.requests[4]
    assert int(fresh.query["resourceVersion"]) > int(stale.query["resourceVersion"])


async def test_watch_refused_with_http_410_reads_the_job_again(cluster: Cluster) -> None:
    body = status_body(410, "Gone", "too old resource version: 1001 (1003)")
    cluster.kube.outcome = lambda _job: ("Complete", 0.2)
    cluster.kube.faults.append(Fault("watch", 410, json.dumps(body)))
    async with cluster.registry() as registry:
        measurement = await measure(registry)
    assert measurement.phase == "Successful"
    assert cluster.verbs() == ["create", "watch", "get", "watch", "list"]


async def test_api_that_does_not_answer_is_a_timeout_error(cluster: Cluster) -> None:
    cluster.kube.faults.append(Fault("create", 201, "{}", delay_s=1.5))
    settings = cluster.settings(requestTimeoutSeconds=0.2)
    async with cluster.registry(settings=settings) as registry:
        measurement = await measure(registry)
    assert measurement.phase == "Error"
    assert measurement.message.startswith(
        f"job: Kubernetes API at {cluster.kube.url} did not answer create Job {NAMESPACE}/"
    )
    assert measurement.message.endswith(" within 0.2s")


async def test_garbage_body_is_an_error_showing_it(cluster: Cluster) -> None:
    cluster.kube.faults.append(Fault("create", 201, "<html>upstream proxy</html>"))
    async with cluster.registry() as registry:
        measurement = await measure(registry)
    assert measurement.phase == "Error"
    assert "with a body that is not a JSON object: " in measurement.message
    assert "<html>upstream proxy</html>" in measurement.message


async def test_garbage_watch_event_is_an_error_showing_it(cluster: Cluster) -> None:
    cluster.kube.outcome = lambda _job: (None, 0.0)
    cluster.kube.faults.append(Fault("watch", 200, b'{"kind": "JobList"}\n'))
    async with cluster.registry() as registry:
        measurement = await measure(registry)
    assert measurement.phase == "Error"
    assert "an event without type and object: " in measurement.message
    assert "JobList" in measurement.message


# ---------------------------------------------------------------- terminate, timeout, GC


async def test_terminated_measurement_deletes_its_job_in_the_foreground(cluster: Cluster) -> None:
    kube = cluster.kube
    kube.outcome = lambda _job: (None, 0.0)  # runs until someone stops it
    async with cluster.registry() as registry:
        task = asyncio.create_task(measure(registry))
        await kube.watching.wait()
        ((namespace, name),) = kube.jobs
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert kube.deletions == [(namespace, name, "Foreground")]
    assert kube.jobs == {}


async def test_measurement_timeout_is_an_error_and_deletes_the_job(cluster: Cluster) -> None:
    kube = cluster.kube
    kube.outcome = lambda _job: (None, 0.0)
    async with cluster.registry() as registry:
        measurement = await measure(registry, timeout_seconds=0.5)
    assert (measurement.phase, measurement.message) == (
        "Error",
        "smoke-test: measurement timed out after 0.5s",
    )
    assert [policy for _ns, _name, policy in kube.deletions] == ["Foreground"]
    assert kube.jobs == {}


async def test_garbage_collection_keeps_the_last_ten_jobs_of_the_metric(cluster: Cluster) -> None:
    kube = cluster.kube
    context = MeasurementContext(RUN_UID, RUN_NAME, NAMESPACE, METRIC)
    async with cluster.registry(coalesce_window=0) as registry:
        bound = registry.bind("job", SMOKE, context=context)
        for _ in range(HISTORY_LIMIT + 2):
            reading = await bound.measure()
            assert reading.metadata["analysisd.io/phase"] == "Successful"
    numbers = sorted(int(name.rpartition(".")[2]) for _ns, name in kube.jobs)
    assert numbers == list(range(3, 13))
    assert kube.deletions == [
        (NAMESPACE, f"{RUN_UID}.{METRIC}.1", "Foreground"),
        (NAMESPACE, f"{RUN_UID}.{METRIC}.2", "Foreground"),
    ]


async def test_garbage_collection_keeps_what_measurement_retention_keeps(
    cluster: Cluster,
) -> None:
    # measurementRetention 3 for the metric: its last 3 Jobs stay. Another job metric of
    # the same run (same uid label) has Jobs of its own, which this metric leaves alone.
    kube = cluster.kube
    other = MeasurementContext(RUN_UID, RUN_NAME, NAMESPACE, "load-test")
    async with cluster.registry(coalesce_window=0) as registry:
        await registry.bind("job", SMOKE, context=other).measure()
        prepared = set_up(registry, retention=3)
        for _ in range(5):
            assert (await take(registry, prepared)).phase == "Successful"
    assert sorted(name for _ns, name in kube.jobs) == [
        f"{RUN_UID}.load-test.1",
        *(f"{RUN_UID}.{METRIC}.{n}" for n in (3, 4, 5)),
    ]
    assert [name for _ns, name, _policy in kube.deletions] == [
        f"{RUN_UID}.{METRIC}.1",
        f"{RUN_UID}.{METRIC}.2",
    ]


async def test_each_measurement_is_a_job_of_its_own_even_inside_the_coalesce_window(
    cluster: Cluster,
) -> None:
    # Two measurements of one metric well within a long reuse window: two Jobs, two
    # answers (a job block is never coalesced, COALESCE = False), the second Failed.
    cluster.kube.outcome = lambda job: (
        ("Complete" if job["metadata"]["name"].endswith(".1") else "Failed"),
        0.0,
    )
    async with cluster.registry(coalesce_window=600) as registry:
        prepared = set_up(registry)
        first, second = await take(registry, prepared), await take(registry, prepared)
    assert (first.phase, second.phase) == ("Successful", "Failed")
    assert sorted(name for _ns, name in cluster.kube.jobs) == [
        f"{RUN_UID}.{METRIC}.1",
        f"{RUN_UID}.{METRIC}.2",
    ]


# ---------------------------------------------------------------- the run's identity


async def test_settings_namespace_overrides_the_runs_namespace(cluster: Cluster) -> None:
    # providers.kubernetes.namespace is Argo's ARGO_ROLLOUTS_ANALYSIS_JOB_NAMESPACE.
    settings = cluster.settings(namespace="analysis-jobs")
    async with cluster.registry(settings=settings, coalesce_window=0) as registry:
        prepared = set_up(registry)
        assert (await take(registry, prepared)).phase == "Successful"
        assert (await take(registry, prepared)).phase == "Successful"
    assert sorted(cluster.kube.jobs) == [
        ("analysis-jobs", f"{RUN_UID}.{METRIC}.1"),
        ("analysis-jobs", f"{RUN_UID}.{METRIC}.2"),
    ]
    gc = [r for r in cluster.kube.requests if r.verb == "list"]
    assert [r.path for r in gc] == ["/apis/batch/v1/namespaces/analysis-jobs/jobs"] * 2


async def test_a_run_without_uid_or_namespace_gets_a_uid_of_its_own(cluster: Cluster) -> None:
    # `analysisd run` from a file: no uid, no namespace. The binding makes up a uid; the
    # Job goes to the kubeconfig context's namespace (else "default").
    kubeconfig = cluster.kube.kubeconfig(cluster.tmp_path / "kc-ns", namespace="sandbox")
    settings = {"kubernetes": {"kubeconfig": str(kubeconfig)}}
    async with cluster.registry(settings=settings) as registry:
        measurement = await measure(registry, meta=ObjectMeta(name="analysis"))
    assert measurement.phase == "Successful"
    ((namespace, name),) = cluster.kube.jobs
    uid, metric, number = name.split(".")
    assert (namespace, metric, number) == ("sandbox", METRIC, "1")
    job = only_job(cluster.kube)["metadata"]
    assert job["labels"][RUN_UID_LABEL] == uid and len(uid) == 36
    assert job["annotations"][RUN_NAME_ANNOTATION] == "analysis"


def resumed_status(successful: int, errors: int) -> AnalysisRunStatus:
    """A stored status whose metric finished `successful` + `errors` measurements and had
    one more in flight when the daemon stopped."""
    done = [{"phase": "Successful", "startedAt": "2026-01-01T00:00:00Z"}] * successful
    failed = [{"phase": "Error", "message": "boom", "startedAt": "2026-01-01T00:00:00Z"}]
    return AnalysisRunStatus.model_validate(
        {
            "phase": "Running",
            "startedAt": "2026-01-01T00:00:00Z",
            "metricResults": [
                {
                    "name": METRIC,
                    "phase": "Running",
                    "count": successful,
                    "successful": successful,
                    "error": errors,
                    "measurements": done
                    + failed * errors
                    + [{"phase": "Running", "startedAt": "2026-01-01T00:00:01Z"}],
                }
            ],
        }
    )


async def leave_job(kube: KubeAPI, name: str, *, delete: bool = False) -> None:
    """A Job of this run as the daemon before the restart left it: running, or (delete)
    deleted with Foreground propagation, its pods still terminating."""
    job = {
        **SMOKE,
        "metadata": {
            "name": name,
            "labels": {RUN_UID_LABEL: RUN_UID},
            "annotations": {RUN_NAME_ANNOTATION: RUN_NAME, METRIC_NAME_ANNOTATION: METRIC},
        },
    }
    headers = {"Authorization": f"Bearer {kube.token}"}
    url = f"{kube.url}/apis/batch/v1/namespaces/{NAMESPACE}/jobs"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=job, headers=headers) as response:
            assert response.status == 201
        if delete:
            options = {"propagationPolicy": "Foreground"}
            async with http.delete(f"{url}/{name}", json=options, headers=headers) as response:
                assert response.status == 200
    kube.requests.clear()
    kube.deletions.clear()


async def test_a_restarted_run_takes_its_in_flight_job_over(cluster: Cluster) -> None:
    # Before the restart: 2 measurements Successful, 1 Error, and Job 4 created and still
    # running. The run set up again from that status takes Job 4 over (409, our uid
    # label) and watches it to its end, as Argo's Resume does, instead of a new Job.
    kube = cluster.kube
    kube.outcome = lambda _job: (None, 0.0)
    in_flight = f"{RUN_UID}.{METRIC}.4"
    await leave_job(kube, in_flight)
    async with cluster.registry() as registry:
        prepared = set_up(registry, status=resumed_status(2, 1))
        task = asyncio.create_task(take(registry, prepared))
        await kube.watching.wait()
        kube.finish(NAMESPACE, in_flight, "Complete")
        measurement = await asyncio.wait_for(task, 30)  # a new Job would never finish
    assert measurement.phase == "Successful"
    assert measurement.metadata is not None and measurement.metadata["job-name"] == in_flight
    assert cluster.verbs() == ["create", "get", "watch", "list"]
    assert list(kube.jobs) == [(NAMESPACE, in_flight)]


async def test_a_restarted_run_whose_job_is_being_deleted_creates_it_afresh(
    cluster: Cluster,
) -> None:
    # A daemon that stopped gracefully deleted its measurement's Job (Foreground: the
    # Job stays until its pods are gone). The run resumed meanwhile names the same Job:
    # not taken over (it would only be watched to its deletion), but created again
    # once the old one is gone.
    kube = cluster.kube
    kube.pods_linger = asyncio.Event()
    name = f"{RUN_UID}.{METRIC}.4"
    await leave_job(kube, name, delete=True)
    async with cluster.registry() as registry:
        prepared = set_up(registry, status=resumed_status(2, 1))
        task = asyncio.create_task(take(registry, prepared))
        await kube.watching.wait()  # waiting for the old Job to go
        assert list(kube.jobs) == [(NAMESPACE, name)]
        kube.pods_linger.set()
        measurement = await asyncio.wait_for(task, 30)
    assert measurement.phase == "Successful"
    assert cluster.verbs() == ["create", "get", "watch", "create", "watch", "list"]
    assert list(kube.jobs) == [(NAMESPACE, name)]
    assert "deletionTimestamp" not in only_job(kube)["metadata"]


async def test_a_restarted_run_with_no_job_in_flight_creates_the_next_one(
    cluster: Cluster,
) -> None:
    async with cluster.registry() as registry:
        prepared = set_up(registry, status=resumed_status(5, 2))
        assert (await take(registry, prepared)).phase == "Successful"
    assert list(cluster.kube.jobs) == [(NAMESPACE, f"{RUN_UID}.{METRIC}.8")]
    assert cluster.verbs() == ["create", "watch", "list"]


# ---------------------------------------------------------------- settings and plugin


def test_settings_file_kubernetes_block_is_checked_at_start(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("providers:\n  kubernetes:\n    kubeconfig: /k\n    inCluster: true\n")
    with pytest.raises(ConfigError, match=r"providers\.kubernetes: set kubeconfig or inCluster"):
        load_settings({"config": str(path)})
    path.write_text("providers:\n  kubernetes:\n    kubeConfig: /k\n")
    with pytest.raises(ConfigError, match=r"providers\.kubernetes\.kubeConfig: unknown setting"):
        load_settings({"config": str(path)})
    path.write_text("providers:\n  kubernetes:\n    kubeconfig: /k\n    namespace: jobs\n")
    assert load_settings({"config": str(path)}).providers["kubernetes"]["namespace"] == "jobs"


async def test_plugin_metric_run_is_an_error_naming_the_plugin(cluster: Cluster) -> None:
    config = {"argoproj-labs/metric-ai": {"model": "gemini-2.0-flash"}}
    async with cluster.registry() as registry:
        spec = AnalysisRunSpec.model_validate(
            {"metrics": [{"name": "ai", "provider": {"plugin": config}}]}
        )
        prepared = prepare_run(spec, NoSecrets())
        measurement = await take_measurement(
            registry, prepared, prepared.metrics[0], clock=now, started=now()
        )
    assert measurement.phase == "Error"
    assert measurement.message == (
        "provider kind 'plugin' (plugin 'argoproj-labs/metric-ai') is not run by analysisd: "
        "Argo Rollouts runs metric plugins as Go binaries over RPC, which analysisd cannot; "
        "see docs/compatibility.md#plugin-metrics"
    )

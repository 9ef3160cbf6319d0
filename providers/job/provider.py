"""Argo's ``job`` provider: a Kubernetes batch/v1 Job per measurement, its outcome the phase.

Argo (metricproviders/job/job.go) creates the Job in Run and reads it in Resume; our
protocol has one call per measurement, so one call does both: create the Job, watch
it to its end, answer. The binding (one per run and metric, made when the run is set
up) is told the run's identity by its MeasurementContext, and does what Argo does:

- The Job is named ``<run uid>.<metric name>.<n>``, n the metric's measurements
  already taken (Argo's Count + Error, from the status the run was set up from) plus
  one, then one more per new Job. Argo's limit applies: the name must fit the
  63-character ``job-name`` pod label, so metric names of up to about 24 characters.
- It is the metric's ``provider.job.spec``, with ``provider.job.metadata``'s labels
  and annotations, the label ``analysisrun.argoproj.io/uid`` and the annotations
  ``analysisrun.argoproj.io/name`` and ``analysisrun.argoproj.io/metric-name`` set
  over them. It has no owner: there is no AnalysisRun object in the cluster to own it.
- It is created in the run's namespace, unless the settings' ``providers.kubernetes.
  namespace`` names one for every run (Argo's ARGO_ROLLOUTS_ANALYSIS_JOB_NAMESPACE).
- Complete condition -> Successful, Failed condition -> Failed (the condition's type
  decides, as in Argo; the Kubernetes 1.31 ``SuccessCriteriaMet`` / ``FailureTarget``
  conditions that come first are not the end). Conditions are not evaluated. The
  measurement's metadata ``job-name`` names the Job.
- Create answered 409 AlreadyExists: the existing Job is taken over if it carries this
  run's uid label, else the measurement is an Error (Argo's uid check). Ours is either
  a retry of our own create, or the Job a measurement had in flight when the daemon
  stopped without deleting it: the run set up again from its stored status names the
  same Job and watches it to its end, as Argo's Resume does. One of ours that is
  being deleted (a graceful stop's Terminate) is waited out and created afresh.
- No measurement timeout (``OWN_DEADLINE``): as in Argo, a Job runs until it completes
  or fails (or reaches its own ``activeDeadlineSeconds``); the daemon's
  ``measurementTimeout`` does not cut it off.
- Terminate deletes: a measurement cancelled (run terminated, a caller's own timeout,
  shutdown) deletes its Job with ``propagationPolicy: Foreground`` before it ends.
- Garbage collection keeps the metric's last Jobs, as many as the run keeps of its
  measurements (``measurementRetention``, else Argo's DefaultMeasurementHistoryLimit
  10), oldest deleted first, with Foreground propagation. It counts the metric's own
  Jobs (``<run uid>.<metric>.*``); Argo's GarbageCollect selects by the uid label
  alone, so two job metrics of one run share its limit there.

A run without a uid (``analysisd run`` from a file) has nothing stored to resume: each
binding makes up a uid of its own. A run without a namespace uses the kubeconfig
context's (the service account's in-cluster), else ``default``.

A watch that ends (``timeoutSeconds``) is opened again from the last resourceVersion;
one refused with 410 Expired (a stale version) re-reads the Job and watches from its
version. A 429 anywhere is the registry's to retry (Retry-After honoured): the retry
finds its Job by name (409) and goes on watching it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from typing import Any, ClassVar

from providers.base import (
    DEFAULT_MEASUREMENT_HISTORY_LIMIT,
    NO_CONTEXT,
    MeasurementContext,
    ProviderBadBody,
    ProviderConfigError,
    ProviderError,
    ProviderHTTPError,
    ProviderRateLimited,
    ProviderUnsupported,
    Reading,
    SecretLookup,
)
from providers.gocompat import GO_NIL
from providers.job.cluster import NOT_CONFIGURED, PROVIDER, Cluster, ClusterSettings
from providers.job.manifest import (
    RUN_UID_LABEL,
    check,
    created_order,
    job_manifest,
    job_number,
    outcome,
    resource_version,
    status_code,
)

KIND = "job"
JOB_NAME_KEY = "job-name"  # Argo's measurement metadata key
PHASE_METADATA_KEY = "analysisd.io/phase"  # the engine takes the phase from here
HISTORY_LIMIT = DEFAULT_MEASUREMENT_HISTORY_LIMIT  # kept when the run says nothing
WATCH_SECONDS = 60  # one watch request's timeoutSeconds; opened again after
DELETE_GRACE_S = 10.0  # how long aclose() waits for deletes of cancelled measurements


# ---------------------------------------------------------------- the provider


class JobProvider:
    """One cluster client; every job metric's bindings use it."""

    kind: ClassVar[str] = KIND
    STATIC_KEYS: ClassVar[bool] = True
    # Every measurement is a Job of its own: never shared with another, never reused.
    COALESCE: ClassVar[bool] = False
    # A Job takes as long as it takes (Argo has no measurement timeout for it): it ends
    # when it completes or fails, or at the spec's activeDeadlineSeconds.
    OWN_DEADLINE: ClassVar[bool] = True
    CLUSTER: ClassVar[ClusterSettings | None] = None  # set by configured()

    def __init__(self, settings: ClusterSettings | None) -> None:
        self.cluster = Cluster(settings) if settings is not None else None
        self._deleting: set[asyncio.Task[None]] = set()

    def track(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A delete that must outlive its measurement's cancellation."""
        task = asyncio.ensure_future(work)
        self._deleting.add(task)
        task.add_done_callback(_forget(self._deleting))
        return task

    @classmethod
    def configured(cls, settings: Mapping[str, Any]) -> type[JobProvider]:
        """The class for a registry whose settings file has `providers` = `settings`."""
        try:
            cluster = ClusterSettings.from_mapping(settings.get("kubernetes"))
        except ValueError as exc:
            raise ProviderConfigError(f"job: {exc}", provider=PROVIDER) from None
        return type(cls.__name__, (cls,), {"CLUSTER": cluster, "__module__": cls.__module__})

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> None:
        check(config)

    @classmethod
    def pool_key(cls, config: Mapping[str, Any], secrets: SecretLookup) -> tuple[Any, ...]:
        return (KIND, cls.CLUSTER)

    @classmethod
    def create(cls, config: Mapping[str, Any], secrets: SecretLookup) -> JobProvider:
        return cls(cls.CLUSTER)

    @classmethod
    def request_key(cls, config: Mapping[str, Any]) -> tuple[Any, ...]:
        # Never shared: each measurement is a Job of its own.
        return (KIND, uuid.uuid4().hex)

    @classmethod
    def limit_address(cls, config: Mapping[str, Any]) -> str:
        return f"kubernetes {cls.CLUSTER.describe()}" if cls.CLUSTER else "kubernetes"

    def bind(
        self, config: Mapping[str, Any], context: MeasurementContext = NO_CONTEXT
    ) -> JobMetric:
        """One run's metric: its Jobs numbered on from the measurements already taken."""
        check(config)
        return JobMetric(self, config, context)

    async def measure(self, config: Mapping[str, Any]) -> Reading:
        return await self.bind(config)()

    async def series(
        self, config: Mapping[str, Any], query: str, start: datetime, end: datetime, step: float
    ) -> list[float]:
        raise ProviderUnsupported("job: a job metric has no range data", provider=PROVIDER)

    async def aclose(self) -> None:
        if self._deleting:
            await asyncio.wait(set(self._deleting), timeout=DELETE_GRACE_S)
        if self.cluster is not None:
            await self.cluster.aclose()


class JobMetric:
    """A job metric bound for one run: creates, watches and cleans up its Jobs."""

    def __init__(
        self,
        provider: JobProvider,
        config: Mapping[str, Any],
        context: MeasurementContext = NO_CONTEXT,
    ) -> None:
        self.provider = provider
        self.config = config
        self.context = context
        # A run without a uid (`analysisd run` from a file) gets one for this binding.
        self.run_uid = context.run_uid or str(uuid.uuid4())
        metric = context.metric_name
        # Argo's newJobName: <run uid>.<metric name>.<measurements taken + 1>.
        self.prefix = f"{self.run_uid}.{metric}." if metric else f"{self.run_uid}."
        self.created = context.taken  # the number of the last Job, as Argo counts them
        self.current: str | None = None  # the Job of a measurement not yet answered

    def request_key(self) -> tuple[Any, ...]:
        return (KIND, self.run_uid, self.context.metric_name)

    def job_name(self, number: int) -> str:
        return f"{self.prefix}{number}"

    def namespace(self, cluster: Cluster) -> str:
        """Where its Jobs go: the run's namespace, unless the settings name one."""
        return cluster.namespace_for(self.context.run_namespace)

    async def __call__(self) -> Reading:
        cluster = self.provider.cluster
        if cluster is None:
            raise ProviderError(NOT_CONFIGURED, provider=PROVIDER)
        if self.current is None:
            self.created += 1
            self.current = self.job_name(self.created)
        name = self.current
        try:
            job = await self._create(cluster, name)
            phase = outcome(job) or await self._wait(cluster, name, job)
        except asyncio.CancelledError:
            self.current = None
            await self._delete_on_cancel(cluster, name)
            raise
        except ProviderError as exc:
            if not isinstance(exc, ProviderRateLimited):
                self.current = None  # else the registry's retry takes the same Job over
            raise
        self.current = None
        with contextlib.suppress(ProviderError):
            # Retried after the next measurement; a measurement is never failed by it.
            await self._collect_garbage(cluster)
        return Reading(
            result=None,
            value="",
            metadata={JOB_NAME_KEY: name, PHASE_METADATA_KEY: phase},
            go_type=GO_NIL,
        )

    # ------------------------------------------------------------ steps

    async def _create(self, cluster: Cluster, name: str) -> dict[str, Any]:
        await cluster.batch()  # loads the settings: the namespace is known after
        namespace = self.namespace(cluster)
        context = self.context
        manifest = job_manifest(
            self.config, name, namespace, self.run_uid, context.run_name, context.metric_name
        )
        asked = f"create Job {namespace}/{name}"

        async def create() -> dict[str, Any]:
            return await cluster.call(
                asked,
                lambda api: api.create_namespaced_job(namespace, manifest, _preload_content=False),
            )

        try:
            return await create()
        except ProviderHTTPError as exc:
            if exc.status != 409:
                raise
            created = exc
        existing = await cluster.call(
            f"get Job {namespace}/{name}",
            lambda api: api.read_namespaced_job(name, namespace, _preload_content=False),
        )
        meta = existing.get("metadata") or {}
        if (meta.get("labels") or {}).get(RUN_UID_LABEL) != self.run_uid:
            raise created  # someone else's Job of that name: Argo's "uid check" failure
        if meta.get("deletionTimestamp"):
            # Ours, but deleted (a daemon that stopped gracefully cancelled its
            # measurement; Foreground deletion waits for the pods): once it is gone,
            # this measurement's Job is created afresh.
            await self._wait_gone(cluster, namespace, name, existing)
            return await create()
        # Ours: a retry of our own create, or the Job this run's measurement had in
        # flight when the daemon stopped (Argo's Resume): watched on to its end.
        return existing

    async def _wait_gone(
        self, cluster: Cluster, namespace: str, name: str, job: dict[str, Any]
    ) -> None:
        """Watch a Job being deleted until it is gone."""
        version = resource_version(job)
        while True:
            try:
                _phase, version = await self._watch_once(cluster, namespace, name, version)
                if not version:  # 410 Expired: read it again
                    job = await cluster.call(
                        f"get Job {namespace}/{name}",
                        lambda api: api.read_namespaced_job(
                            name, namespace, _preload_content=False
                        ),
                    )
                    version = resource_version(job)
            except ProviderHTTPError as exc:
                if exc.status == 404:  # the DELETED event, or not found when read again
                    return
                raise

    async def _wait(self, cluster: Cluster, name: str, job: dict[str, Any]) -> str:
        """Watch the Job until a condition ends it; the phase."""
        namespace = self.namespace(cluster)
        version = resource_version(job)
        while True:
            phase, version = await self._watch_once(cluster, namespace, name, version)
            if phase is not None:
                return phase
            if not version:  # 410 Expired: read it again, watch from there
                job = await cluster.call(
                    f"get Job {namespace}/{name}",
                    lambda api: api.read_namespaced_job(name, namespace, _preload_content=False),
                )
                phase = outcome(job)
                if phase is not None:
                    return phase
                version = resource_version(job)

    async def _watch_once(
        self, cluster: Cluster, namespace: str, name: str, version: str
    ) -> tuple[str | None, str]:
        """One watch request from `version`: (phase, last version seen); ("", "") on 410."""
        asked = f"watch Job {namespace}/{name}"
        try:
            response = await self._open_watch(cluster, asked, namespace, name, version)
        except ProviderHTTPError as exc:
            if exc.status == 410:  # some servers refuse a stale version with HTTP 410 itself
                return None, ""
            raise
        try:
            return await self._read_events(cluster, response, asked, namespace, name, version)
        finally:
            response.release()

    async def _open_watch(
        self, cluster: Cluster, asked: str, namespace: str, name: str, version: str
    ) -> Any:
        return await cluster.open_stream(
            asked,
            lambda api: api.list_namespaced_job(
                namespace,
                field_selector=f"metadata.name={name}",
                resource_version=version,
                watch=True,
                timeout_seconds=WATCH_SECONDS,
                _preload_content=False,
                _request_timeout=_stream_timeout(cluster),
            ),
        )

    async def _read_events(
        self, cluster: Cluster, response: Any, asked: str, namespace: str, name: str, version: str
    ) -> tuple[str | None, str]:
        try:
            while True:
                async with asyncio.timeout(WATCH_SECONDS + cluster.settings.request_timeout):
                    line = await response.content.readline()
                if not line:
                    return None, version  # the server ended the watch: open another
                if not line.strip():
                    continue
                event = cluster.parse(asked, line)
                kind, obj = event.get("type"), event.get("object")
                if not isinstance(obj, dict) or not isinstance(kind, str):
                    raise ProviderBadBody(
                        f"job: Kubernetes API at {cluster.server} sent {asked} an event "
                        f"without type and object: {line[:200]!r}",
                        provider=PROVIDER,
                        address=cluster.server,
                    )
                if kind == "ERROR":
                    code = status_code(obj.get("code"))
                    if code == 410:
                        return None, ""
                    raise cluster.status_error(asked, code, str(obj.get("message") or obj))
                if kind == "DELETED":
                    raise ProviderHTTPError(
                        f"job: Job {namespace}/{name} was deleted before it finished "
                        f'(jobs.batch "{name}" not found)',
                        status=404,
                        provider=PROVIDER,
                        address=cluster.server,
                    )
                if kind == "BOOKMARK":
                    version = resource_version(obj) or version
                    continue
                version = resource_version(obj) or version
                phase = outcome(obj)
                if phase is not None:
                    return phase, version
        except TimeoutError:
            return None, version  # no event for a whole watch: open another

    async def _delete(self, cluster: Cluster, name: str) -> None:
        namespace = self.namespace(cluster)
        try:
            await cluster.call(
                f"delete Job {namespace}/{name}",
                lambda api: api.delete_namespaced_job(
                    name, namespace, propagation_policy="Foreground", _preload_content=False
                ),
            )
        except ProviderHTTPError as exc:
            if exc.status != 404:  # gone already: what deleting wanted
                raise

    async def _delete_on_cancel(self, cluster: Cluster, name: str) -> None:
        """Terminate: the Job goes with its measurement (one request, its own timeout).

        The delete runs in a task of the provider's, so a second cancellation does not
        cut it off; `aclose()` waits for the ones still going."""
        deleting = self.provider.track(self._delete(cluster, name))
        with contextlib.suppress(asyncio.CancelledError, ProviderError):
            await asyncio.shield(deleting)

    async def _collect_garbage(self, cluster: Cluster) -> None:
        """Keep the metric's last history_limit Jobs (Argo's GarbageCollect, with the
        run's measurementRetention for the metric), oldest deleted first."""
        namespace = self.namespace(cluster)
        limit = self.context.history_limit
        listed = await cluster.call(
            f"list Jobs in {namespace} with {RUN_UID_LABEL}={self.run_uid}",
            lambda api: api.list_namespaced_job(
                namespace, label_selector=f"{RUN_UID_LABEL}={self.run_uid}", _preload_content=False
            ),
        )
        # The run's Jobs of this metric: <prefix><n>; another metric's have another prefix.
        items = [
            item
            for item in listed.get("items") or ()
            if isinstance(item, Mapping) and job_number(item, self.prefix) is not None
        ]
        if len(items) <= limit:
            return
        items.sort(key=lambda item: created_order(item, self.prefix))
        for item in items[: len(items) - limit]:
            await self._delete(cluster, str(item["metadata"]["name"]))


def _forget(tasks: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
    def done(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a failed delete is left to garbage collection

    return done


def _stream_timeout(cluster: Cluster) -> Any:
    import aiohttp

    seconds = cluster.settings.request_timeout
    return aiohttp.ClientTimeout(total=None, connect=seconds, sock_read=WATCH_SECONDS + seconds)

"""A local Kubernetes API server for batch/v1 Jobs, on 127.0.0.1, for real clients.

No cluster runs here, so this server speaks the part of the Kubernetes API that a
Job client uses, with the apiserver's shapes, so that kubernetes-asyncio (and
kubectl, tests/integration/test_job_provider_rig.py) cannot tell the difference:

- ``POST /apis/batch/v1/namespaces/{ns}/jobs`` -> 201 and the Job as stored (uid,
  resourceVersion, creationTimestamp, generation, the controller's selector and
  labels, spec defaults); 409 ``AlreadyExists``; 422 ``Invalid`` (name, containers,
  restartPolicy, a name too long for the ``job-name`` pod label); ``generateName``.
- ``GET .../jobs/{name}`` -> the Job or 404 ``NotFound``.
- ``GET .../jobs`` (and ``/apis/batch/v1/jobs``, all namespaces) -> a ``JobList``
  with ``metadata.resourceVersion``; ``labelSelector`` (``=``, ``==``, ``!=``,
  ``key``, ``!key``, ``in``, ``notin``) and ``fieldSelector`` (``metadata.name``,
  ``metadata.namespace``; any other field is a 400).
- ``?watch=true`` -> a chunked stream of ``{"type", "object"}`` lines: from
  ``resourceVersion`` (events after it, from the history kept), or from "now" with
  ``ADDED`` for every match when it is empty or ``0``; ends after
  ``timeoutSeconds``. A version older than the last ``compact()`` is a 200 stream
  holding one ``ERROR`` event with a 410 ``Expired`` Status, as the watch cache does.
- Discovery (``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/batch/v1``) and
  ``GET /api/v1/namespaces/{ns}`` (every namespace exists), for kubectl.
- ``DELETE .../jobs/{name}`` with ``propagationPolicy`` (DeleteOptions body or
  query): ``Foreground`` answers 200 with the Job carrying ``deletionTimestamp`` and
  the ``foregroundDeletion`` finalizer, and removes it after its (simulated) pods
  (once ``pods_linger``, an Event, is set, when the test gives one);
  ``Background`` / ``Orphan`` remove it at once and answer a ``Success`` Status.
  Every deletion is kept in ``deletions`` as (namespace, name, policy).

Every error is a ``Status`` object (``kind: Status``, ``reason``, ``code``,
``details``), as the apiserver sends it. Requests need ``Authorization: Bearer
<token>`` (else 401 ``Unauthorized``); verbs in ``forbidden`` answer 403 with the
RBAC sentence. ``faults`` are served first, in order, for the verbs they name
(429 with Retry-After, 5xx, garbage, a slow answer); ``requests`` records all.

A simulated job controller moves each Job on: ``outcome(job) -> (phase, delay)``
(default: ``("Complete", 0)``) sets ``status.active``/``startTime``, then after the
delay the terminal conditions as Kubernetes 1.31+ writes them (``SuccessCriteriaMet``
then ``Complete``; ``FailureTarget`` then ``Failed``); phase None keeps it running.
``finish(ns, name, phase)`` ends one by hand.

Use: ``async with KubeAPI(token=...) as kube: kube.url, kube.kubeconfig(path)``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import ipaddress
import itertools
import json
import re
import ssl
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from aiohttp import web

JSON = "application/json"
GROUP, KIND, RESOURCE = "batch", "Job", "jobs"
USER = "system:serviceaccount:analysisd:analysisd"
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SUBDOMAIN_TEXT = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    "regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
Outcome = Callable[[dict[str, Any]], tuple[str | None, float]]


@dataclass
class Fault:
    """An answer served instead of the real one for `verb` ("create", "get", "list",
    "watch", "delete" or "*"), `times` times."""

    verb: str
    status: int
    body: str | bytes = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    times: int = 1


@dataclass
class Recorded:
    verb: str
    method: str
    path: str
    query: dict[str, str]
    body: Any


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_body(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A metav1.Status of failure, as the apiserver writes it."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body


def status_response(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> web.Response:
    return web.json_response(status_body(code, reason, message, details), status=code)


def _selector_terms(text: str) -> list[str]:
    """Split a label selector on commas outside parentheses."""
    terms, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            terms.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        terms.append(current.strip())
    return terms


def label_match(selector: str, labels: dict[str, str]) -> bool:
    """Kubernetes label selector semantics (equality and set-based)."""
    for term in _selector_terms(selector):
        found = re.fullmatch(r"([^\s!=]+)\s+(in|notin)\s+\((.*)\)", term)
        if found:
            key, op, values = found.groups()
            allowed = {v.strip() for v in values.split(",")}
            if (op == "in") != (labels.get(key) in allowed):
                return False
        elif "!=" in term:
            key, value = (s.strip() for s in term.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = (s.strip() for s in re.split(r"==?", term, maxsplit=1))
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


class SelectorError(ValueError):
    pass


def field_match(selector: str, job: dict[str, Any]) -> bool:
    meta = job["metadata"]
    for term in _selector_terms(selector):
        negate = "!=" in term
        key, value = (s.strip() for s in re.split(r"!=|==?", term, maxsplit=1))
        if key not in ("metadata.name", "metadata.namespace"):
            raise SelectorError(f"field label not supported: {key}")
        actual = meta["name"] if key == "metadata.name" else meta["namespace"]
        if (actual == value) == negate:
            return False
    return True


class _Watcher:
    def __init__(self, namespace: str | None, labels: str, fields: str) -> None:
        self.namespace, self.labels, self.fields = namespace, labels, fields
        self.queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()

    def wants(self, job: dict[str, Any]) -> bool:
        meta = job["metadata"]
        if self.namespace is not None and meta["namespace"] != self.namespace:
            return False
        if self.labels and not label_match(self.labels, meta.get("labels") or {}):
            return False
        return not self.fields or field_match(self.fields, job)


class KubeAPI:
    def __init__(
        self, *, token: str = "test-token", outcome: Outcome | None = None, tls: bool = False
    ) -> None:
        self.token = token
        # HTTPS with a CA of its own (kubectl sends tokens over TLS only); the kubeconfig
        # carries the CA as certificate-authority-data.
        self.ca_pem, self._ssl = _self_signed() if tls else (b"", None)
        self.outcome: Outcome = outcome or (lambda _job: ("Complete", 0.0))
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.history: list[tuple[int, str, dict[str, Any]]] = []
        self.compacted = 0  # watches from a version below this get 410 Expired
        self.forbidden: set[str] = set()
        self.faults: list[Fault] = []
        self.requests: list[Recorded] = []
        self.deletions: list[tuple[str, str, str]] = []
        # Set to an Event: Foreground deletions wait for it (pods still terminating).
        self.pods_linger: asyncio.Event | None = None
        self.url = ""
        self._revision = itertools.count(1001)
        self._last_revision = 1000
        self._watchers: set[_Watcher] = set()
        self.watching = asyncio.Event()  # set once a watch is streaming
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> KubeAPI:
        app = web.Application()
        base = "/apis/batch/v1/namespaces/{namespace}/jobs"
        app.router.add_post(base, self._create)
        app.router.add_get(base, self._list)
        app.router.add_get("/apis/batch/v1/jobs", self._list)
        app.router.add_get(base + "/{name}", self._get)
        app.router.add_delete(base + "/{name}", self._delete)
        app.router.add_get("/api", self._api_versions)
        app.router.add_get("/api/v1", self._core_resources)
        app.router.add_get("/api/v1/namespaces/{namespace}", self._namespace)
        app.router.add_get("/apis", self._api_groups)
        app.router.add_get("/apis/batch/v1", self._batch_resources)
        app.router.add_get("/version", self._version)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._ssl)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.url = f"{'https' if self._ssl else 'http'}://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for watcher in list(self._watchers):
            watcher.queue.put_nowait(None)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def kubeconfig(self, path: Path, *, token: str | None = None, namespace: str = "") -> Path:
        """Write a kubeconfig for this server (the token given, else the right one)."""
        cluster: dict[str, Any] = {"server": self.url}
        if self.ca_pem:
            cluster["certificate-authority-data"] = base64.b64encode(self.ca_pem).decode()
        context: dict[str, Any] = {"cluster": "rig", "user": "analysisd"}
        if namespace:
            context["namespace"] = namespace
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "rig", "cluster": cluster}],
            "users": [{"name": "analysisd", "user": {"token": token or self.token}}],
            "contexts": [{"name": "rig", "context": context}],
            "current-context": "rig",
        }
        path.write_text(yaml.safe_dump(doc))
        return path

    # ------------------------------------------------------------ state

    def compact(self) -> None:
        """Forget the event history, as etcd compaction does: older watches get 410."""
        self.compacted = self._last_revision
        self.history.clear()

    def _bump(self, job: dict[str, Any], event: str) -> None:
        revision = next(self._revision)
        self._last_revision = revision
        job["metadata"]["resourceVersion"] = str(revision)
        snapshot = copy.deepcopy(job)
        self.history.append((revision, event, snapshot))
        for watcher in list(self._watchers):
            if watcher.wants(snapshot):
                watcher.queue.put_nowait((event, snapshot))

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_job(self, key: tuple[str, str]) -> None:
        job = self.jobs.get(key)
        if job is None:
            return
        job["status"].update({"startTime": now_text(), "active": 1, "ready": 0})
        self._bump(job, "MODIFIED")
        phase, delay = self.outcome(copy.deepcopy(job))
        if phase is None:
            return
        if delay:
            await asyncio.sleep(delay)
        self.finish(*key, phase)

    def finish(self, namespace: str, name: str, phase: str) -> None:
        """End a Job as its controller would: "Complete" or "Failed"."""
        job = self.jobs.get((namespace, name))
        if job is None or any(
            c["type"] in ("Complete", "Failed") for c in job["status"].get("conditions", [])
        ):
            return
        stamp = now_text()

        def condition(kind: str, reason: str, message: str) -> dict[str, Any]:
            return {
                "type": kind,
                "status": "True",
                "lastProbeTime": stamp,
                "lastTransitionTime": stamp,
                "reason": reason,
                "message": message,
            }

        status = job["status"]
        status["active"] = 0
        if phase == "Complete":
            status["succeeded"] = 1
            status["completionTime"] = stamp
            status["conditions"] = [
                condition(
                    "SuccessCriteriaMet",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ),
            ]
            self._bump(job, "MODIFIED")
            status["conditions"].append(
                condition(
                    "Complete", "CompletionsReached", "Reached expected number of succeeded pods"
                )
            )
        else:
            status["failed"] = 1
            message = "Job has reached the specified backoff limit"
            status["conditions"] = [condition("FailureTarget", "BackoffLimitExceeded", message)]
            self._bump(job, "MODIFIED")
            status["conditions"].append(condition("Failed", "BackoffLimitExceeded", message))
        self._bump(job, "MODIFIED")

    # ------------------------------------------------------------ common checks

    async def _prologue(self, request: web.Request, verb: str) -> web.StreamResponse | Any:
        """Record; check the token; serve a fault; check RBAC. Returns the body or an answer."""
        raw = await request.read()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        self.requests.append(
            Recorded(verb, request.method, request.path, dict(request.query), body)
        )
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return status_response(401, "Unauthorized", "Unauthorized")
        for fault in self.faults:
            if fault.verb in (verb, "*") and fault.times > 0:
                fault.times -= 1
                if fault.delay_s:
                    await asyncio.sleep(fault.delay_s)
                return web.Response(status=fault.status, body=fault.body, headers=fault.headers)
        if verb in self.forbidden:
            name = request.match_info.get("name")
            namespace = request.match_info.get("namespace")
            what = f'{RESOURCE}.{GROUP} "{name}"' if name else f"{RESOURCE}.{GROUP}"
            where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
            details: dict[str, Any] = {"group": GROUP, "kind": RESOURCE}
            if name:
                details["name"] = name
            return status_response(
                403,
                "Forbidden",
                f'{what} is forbidden: User "{USER}" cannot {verb} resource "{RESOURCE}" '
                f'in API group "{GROUP}"{where}',
                details,
            )
        return body

    # ------------------------------------------------------------ jobs

    async def _create(self, request: web.Request) -> web.StreamResponse:
        body = await self._prologue(request, "create")
        if isinstance(body, web.StreamResponse):
            return body
        namespace = request.match_info["namespace"]
        if not isinstance(body, dict):
            return status_response(
                400,
                "BadRequest",
                "the body of the request was in an unknown format - "
                "accepted media types include: application/json, application/yaml, "
                "application/vnd.kubernetes.protobuf",
            )
        job = copy.deepcopy(body)
        meta = job.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        name = str(meta.get("name") or "")
        if meta.get("namespace") not in (None, "", namespace):
            return status_response(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent "
                "on the request",
            )
        causes = _invalid(job)
        if causes:
            texts = [f"{field}: {message}" for field, _reason, message in causes]
            text = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
            return status_response(
                422,
                "Invalid",
                f'{KIND}.{GROUP} "{name}" is invalid: {text}',
                {
                    "name": name,
                    "group": GROUP,
                    "kind": KIND,
                    "causes": [
                        {"reason": reason, "message": message, "field": field}
                        for field, reason, message in causes
                    ],
                },
            )
        if (namespace, name) in self.jobs:
            return status_response(
                409,
                "AlreadyExists",
                f'{RESOURCE}.{GROUP} "{name}" already exists',
                {"name": name, "group": GROUP, "kind": RESOURCE},
            )
        uid = str(uuid.uuid4())
        meta.update(
            {
                "namespace": namespace,
                "uid": uid,
                "generation": 1,
                "creationTimestamp": now_text(),
            }
        )
        job["apiVersion"], job["kind"] = f"{GROUP}/v1", KIND
        spec = job["spec"]
        controller = {"batch.kubernetes.io/controller-uid": uid, "controller-uid": uid}
        spec.setdefault("selector", {"matchLabels": dict(controller)})
        pod_labels = spec["template"].setdefault("metadata", {}).setdefault("labels", {})
        pod_labels.update(controller)
        pod_labels.update({"batch.kubernetes.io/job-name": name, "job-name": name})
        if not meta.get("labels"):
            meta["labels"] = dict(pod_labels)
        for key, default in (
            ("parallelism", 1),
            ("completions", 1),
            ("backoffLimit", 6),
            ("completionMode", "NonIndexed"),
            ("suspend", False),
            ("podReplacementPolicy", "TerminatingOrFailed"),
        ):
            spec.setdefault(key, default)
        job["status"] = {}
        self.jobs[(namespace, name)] = job
        self._bump(job, "ADDED")
        self._spawn(self._run_job((namespace, name)))
        return web.json_response(job, status=201)

    async def _get(self, request: web.Request) -> web.StreamResponse:
        body = await self._prologue(request, "get")
        if isinstance(body, web.StreamResponse):
            return body
        key = (request.match_info["namespace"], request.match_info["name"])
        job = self.jobs.get(key)
        if job is None:
            return _not_found_job(key[1])
        return web.json_response(job)

    async def _list(self, request: web.Request) -> web.StreamResponse:
        # The apiserver parses it with Go's strconv.ParseBool (the Python client sends "True").
        watching = request.query.get("watch", "") in ("1", "t", "T", "true", "True", "TRUE")
        body = await self._prologue(request, "watch" if watching else "list")
        if isinstance(body, web.StreamResponse):
            return body
        namespace = request.match_info.get("namespace")
        watcher = _Watcher(
            namespace,
            request.query.get("labelSelector", ""),
            request.query.get("fieldSelector", ""),
        )
        try:
            matches = [j for j in self.jobs.values() if watcher.wants(j)]
        except SelectorError as exc:
            return status_response(400, "BadRequest", str(exc))
        if watching:
            return await self._watch(request, watcher)
        matches.sort(key=lambda j: (j["metadata"]["namespace"], j["metadata"]["name"]))
        items = []
        for job in matches:
            item = copy.deepcopy(job)
            item.pop("apiVersion", None)
            item.pop("kind", None)
            items.append(item)
        return web.json_response(
            {
                "kind": "JobList",
                "apiVersion": f"{GROUP}/v1",
                "metadata": {"resourceVersion": str(self._last_revision)},
                "items": items,
            }
        )

    async def _watch(self, request: web.Request, watcher: _Watcher) -> web.StreamResponse:
        try:
            timeout = float(request.query.get("timeoutSeconds") or 1800)
        except ValueError:
            return status_response(400, "BadRequest", "invalid timeoutSeconds")
        since = request.query.get("resourceVersion", "")
        response = web.StreamResponse(status=200, headers={"Content-Type": JSON})
        await response.prepare(request)

        async def send(event: str, obj: dict[str, Any]) -> None:
            await response.write(json.dumps({"type": event, "object": obj}).encode() + b"\n")

        if since not in ("", "0"):
            try:
                start = int(since)
            except ValueError:
                start = -1
            if start < self.compacted:
                await send(
                    "ERROR",
                    status_body(
                        410, "Expired", f"too old resource version: {since} ({self.compacted})"
                    ),
                )
                await response.write_eof()
                return response
            backlog = [(e, o) for rv, e, o in self.history if rv > start and watcher.wants(o)]
        else:
            backlog = [("ADDED", copy.deepcopy(j)) for j in self.jobs.values() if watcher.wants(j)]
        self._watchers.add(watcher)
        self.watching.set()
        try:
            for event, obj in backlog:
                await send(event, obj)
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                try:
                    item = await asyncio.wait_for(watcher.queue.get(), left)
                except TimeoutError:
                    break
                if item is None:
                    break
                await send(*item)
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client went away (it had what it wanted)
        finally:
            self._watchers.discard(watcher)
        return response

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        body = await self._prologue(request, "delete")
        if isinstance(body, web.StreamResponse):
            return body
        key = (request.match_info["namespace"], request.match_info["name"])
        policy = request.query.get("propagationPolicy", "")
        if isinstance(body, dict) and body.get("propagationPolicy"):
            policy = str(body["propagationPolicy"])
        if policy not in ("", "Foreground", "Background", "Orphan"):
            return status_response(
                422,
                "Invalid",
                f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: '
                f'"{policy}": supported values: "Foreground", "Background", "Orphan", "nil"',
            )
        job = self.jobs.get(key)
        if job is None:
            return _not_found_job(key[1])
        # batch/v1 Jobs orphan their pods when no policy is given (the legacy default).
        self.deletions.append((key[0], key[1], policy or "Orphan"))
        if policy == "Foreground":
            meta = job["metadata"]
            if "deletionTimestamp" not in meta:
                meta["deletionTimestamp"] = now_text()
                meta["deletionGracePeriodSeconds"] = 0
                meta["finalizers"] = [*meta.get("finalizers", []), "foregroundDeletion"]
                self._bump(job, "MODIFIED")
                self._spawn(self._remove_after_pods(key))
            return web.json_response(job)
        self._remove(key)
        return web.json_response(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {
                    "name": key[1],
                    "group": GROUP,
                    "kind": RESOURCE,
                    "uid": job["metadata"]["uid"],
                },
            }
        )

    async def _remove_after_pods(self, key: tuple[str, str]) -> None:
        await asyncio.sleep(0)  # the garbage collector deletes the pods first
        if self.pods_linger is not None:
            await self.pods_linger.wait()
        self._remove(key)

    def _remove(self, key: tuple[str, str]) -> None:
        job = self.jobs.pop(key, None)
        if job is not None:
            job["metadata"].pop("finalizers", None)
            self._bump(job, "DELETED")

    # ------------------------------------------------------------ discovery

    async def _api_versions(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        )

    async def _core_resources(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": "v1",
                "resources": [
                    {
                        "name": "namespaces",
                        "singularName": "namespace",
                        "namespaced": False,
                        "kind": "Namespace",
                        "verbs": ["get"],
                    }
                ],
            }
        )

    async def _namespace(self, request: web.Request) -> web.StreamResponse:
        """Every namespace exists (kubectl asks after a NotFound)."""
        name = request.match_info["namespace"]
        return web.json_response(
            {
                "kind": "Namespace",
                "apiVersion": "v1",
                "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }
        )

    async def _api_groups(self, request: web.Request) -> web.StreamResponse:
        version = {"groupVersion": f"{GROUP}/v1", "version": "v1"}
        return web.json_response(
            {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [{"name": GROUP, "versions": [version], "preferredVersion": version}],
            }
        )

    async def _batch_resources(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{GROUP}/v1",
                "resources": [
                    {
                        "name": RESOURCE,
                        "singularName": "job",
                        "namespaced": True,
                        "kind": KIND,
                        "verbs": [
                            "create",
                            "delete",
                            "deletecollection",
                            "get",
                            "list",
                            "patch",
                            "update",
                            "watch",
                        ],
                        "categories": ["all"],
                    }
                ],
            }
        )

    async def _version(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"major": "1", "minor": "31", "gitVersion": "v1.31.0-rig", "platform": "linux/amd64"}
        )

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        return status_response(404, "NotFound", "the server could not find the requested resource")


def _self_signed() -> tuple[bytes, ssl.SSLContext]:
    """A certificate for 127.0.0.1 signed by itself: (its PEM, the server's context)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-api-rig")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with tempfile.TemporaryDirectory() as folder:
        cert_path, key_path = Path(folder, "tls.crt"), Path(folder, "tls.key")
        cert_path.write_bytes(cert_pem)
        key_path.write_bytes(key_pem)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_path, key_path)
    return cert_pem, context


def _not_found_job(name: str) -> web.Response:
    return status_response(
        404,
        "NotFound",
        f'{RESOURCE}.{GROUP} "{name}" not found',
        {"name": name, "group": GROUP, "kind": RESOURCE},
    )


def _invalid(job: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The apiserver's validation causes for a Job, the ones a client can run into:
    (field, reason, message) as in a Status's details.causes."""
    causes: list[tuple[str, str, str]] = []
    required = "FieldValueRequired"
    name = str(job.get("metadata", {}).get("name") or "")
    if not name:
        causes.append(
            ("metadata.name", required, "Required value: name or generateName is required")
        )
    elif not _SUBDOMAIN.match(name) or len(name) > 253:
        causes.append(
            ("metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": {_SUBDOMAIN_TEXT}')
        )
    elif len(name) > 63:
        # The controller puts the name into the pods' job-name label (63 at most).
        causes.append(
            (
                "spec.template.labels",
                "FieldValueInvalid",
                f'Invalid value: "{name}": must be no more than 63 characters',
            )
        )
    spec = job.get("spec")
    template = spec.get("template") if isinstance(spec, dict) else None
    pod = template.get("spec") if isinstance(template, dict) else None
    if not isinstance(pod, dict) or not pod.get("containers"):
        causes.append(("spec.template.spec.containers", required, "Required value"))
    if not isinstance(pod, dict) or pod.get("restartPolicy") not in ("OnFailure", "Never"):
        causes.append(
            (
                "spec.template.spec.restartPolicy",
                required,
                'Required value: valid values: "OnFailure", "Never"',
            )
        )
    return causes

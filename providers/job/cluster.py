"""The Kubernetes cluster the job provider creates Jobs in: settings, client, errors.

One ``Cluster`` per registry holds one kubernetes-asyncio ``ApiClient``, loaded on
first use from the settings file's ``providers.kubernetes`` block: a kubeconfig
(``kubeconfig``, optional ``context``) or the pod's own service account
(``inCluster: true``). Without that block the job provider has no cluster, and every
job measurement is an Error naming the setting (``NOT_CONFIGURED``).

Requests go through the client with ``_preload_content=False``: the client builds
the request, authenticates it (token, client certificate, exec plugin) and speaks
TLS; the answer is read here, so every failure becomes one of our errors carrying
the API's own ``Status`` message: 401 -> ProviderAuthError, 403 (RBAC) ->
ProviderAuthError, 429 or 503 with Retry-After -> ProviderRateLimited, other
non-2xx -> ProviderHTTPError, a 2xx that is not a JSON object -> ProviderBadBody,
no answer in ``requestTimeoutSeconds`` -> ProviderTimeout.

Jobs are created in the run's namespace, as Argo creates them in the AnalysisRun's;
``namespace`` sends every run's Jobs to that one namespace instead (Argo's
``ARGO_ROLLOUTS_ANALYSIS_JOB_NAMESPACE``). A run without a namespace uses the
kubeconfig context's namespace (the service account's in-cluster), else ``default``.

The cluster is the operator's setting, not a team's URL, so the namespaces' egress
prefixes do not apply to it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from providers.base import (
    ProviderAuthError,
    ProviderBadBody,
    ProviderConfigError,
    ProviderError,
    ProviderHTTPError,
    ProviderRateLimited,
    ProviderTimeout,
    excerpt,
)
from providers.http import map_client_error, parse_retry_after

PROVIDER = "job"
SETTING = "providers.kubernetes"
NOT_CONFIGURED = (
    "job: no Kubernetes cluster is configured; set providers.kubernetes.kubeconfig "
    "(or providers.kubernetes.inCluster: true) in the settings file"
)
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DEFAULT_REQUEST_TIMEOUT_S = 10.0
_KEYS = {"kubeconfig", "context", "inCluster", "namespace", "requestTimeoutSeconds"}

# A request through the client: given the BatchV1Api, the raw aiohttp response.
Send = Callable[[Any], Awaitable[aiohttp.ClientResponse]]


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """``providers.kubernetes`` of the settings file."""

    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    namespace: str | None = None
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S

    @classmethod
    def from_mapping(cls, value: Any) -> ClusterSettings | None:
        """The block parsed (None when absent); ValueError naming the key otherwise."""
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise ValueError(f"{SETTING}: expected a mapping (kubeconfig, context, inCluster)")
        unknown = sorted(set(value) - _KEYS)
        if unknown:
            raise ValueError(f"{SETTING}.{unknown[0]}: unknown setting")
        for key in ("kubeconfig", "context", "namespace"):
            if value.get(key) is not None and not isinstance(value[key], str):
                raise ValueError(f"{SETTING}.{key}: expected a string")
        in_cluster = value.get("inCluster", False)
        if not isinstance(in_cluster, bool):
            raise ValueError(f"{SETTING}.inCluster: expected true or false")
        if in_cluster and value.get("kubeconfig"):
            raise ValueError(f"{SETTING}: set kubeconfig or inCluster, not both")
        if not in_cluster and not value.get("kubeconfig"):
            raise ValueError(f"{SETTING}: set kubeconfig (a file) or inCluster: true")
        timeout = value.get("requestTimeoutSeconds", DEFAULT_REQUEST_TIMEOUT_S)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"{SETTING}.requestTimeoutSeconds: expected a positive number")
        return cls(
            kubeconfig=value.get("kubeconfig") or None,
            context=value.get("context") or None,
            in_cluster=in_cluster,
            namespace=value.get("namespace") or None,
            request_timeout=float(timeout),
        )

    def describe(self) -> str:
        if self.in_cluster:
            return "the in-cluster service account"
        context = f" (context {self.context})" if self.context else ""
        return f"kubeconfig {self.kubeconfig}{context}"


class Cluster:
    """One cluster's API client, made on first use; `aclose()` closes it."""

    def __init__(self, settings: ClusterSettings) -> None:
        self.settings = settings
        # For a run without a namespace: the setting, else the kubeconfig context's or
        # the service account's namespace (known once loaded), else "default".
        self.namespace = settings.namespace or "default"
        self.server = "kubernetes"
        self._client: Any = None
        self._batch: Any = None
        self._lock = asyncio.Lock()

    async def batch(self) -> Any:
        """The BatchV1Api (the configuration loaded once)."""
        if self._batch is not None:
            return self._batch
        async with self._lock:
            if self._batch is None:
                await self._load()
        return self._batch

    async def _load(self) -> None:
        from kubernetes_asyncio import client, config
        from kubernetes_asyncio.config.config_exception import ConfigException

        settings = self.settings
        configuration = client.Configuration()
        namespace: str | None = None
        try:
            if settings.in_cluster:
                # Reads the service account's token and CA files: small, once per pool.
                config.load_incluster_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration
                )
                namespace = await asyncio.to_thread(_service_account_namespace)
            else:
                loader = await config.load_kube_config(
                    config_file=settings.kubeconfig,
                    context=settings.context,
                    client_configuration=configuration,
                    persist_config=False,
                )
                current = loader.current_context or {}
                namespace = (current.get("context") or {}).get("namespace")
        except (ConfigException, OSError, ValueError, KeyError, TypeError) as exc:
            raise ProviderConfigError(
                f"job: cannot load {settings.describe()} ({SETTING}): {exc}", provider=PROVIDER
            ) from None
        self.server = str(configuration.host)
        self.namespace = settings.namespace or namespace or "default"
        self._client = client.ApiClient(configuration)
        self._batch = client.BatchV1Api(self._client)

    def namespace_for(self, run_namespace: str) -> str:
        """Where a run's Jobs go: ``providers.kubernetes.namespace`` when set (Argo's
        ARGO_ROLLOUTS_ANALYSIS_JOB_NAMESPACE), else the run's own namespace, as in Argo."""
        return self.settings.namespace or run_namespace or self.namespace

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client, self._batch = self._client, None, None
            await client.close()

    # ------------------------------------------------------------ requests

    async def call(self, asked: str, send: Send) -> dict[str, Any]:
        """One request (`asked` says what, for messages); the JSON object answered."""
        batch = await self.batch()
        timeout = self.settings.request_timeout
        response: aiohttp.ClientResponse | None = None
        try:
            async with asyncio.timeout(timeout):
                response = await send(batch)
                body = await response.read()
        except TimeoutError:
            raise ProviderTimeout(
                f"job: Kubernetes API at {self.server} did not answer {asked} within {timeout:g}s",
                provider=PROVIDER,
                address=self.server,
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise map_client_error(exc, PROVIDER, self.server, timeout) from None
        finally:
            if response is not None:
                response.release()
        self.raise_for_status(asked, response.status, response.headers, body)
        return self.parse(asked, body)

    async def open_stream(self, asked: str, send: Send) -> aiohttp.ClientResponse:
        """A streaming request (a watch): the response once its headers are in, status
        checked; the caller reads and releases it."""
        batch = await self.batch()
        timeout = self.settings.request_timeout
        try:
            async with asyncio.timeout(timeout):
                response = await send(batch)
        except TimeoutError:
            raise ProviderTimeout(
                f"job: Kubernetes API at {self.server} did not answer {asked} within {timeout:g}s",
                provider=PROVIDER,
                address=self.server,
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise map_client_error(exc, PROVIDER, self.server, timeout) from None
        if not 200 <= response.status < 300:
            try:
                body = await response.read()
            finally:
                response.release()
            self.raise_for_status(asked, response.status, response.headers, body)
        return response

    def parse(self, asked: str, body: bytes) -> dict[str, Any]:
        try:
            value = json.loads(body)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise ProviderBadBody(
                f"job: Kubernetes API at {self.server} answered {asked} with a body that is "
                f"not a JSON object: {excerpt(body, 200)!r}",
                provider=PROVIDER,
                address=self.server,
            )
        return value

    def raise_for_status(
        self, asked: str, status: int, headers: Mapping[str, str], body: bytes
    ) -> None:
        if 200 <= status < 300:
            return
        raise self.status_error(asked, status, status_message(body), body, headers)

    def status_error(
        self,
        asked: str,
        status: int,
        message: str,
        body: bytes | str = b"",
        headers: Mapping[str, str] | None = None,
    ) -> ProviderError:
        """Our error for an API failure: the Status message, and what was asked of whom."""
        text = excerpt(body if isinstance(body, str) else body.decode("utf-8", "replace"))
        where = f"Kubernetes API at {self.server}"
        said = f"{message} (HTTP {status})"
        if status == 401:
            return ProviderAuthError(
                f"job: {where} refused the credentials of {self.settings.describe()} "
                f"for {asked}: {said}",
                provider=PROVIDER,
                address=self.server,
            )
        if status == 403:
            return ProviderAuthError(
                f"job: {asked}: {said}; the daemon's account needs create, get, list, watch "
                "and delete on jobs.batch (the chart's jobProvider.rbac)",
                provider=PROVIDER,
                address=self.server,
            )
        retry_after = parse_retry_after((headers or {}).get("Retry-After"))
        if status == 429 or (status == 503 and retry_after is not None):
            return ProviderRateLimited(
                f"job: {where} refused {asked}: {said}",
                status=status,
                body=text,
                retry_after=retry_after,
                provider=PROVIDER,
                address=self.server,
            )
        return ProviderHTTPError(
            f"job: {asked}: {said}",
            status=status,
            body=text,
            provider=PROVIDER,
            address=self.server,
        )


def _service_account_namespace() -> str | None:
    if not SERVICE_ACCOUNT_NAMESPACE.is_file():
        return None
    return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or None


def status_message(body: bytes) -> str:
    """The message of a metav1.Status body, else the body's head."""
    try:
        value = json.loads(body)
    except ValueError:
        value = None
    if isinstance(value, dict) and value.get("kind") == "Status" and value.get("message"):
        return str(value["message"])
    text = body.decode("utf-8", "replace").strip()
    return excerpt(text, 200) if text else "empty body"

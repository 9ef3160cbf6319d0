"""Argo's ``kayenta`` provider: a Kayenta canary judgement per measurement, its score the phase.

Argo (metricproviders/kayenta/kayenta.go) works in two steps. Run looks the canary
config up and starts an execution; Resume, every 15 s, reads the execution until it is
complete. Our protocol has one call per measurement, so one call does both (as the job
provider does): start, then poll until ``complete``. The calls are Argo's:

1. ``GET {address}/canaryConfig?application=<application>&configurationAccountName=
   <storageAccountName>`` (Argo passes the *storage* account there) and the id of the
   entry whose ``name`` is ``canaryConfigName``.
2. ``POST {address}/canary/{configId}?application=&metricsAccountName=
   &configurationAccountName=&storageAccountName=`` with Argo's payload text: its Go
   format string (tabs and spaces included), each scope's ``controlScope`` and
   ``experimentScope`` marshalled as Argo's ScopeDetail ``{scope, region, step, start,
   end}``, ``thresholds`` from the metric's ``threshold``. The answer's
   ``canaryExecutionId`` is the measurement's metadata ``canaryExecutionId``.
3. After ``resumeDelay`` (Argo: 15 s), ``GET {address}/canary/{canaryExecutionId}``
   again and again while ``complete`` is false; then ``result.judgeResult.score.score``
   truncated to an int is the value, and the phase is Successful when it is >= ``pass``,
   Inconclusive when >= ``marginal``, Failed below. Conditions are not evaluated.

Argo's messages are kept: any answer but 200 is ``Invalid Response``, then ``Invalid
canaryExecutionId``, ``Missing Complete Status``, ``Missing Score`` and unstructured's
``<path> accessor error: <v> is of the type <T>, expected <T>``; each is prefixed with
``kayenta at <url>:`` and a non-2xx answer ends with ``(HTTP <status>)``. Differences:

- a config name the lookup does not list is an Error naming it (Argo POSTs to
  ``/canary/`` with an empty id and reports that call's ``Invalid Response``);
- a missing or empty ``canaryExecutionId`` is ``Invalid canaryExecutionId`` (Argo
  formats a missing one as ``<nil>`` and fails on the next poll);
- each request is under ``timeout`` seconds (analysisd extension; Argo's client: 15 s);
  the whole measurement is under the daemon's ``measurementTimeout`` (Argo has none: it
  polls until the run is terminated);
- a 429 (or 503 with Retry-After) is retried by the registry; a retried poll goes on
  polling the same execution, it does not start another;
- userinfo in ``address`` is sent as HTTP Basic (as Go's client does) and never shown;
- ``resumeDelay`` is the settings file's ``providers.kayenta.resumeDelaySeconds``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from providers.base import (
    NO_CONTEXT,
    MeasurementContext,
    ProviderBadBody,
    ProviderConfigError,
    ProviderError,
    ProviderRateLimited,
    ProviderUnsupported,
    Reading,
    SecretLookup,
    excerpt,
)
from providers.kayenta_block import (
    DEFAULT_RESUME_DELAY_S,
    DEFAULT_TIMEOUT_S,
    EXECUTION_ID_KEY,
    INVALID_EXECUTION_ID,
    INVALID_RESPONSE,
    KIND,
    MISSING_COMPLETE,
    MISSING_SCORE,
    PHASE_METADATA_KEY,
    PROVIDER,
    SETTINGS_KEY,
    check,
    evaluate,
    go_value,
    nested,
    payload,
    query_escape,
    split_address,
    text_field,
    thresholds,
)
from providers.vendor_http import (
    Answer,
    VendorHttp,
    http_failure,
    http_url,
    redact,
    required_text,
    shown_url,
    timeout_of,
)


class KayentaProvider:
    """One pooled session per Kayenta address (and Basic auth, if the address has one)."""

    kind: ClassVar[str] = KIND
    STATIC_KEYS: ClassVar[bool] = True  # keys come from the block alone
    # Each measurement starts a canary execution of its own: never shared with another
    # measurement nor answered from the reuse window (a short interval would otherwise
    # get the previous execution's score back).
    COALESCE: ClassVar[bool] = False
    RESUME_DELAY_S: ClassVar[float] = DEFAULT_RESUME_DELAY_S  # set by configured()

    def __init__(self, address: str) -> None:
        self.address, user, password = split_address(address)
        self.shown = shown_url(self.address)
        self.secrets = (password,) if password else ()
        self.headers = {"Accept": "application/json", "User-Agent": "analysisd"}
        if user or password:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        self.http = VendorHttp(PROVIDER)

    # -- ProviderClass

    @classmethod
    def configured(cls, settings: Mapping[str, Any]) -> type[KayentaProvider]:
        """The class for a registry whose settings file has `providers` = `settings`."""
        block = settings.get(KIND) or {}
        raw = block.get(SETTINGS_KEY) if isinstance(block, Mapping) else None
        if raw is None:
            return cls
        try:
            delay = float(raw)
        except (TypeError, ValueError):
            delay = math.nan
        if not (delay > 0 and math.isfinite(delay)):
            raise ProviderConfigError(
                f"kayenta: providers.kayenta.{SETTINGS_KEY} must be a positive number of "
                f"seconds, got {raw!r}",
                provider=PROVIDER,
            )
        return type(cls.__name__, (cls,), {"RESUME_DELAY_S": delay, "__module__": cls.__module__})

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> None:
        check(config)

    @classmethod
    def pool_key(cls, config: Mapping[str, Any], secrets: SecretLookup) -> tuple[Any, ...]:
        address, user, password = split_address(
            http_url(required_text(config, "address", KIND), KIND)
        )
        identity = (
            hashlib.sha256(f"{user}\0{password}".encode()).hexdigest()[:16]
            if user or password
            else ""
        )
        return (KIND, address, identity)

    @classmethod
    def create(cls, config: Mapping[str, Any], secrets: SecretLookup) -> KayentaProvider:
        return cls(http_url(required_text(config, "address", KIND), KIND))

    @classmethod
    def request_key(cls, config: Mapping[str, Any]) -> tuple[Any, ...]:
        # Never shared: each measurement is an execution of its own.
        return (KIND, uuid.uuid4().hex)

    @classmethod
    def limit_address(cls, config: Mapping[str, Any]) -> str:
        return split_address(http_url(required_text(config, "address", KIND), KIND))[0]

    def bind(
        self, config: Mapping[str, Any], context: MeasurementContext = NO_CONTEXT
    ) -> KayentaMetric:
        """One run's metric; its block checked once (`context` is not needed by Kayenta)."""
        check(config)
        return KayentaMetric(self, config, type(self).RESUME_DELAY_S)

    # -- Provider

    async def measure(self, config: Mapping[str, Any]) -> Reading:
        return await self.bind(config)()

    async def series(
        self, config: Mapping[str, Any], query: str, start: datetime, end: datetime, step: float
    ) -> list[float]:
        raise ProviderUnsupported(
            "kayenta: a kayenta metric has no range data (Kayenta judges itself)",
            provider=PROVIDER,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- I/O

    async def get_json(
        self, url: str, timeout_s: float, method: str = "GET", body: str = ""
    ) -> Any:
        """One call; anything but 200 is Argo's Invalid Response; the body decoded."""
        where = redact(url, self.secrets)
        headers = dict(self.headers)
        if method == "POST":
            headers["Content-Type"] = "application/json"
        answer: Answer = await self.http.send(
            method,
            url,
            where=where,
            timeout_s=timeout_s,
            headers=headers,
            body=body.encode() if method == "POST" else None,
        )
        if answer.status != 200:
            detail = INVALID_RESPONSE
            text = answer.body.decode("utf-8", "replace").strip()
            if text:
                detail = f"{INVALID_RESPONSE}: {excerpt(text, 200)}"
            raise http_failure(PROVIDER, where, answer, detail, secrets=self.secrets)
        try:
            return json.loads(answer.body)
        except ValueError as exc:
            raise ProviderBadBody(
                f"kayenta at {where}: HTTP 200 but the body is not JSON ({exc}): "
                f"{redact(excerpt(answer.body, 200), self.secrets)!r}",
                provider=PROVIDER,
                address=self.shown,
            ) from None


class KayentaMetric:
    """A kayenta metric bound for one run: starts an execution per measurement, polls it."""

    def __init__(
        self, provider: KayentaProvider, config: Mapping[str, Any], resume_delay: float
    ) -> None:
        self.provider = provider
        self.config = config
        self.resume_delay = resume_delay
        self.timeout_s = timeout_of(config, DEFAULT_TIMEOUT_S, KIND)
        self.key = uuid.uuid4().hex
        self.pending: str | None = None  # the execution of a measurement not yet answered

    def request_key(self) -> tuple[Any, ...]:
        return (KIND, self.key)

    async def __call__(self) -> Reading:
        try:
            if self.pending is None:
                self.pending = await self.start()
            execution = self.pending
            score = await self.wait(execution)
        except ProviderRateLimited:
            raise  # the registry retries; a started execution is polled, not started again
        except BaseException:
            self.pending = None
            raise
        self.pending = None
        passing, marginal = thresholds(self.config)
        value = int(score)  # Go's int(float64): towards zero
        return Reading(
            result=value,
            value=str(value),
            metadata={
                EXECUTION_ID_KEY: execution,
                PHASE_METADATA_KEY: evaluate(value, passing, marginal),
            },
            go_type="int",
        )

    def _url(self, path: str) -> str:
        return self.provider.address + path

    def _bad(self, where: str, message: str) -> ProviderBadBody:
        return ProviderBadBody(
            f"kayenta at {where}: {message}", provider=PROVIDER, address=self.provider.shown
        )

    async def start(self) -> str:
        """Argo's Run: the config id by name, then a new execution's id."""
        c = self.config
        storage = text_field(c.get("storageAccountName"), "storageAccountName")
        application = str(c["application"])
        name = str(c["canaryConfigName"])
        lookup = self._url(
            f"/canaryConfig?application={query_escape(application)}&configurationAccountName={query_escape(storage)}"
        )
        configs = await self.provider.get_json(lookup, self.timeout_s)
        if configs is None:  # Go leaves the slice empty for a JSON null
            configs = []
        if not isinstance(configs, list):
            raise self._bad(
                shown_url(lookup),
                f"json: cannot unmarshal {_json_kind(configs)} into Go value of type "
                "[]kayenta.canaryConfig",
            )
        config_id = ""
        for entry in configs:
            if isinstance(entry, Mapping) and entry.get("name") == name:
                config_id = str(entry.get("id") or "")
        if not config_id:
            raise ProviderError(
                f"kayenta at {shown_url(lookup)}: no canary config named {name!r} for "
                f"application {application!r} ({len(configs)} listed)",
                provider=PROVIDER,
                address=self.provider.shown,
            )
        metrics = text_field(c.get("metricsAccountName"), "metricsAccountName")
        configuration = text_field(c.get("configurationAccountName"), "configurationAccountName")
        job = self._url(
            f"/canary/{query_escape(config_id)}?application={query_escape(application)}"
            f"&metricsAccountName={query_escape(metrics)}"
            f"&configurationAccountName={query_escape(configuration)}"
            f"&storageAccountName={query_escape(storage)}"
        )
        started = await self.provider.get_json(job, self.timeout_s, "POST", payload(c))
        if not isinstance(started, Mapping):
            raise self._bad(
                shown_url(job),
                f"json: cannot unmarshal {_json_kind(started)} into Go value of type "
                "map[string]interface {}",
            )
        execution = started.get(EXECUTION_ID_KEY)
        if isinstance(execution, float | int) and not isinstance(execution, bool):
            execution = go_value(float(execution))
        if not isinstance(execution, str) or not execution:
            raise self._bad(shown_url(job), INVALID_EXECUTION_ID)
        return execution

    async def wait(self, execution: str) -> float:
        """Argo's Resume, every resume delay, until the execution is complete: its score."""
        url = self._url(f"/canary/{query_escape(execution)}")
        where = shown_url(url)
        while True:
            await asyncio.sleep(self.resume_delay)
            patch = await self.provider.get_json(url, self.timeout_s)
            if not isinstance(patch, Mapping):
                raise self._bad(
                    where,
                    f"json: cannot unmarshal {_json_kind(patch)} into Go value of type "
                    "map[string]interface {}",
                )
            complete, error = nested(patch, ("complete",), "bool")
            if complete is None:
                raise self._bad(where, error or MISSING_COMPLETE)
            if not complete:
                continue
            score, error = nested(patch, ("result", "judgeResult", "score", "score"), "float64")
            if score is None:
                raise self._bad(where, error or MISSING_SCORE)
            return float(score)


def _json_kind(value: Any) -> str:
    """encoding/json's name for a JSON value's kind in an UnmarshalTypeError."""
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "number"

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
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from providers.base import (
    ProviderBadBody,
    ProviderConfigError,
    ProviderError,
    ProviderRateLimited,
    ProviderUnsupported,
    Reading,
    SecretLookup,
    excerpt,
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

KIND = "kayenta"
PROVIDER = "kayenta"
EXECUTION_ID_KEY = "canaryExecutionId"  # Argo's measurement metadata key
PHASE_METADATA_KEY = "analysisd.io/phase"  # the engine takes the phase from here
DEFAULT_TIMEOUT_S = 15.0  # Argo's httpConnectionTimout
DEFAULT_RESUME_DELAY_S = 15.0  # Argo's resumeDelay
SETTINGS_KEY = "resumeDelaySeconds"

INVALID_RESPONSE = "Invalid Response"
INVALID_EXECUTION_ID = "Invalid canaryExecutionId"
MISSING_COMPLETE = "Missing Complete Status"
MISSING_SCORE = "Missing Score"

# Argo's jobPayloadFormat and scopeFormat, character for character.
_PAYLOAD = (
    "\n\t\t\t\t\t\t\t{\n"
    '\t\t\t\t\t\t\t\t"scopes": {\n'
    "\t\t\t\t\t\t\t\t\t\t{scopes}\n"
    "\t\t\t\t\t\t\t\t},\n"
    '                                "thresholds" : {\n'
    '                                    "pass": {passing},\n'
    '                                    "marginal": {marginal}\n'
    "                                }\n"
    "                            }"
)
_SCOPE = '"{name}":{{"controlScope": {control}, "experimentScope": {experiment}}}'
_SCOPE_FIELDS = ("scope", "region", "step", "start", "end")  # ScopeDetail's order


# ---------------------------------------------------------------- the block


def _config_error(message: str, field: str) -> ProviderConfigError:
    return ProviderConfigError(f"kayenta: {message}", provider=PROVIDER, field=field)


def _go_int(value: Any, field: str) -> int:
    """A Go ``int`` field: a whole number (YAML may give 90.0), not a bool or a string."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _config_error(f"{field} must be an integer, got {value!r}", field)
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise _config_error(f"{field} must be an integer, got {value!r}", field)
    return int(value)


def _text(value: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _config_error(f"{field} must be a string, got {value!r}", field)
    return value


def thresholds(config: Mapping[str, Any]) -> tuple[int, int]:
    """(pass, marginal) from Argo's ``threshold`` block.

    Argo's own docs example writes ``thresholds``, which Argo's controller drops (its
    field is ``threshold``), leaving pass 0: every score passes. analysisd reads
    ``thresholds`` when ``threshold`` is absent, and requires one of them.
    """
    block = config.get("threshold")
    if block is None:
        block = config.get("thresholds")
    if not isinstance(block, Mapping):
        raise _config_error("threshold: {pass, marginal} is required", "threshold")
    return (
        _go_int(block.get("pass"), "threshold.pass"),
        _go_int(block.get("marginal"), "threshold.marginal"),
    )


def scope_detail(value: Any, field: str) -> dict[str, Any]:
    """Argo's ScopeDetail: only its five fields, zero values for those not given."""
    if not isinstance(value, Mapping):
        raise _config_error(f"{field} must be a mapping {{scope, region, step, start, end}}", field)
    return {
        "scope": _text(value.get("scope"), f"{field}.scope"),
        "region": _text(value.get("region"), f"{field}.region"),
        "step": _go_int(value.get("step", 0), f"{field}.step"),
        "start": _text(value.get("start"), f"{field}.start"),
        "end": _text(value.get("end"), f"{field}.end"),
    }


def scopes_of(config: Mapping[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    scopes = config.get("scopes")
    if not isinstance(scopes, Sequence) or isinstance(scopes, str) or not scopes:
        raise _config_error("scopes must list at least one scope", "scopes")
    out = []
    for i, scope in enumerate(scopes):
        where = f"scopes[{i}]"
        if not isinstance(scope, Mapping):
            raise _config_error(f"{where} must be a mapping", where)
        out.append(
            (
                _text(scope.get("name"), f"{where}.name"),
                scope_detail(scope.get("controlScope"), f"{where}.controlScope"),
                scope_detail(scope.get("experimentScope"), f"{where}.experimentScope"),
            )
        )
    return out


def check(config: Mapping[str, Any]) -> None:
    """What the block must hold before any call (Argo's CRD types say the same)."""
    http_url(required_text(config, "address", KIND), KIND)
    for key in ("application", "canaryConfigName"):
        required_text(config, key, KIND)
    for key in ("metricsAccountName", "configurationAccountName", "storageAccountName"):
        _text(config.get(key), key)
    thresholds(config)
    scopes_of(config)
    timeout_of(config, DEFAULT_TIMEOUT_S, KIND)


def go_marshal(value: Any) -> str:
    """encoding/json's output: no spaces, <, > and & escaped, non-ASCII kept as UTF-8."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def payload(config: Mapping[str, Any]) -> str:
    """The body Argo POSTs: its format string filled in as fmt.Sprintf fills it."""
    scopes = ",".join(
        _SCOPE.format(
            # Argo puts the name in raw (%s); escaped here so a quote cannot break the JSON.
            name=go_marshal(name)[1:-1],
            control=go_marshal({k: control[k] for k in _SCOPE_FIELDS}),
            experiment=go_marshal({k: experiment[k] for k in _SCOPE_FIELDS}),
        )
        for name, control, experiment in scopes_of(config)
    )
    passing, marginal = thresholds(config)
    return (
        _PAYLOAD.replace("{scopes}", scopes)
        .replace("{passing}", str(passing))
        .replace("{marginal}", str(marginal))
    )


def evaluate(score: int, passing: int, marginal: int) -> str:
    """Argo's evaluateResult."""
    if score >= passing:
        return "Successful"
    if score >= marginal:
        return "Inconclusive"
    return "Failed"


def split_address(address: str) -> tuple[str, str, str]:
    """(address without userinfo, user, password): Go's client sends userinfo as Basic."""
    parts = urllib.parse.urlsplit(address)
    if parts.username is None and parts.password is None:
        return address, "", ""
    return (
        shown_url(address),
        urllib.parse.unquote(parts.username or ""),
        urllib.parse.unquote(parts.password or ""),
    )


def _q(value: str) -> str:
    """A query value as Argo's Sprintf leaves it (plain names unchanged), made URL-safe."""
    return urllib.parse.quote(value, safe="-_.~:")


def _go_type(value: Any) -> str:
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "float64"
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    return "[]interface {}"


def _go_value(value: Any) -> str:
    """fmt's %v of a decoded JSON value (enough for an accessor error)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str | int | float):
        return str(value)
    return excerpt(json.dumps(value), 80)


def _accessor_error(path: Sequence[str], value: Any, expected: str) -> str:
    return (
        f".{'.'.join(path)} accessor error: {_go_value(value)} is of the type "
        f"{_go_type(value)}, expected {expected}"
    )


def nested(patch: Mapping[str, Any], path: Sequence[str], expected: str) -> tuple[Any, str]:
    """unstructured.Nested*: (value, "") found, (None, "") missing, (None, error) wrong type."""
    value: Any = patch
    for i, key in enumerate(path):
        if value is None:  # a null on the way is "not found", as in unstructured
            return None, ""
        if not isinstance(value, Mapping):
            return None, _accessor_error(path[: i + 1], value, "map[string]interface{}")
        if key not in value:
            return None, ""
        value = value[key]
    wanted = bool if expected == "bool" else float
    if isinstance(value, wanted) and not (wanted is float and isinstance(value, bool)):
        return value, ""
    if wanted is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value), ""
    return None, _accessor_error(path, value, expected)


# ---------------------------------------------------------------- the provider


class KayentaProvider:
    """One pooled session per Kayenta address (and Basic auth, if the address has one)."""

    kind: ClassVar[str] = KIND
    STATIC_KEYS: ClassVar[bool] = True  # keys come from the block alone
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

    def bind(self, config: Mapping[str, Any]) -> KayentaMetric:
        """One run's metric; its block checked once."""
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
        storage = _text(c.get("storageAccountName"), "storageAccountName")
        application = str(c["application"])
        name = str(c["canaryConfigName"])
        lookup = self._url(
            f"/canaryConfig?application={_q(application)}&configurationAccountName={_q(storage)}"
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
        job = self._url(
            f"/canary/{_q(config_id)}?application={_q(application)}"
            f"&metricsAccountName={_q(_text(c.get('metricsAccountName'), 'metricsAccountName'))}"
            f"&configurationAccountName="
            f"{_q(_text(c.get('configurationAccountName'), 'configurationAccountName'))}"
            f"&storageAccountName={_q(storage)}"
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
            execution = _go_value(float(execution))
        if not isinstance(execution, str) or not execution:
            raise self._bad(shown_url(job), INVALID_EXECUTION_ID)
        return execution

    async def wait(self, execution: str) -> float:
        """Argo's Resume, every resume delay, until the execution is complete: its score."""
        url = self._url(f"/canary/{_q(execution)}")
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

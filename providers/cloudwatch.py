"""CloudWatch provider: GetMetricData through aiobotocore, shaped as Argo Rollouts does.

Config (the metric's ``provider.cloudWatch`` block, Argo's CRD): ``interval``
(Go duration, default ``5m``: the window ``[now - interval, now]``) and
``metricDataQueries``: ``[{id, expression, label, returnData, period,
metricStat: {metric: {namespace, metricName, dimensions: [{name, value}]},
period, stat, unit}}]`` (PascalCase keys are accepted too). analysisd
extensions: ``region`` (else the AWS environment/profile), ``endpoint`` (else
``AWS_ENDPOINT_URL``, which aiobotocore honours), ``timeout`` (seconds, default
30) and ``maxAttempts`` (botocore attempts, default 1: the scheduler retries).

What conditions see: the list of MetricDataResults with Go's field names —
``[{"Id", "Label", "StatusCode", "Timestamps", "Values", "Messages"}]`` — so
``result[0].Values[0]`` reads the newest value of the first query (CloudWatch
returns newest first). The measurement ``value`` is Go's ``%+v`` of every
result's Values: ``[[0.1 0.2 0.3]]``. Server ``Messages`` go to metadata
``messages`` as in Argo.

``series()`` runs GetMetricData over ``[start, end]`` with every period set to
``step`` and returns the one returned query's values oldest first.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any, ClassVar

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore import exceptions as boto_errors

from providers.base import (
    ProviderAuthError,
    ProviderBadBody,
    ProviderConfigError,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderRateLimited,
    ProviderTimeout,
    Reading,
    SecretLookup,
    excerpt,
)
from providers.gocompat import GO_METRIC_DATA_RESULTS, GoError, format_v, parse_duration_seconds

KIND = "cloudWatch"
PROVIDER = "cloudwatch"
DEFAULT_INTERVAL_S = 300.0
DEFAULT_TIMEOUT_S = 30.0
MAX_PAGES = 100  # a guard against a server that keeps handing out NextTokens
THROTTLING = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests"}
AUTH = {
    "AccessDenied",
    "AccessDeniedException",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
}


# ---------------------------------------------------------------- pure helpers


def interval_seconds(config: Mapping[str, Any]) -> float:
    """The ``interval`` Go duration in seconds (default 5m); it must be positive."""
    text = str(config.get("interval") or "5m").strip()
    try:
        total = parse_duration_seconds(text)
    except GoError as exc:
        raise ProviderConfigError(
            f"cloudwatch: interval: {exc}", provider=PROVIDER, field="interval"
        ) from None
    if total <= 0:
        raise ProviderConfigError(
            f"cloudwatch: interval {text!r} must be positive", provider=PROVIDER, field="interval"
        )
    return total


def go_value(value: float) -> str:
    """Go's %v of a float64 (strconv 'g', shortest): 0.1, 1e+06, 1.5e-05, NaN, +Inf."""
    return format_v(value)


def value_string(results: Sequence[Mapping[str, Any]]) -> str:
    """Argo's ``fmt.Sprintf("%+v", [][]float64{...})`` of every result's Values."""
    inner = ("[" + " ".join(go_value(v) for v in r["Values"]) + "]" for r in results)
    return "[" + " ".join(inner) + "]"


def _field(block: Mapping[str, Any], name: str) -> Any:
    """A CRD field by its camelCase name, or the AWS PascalCase spelling."""
    if name in block:
        return block[name]
    return block.get(name[0].upper() + name[1:])


def _int(raw: Any, where: str) -> int:
    # Argo's period is an IntOrString; "300" counts.
    try:
        return int(str(raw))
    except ValueError:
        raise ProviderConfigError(
            f"cloudwatch: {where}: {raw!r} is not a whole number of seconds",
            provider=PROVIDER,
            field=where,
        ) from None


def to_aws_queries(raw: Any, *, period: int | None = None) -> list[dict[str, Any]]:
    """metricDataQueries (CRD) -> GetMetricData MetricDataQueries; ``period`` overrides."""
    if not isinstance(raw, list) or not raw:
        raise ProviderConfigError(
            "cloudwatch: metricDataQueries must be a non-empty list",
            provider=PROVIDER,
            field="metricDataQueries",
        )
    queries: list[dict[str, Any]] = []
    for index, block in enumerate(raw):
        where = f"metricDataQueries[{index}]"
        if not isinstance(block, Mapping) or not _field(block, "id"):
            raise ProviderConfigError(
                f"cloudwatch: {where}.id is required", provider=PROVIDER, field=f"{where}.id"
            )
        query: dict[str, Any] = {"Id": str(_field(block, "id"))}
        for name, key in (("expression", "Expression"), ("label", "Label")):
            if _field(block, name) is not None:
                query[key] = str(_field(block, name))
        if _field(block, "returnData") is not None:
            query["ReturnData"] = bool(_field(block, "returnData"))
        if _field(block, "period") is not None or (period and "Expression" in query):
            query["Period"] = period or _int(_field(block, "period"), f"{where}.period")
        stat = _field(block, "metricStat")
        if stat is not None:
            query["MetricStat"] = _metric_stat(stat, f"{where}.metricStat", period)
        if ("Expression" in query) == ("MetricStat" in query):
            raise ProviderConfigError(
                f"cloudwatch: {where}: give exactly one of expression and metricStat",
                provider=PROVIDER,
                field=where,
            )
        queries.append(query)
    return queries


def _metric_stat(stat: Any, where: str, period: int | None) -> dict[str, Any]:
    metric = _field(stat, "metric") if isinstance(stat, Mapping) else None
    if not isinstance(metric, Mapping) or not _field(metric, "metricName"):
        raise ProviderConfigError(
            f"cloudwatch: {where}.metric.metricName is required",
            provider=PROVIDER,
            field=f"{where}.metric.metricName",
        )
    aws_metric: dict[str, Any] = {"MetricName": str(_field(metric, "metricName"))}
    if _field(metric, "namespace"):
        aws_metric["Namespace"] = str(_field(metric, "namespace"))
    dimensions = _field(metric, "dimensions")
    if dimensions:
        aws_metric["Dimensions"] = [
            {"Name": str(_field(d, "name")), "Value": str(_field(d, "value"))} for d in dimensions
        ]
    if not _field(stat, "stat"):
        raise ProviderConfigError(
            f"cloudwatch: {where}.stat is required", provider=PROVIDER, field=f"{where}.stat"
        )
    result: dict[str, Any] = {
        "Metric": aws_metric,
        "Period": period or _int(_field(stat, "period") or 0, f"{where}.period"),
        "Stat": str(_field(stat, "stat")),
    }
    if _field(stat, "unit"):
        result["Unit"] = str(_field(stat, "unit"))
    return result


def shape_results(pages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """GetMetricData pages -> Argo's list of MetricDataResults (pages merged per Id)."""
    merged: dict[str, dict[str, Any]] = {}
    for page in pages:
        results = page.get("MetricDataResults")
        if not isinstance(results, list):
            raise ProviderBadBody(
                f"cloudwatch: MetricDataResults missing: {excerpt(repr(page))}", provider=PROVIDER
            )
        for raw in results:
            key = str(raw.get("Id"))
            entry = merged.setdefault(
                key,
                {
                    "Id": raw.get("Id"),
                    "Label": raw.get("Label"),
                    "StatusCode": raw.get("StatusCode"),
                    "Timestamps": [],
                    "Values": [],
                    "Messages": [],
                },
            )
            entry["StatusCode"] = raw.get("StatusCode", entry["StatusCode"])
            entry["Timestamps"].extend(_utc(t) for t in raw.get("Timestamps") or [])
            entry["Values"].extend(float(v) for v in raw.get("Values") or [])
            entry["Messages"].extend(_messages(raw.get("Messages")))
    return list(merged.values())


def _utc(stamp: Any) -> Any:
    # botocore hands back tzlocal() datetimes; results should not depend on the host zone.
    return stamp.astimezone(UTC) if isinstance(stamp, datetime) else stamp


def _messages(raw: Any) -> list[dict[str, Any]]:
    return [{"Code": m.get("Code"), "Value": m.get("Value")} for m in raw or []]


# ---------------------------------------------------------------- the provider


class CloudWatchProvider:
    """One aiobotocore CloudWatch client per (region, endpoint, credentials, attempts)."""

    kind: ClassVar[str] = KIND

    def __init__(self, region: str | None, endpoint: str | None, max_attempts: int) -> None:
        self.region = region
        self.endpoint = endpoint
        self.address = endpoint or os.environ.get("AWS_ENDPOINT_URL") or f"cloudwatch {region}"
        self._max_attempts = max_attempts
        self._stack = AsyncExitStack()
        self._client: Any = None
        self._lock = asyncio.Lock()

    @classmethod
    def _settings(cls, config: Mapping[str, Any]) -> tuple[str | None, str | None, int]:
        # The Go SDK Argo uses reads AWS_REGION; botocore only AWS_DEFAULT_REGION.
        region = config.get("region") or os.environ.get("AWS_REGION") or None
        endpoint = config.get("endpoint") or None
        attempts = _int(config.get("maxAttempts", 1), "maxAttempts")
        if attempts < 1:
            raise ProviderConfigError(
                "cloudwatch: maxAttempts must be >= 1", provider=PROVIDER, field="maxAttempts"
            )
        return (str(region) if region else None, str(endpoint) if endpoint else None, attempts)

    @classmethod
    def pool_key(cls, config: Mapping[str, Any], secrets: SecretLookup) -> tuple[Any, ...]:
        region, endpoint, attempts = cls._settings(config)
        # The environment picks credentials, region and endpoint when the block does not.
        env = tuple(
            os.environ.get(name, "")
            for name in (
                "AWS_REGION",
                "AWS_DEFAULT_REGION",
                "AWS_ENDPOINT_URL",
                "AWS_PROFILE",
                "AWS_ACCESS_KEY_ID",
            )
        )
        # Hold a fingerprint of the identity, not the access key id itself.
        identity = hashlib.sha256("\0".join(env).encode()).hexdigest()[:16]
        return (KIND, region, endpoint, attempts, identity)

    @classmethod
    def limit_address(cls, config: Mapping[str, Any]) -> str:
        """What the registry's per-address rate limits apply to."""
        region, endpoint, _ = cls._settings(config)
        return endpoint or os.environ.get("AWS_ENDPOINT_URL") or f"cloudwatch:{region}"

    @classmethod
    def create(cls, config: Mapping[str, Any], secrets: SecretLookup) -> CloudWatchProvider:
        return cls(*cls._settings(config))

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> None:
        """What create() and every measurement parse: settings, interval, the queries."""
        cls._settings(config)
        interval_seconds(config)
        to_aws_queries(config.get("metricDataQueries"))

    @classmethod
    def request_key(cls, config: Mapping[str, Any]) -> tuple[Any, ...]:
        queries = json.dumps(config.get("metricDataQueries"), sort_keys=True, default=str)
        return (KIND, str(config.get("interval") or ""), queries)

    async def aclose(self) -> None:
        self._client = None
        await self._stack.aclose()

    async def _get_client(self, io_timeout_s: float) -> Any:
        async with self._lock:
            if self._client is None:
                session = AioSession()
                config = AioConfig(
                    connect_timeout=io_timeout_s,
                    read_timeout=io_timeout_s,
                    retries={"total_max_attempts": self._max_attempts, "mode": "standard"},
                )
                self._client = await self._stack.enter_async_context(
                    session.create_client(
                        "cloudwatch",
                        region_name=self.region,
                        endpoint_url=self.endpoint,
                        config=config,
                    )
                )
            return self._client

    async def measure(self, config: Mapping[str, Any]) -> Reading:
        interval = interval_seconds(config)
        queries = to_aws_queries(config.get("metricDataQueries"))
        end = time.time()
        pages = await self._get_metric_data(
            config,
            queries,
            datetime.fromtimestamp(end - interval, UTC),
            datetime.fromtimestamp(end, UTC),
        )
        results = shape_results(pages)
        metadata: dict[str, str] = {}
        messages = [m for page in pages for m in _messages(page.get("Messages"))]
        if messages:
            metadata["messages"] = repr(messages)
        return Reading(
            result=results,
            value=value_string(results),
            metadata=metadata,
            go_type=GO_METRIC_DATA_RESULTS,
        )

    async def series(
        self, config: Mapping[str, Any], query: str, start: datetime, end: datetime, step: float
    ) -> list[float]:
        """Values of the one returned query over [start, end], every ``step`` s, oldest first."""
        raw: Any = config.get("metricDataQueries")
        if query.strip():
            try:
                raw = json.loads(query)
            except ValueError:
                raise ProviderConfigError(
                    "cloudwatch: a series query is metricDataQueries as JSON", provider=PROVIDER
                ) from None
            raw = [raw] if isinstance(raw, Mapping) else raw
        queries = to_aws_queries(raw, period=max(1, int(step)))
        pages = await self._get_metric_data(config, queries, start, end, ascending=True)
        returned = [r for r in shape_results(pages) if r["Timestamps"] or r["Values"]]
        if not returned:
            return []
        if len(returned) > 1:
            names = ", ".join(str(r["Id"]) for r in returned)
            raise ProviderBadBody(
                f"cloudwatch: series needs one returned query, got {names}; "
                "set returnData: false on the others",
                provider=PROVIDER,
                address=self.address,
            )
        pairs = sorted(zip(returned[0]["Timestamps"], returned[0]["Values"], strict=False))
        return [value for _, value in pairs]

    async def _get_metric_data(
        self,
        config: Mapping[str, Any],
        queries: list[dict[str, Any]],
        start: datetime,
        end: datetime,
        *,
        ascending: bool = False,
    ) -> list[dict[str, Any]]:
        timeout = float(config.get("timeout") or DEFAULT_TIMEOUT_S)
        ids = ", ".join(q["Id"] for q in queries)
        where = f"cloudwatch {self.address} GetMetricData (queries {ids})"
        params: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": start,
            "EndTime": end,
        }
        if ascending:
            params["ScanBy"] = "TimestampAscending"
        pages: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(timeout):
                client = await self._get_client(timeout)
                for _ in range(MAX_PAGES):
                    page = await client.get_metric_data(**params)
                    pages.append(page)
                    if not page.get("NextToken"):
                        break
                    params["NextToken"] = page["NextToken"]
        except TimeoutError:
            raise ProviderTimeout(
                f"{where}: no answer within {timeout:g}s", provider=PROVIDER, address=self.address
            ) from None
        except boto_errors.BotoCoreError as exc:
            raise _map_botocore(where, exc, self.address) from None
        except boto_errors.ClientError as exc:
            raise _map_client_error(where, exc, self.address) from None
        return pages


def _map_botocore(where: str, exc: boto_errors.BotoCoreError, address: str) -> ProviderError:
    text = f"{where}: {exc}"
    if isinstance(exc, boto_errors.ConnectTimeoutError | boto_errors.ReadTimeoutError):
        return ProviderTimeout(text, provider=PROVIDER, address=address)
    if isinstance(exc, boto_errors.NoCredentialsError | boto_errors.PartialCredentialsError):
        return ProviderAuthError(text, provider=PROVIDER, address=address)
    if isinstance(exc, boto_errors.NoRegionError):
        return ProviderConfigError(
            f"{text} (set region in the provider block or AWS_REGION)",
            provider=PROVIDER,
            address=address,
        )
    if isinstance(exc, boto_errors.ParamValidationError):
        return ProviderConfigError(text, provider=PROVIDER, address=address)
    if isinstance(exc, boto_errors.HTTPClientError | boto_errors.ConnectionError):
        return ProviderConnectionError(text, provider=PROVIDER, address=address)
    return ProviderBadBody(text, provider=PROVIDER, address=address)


def _map_client_error(where: str, exc: boto_errors.ClientError, address: str) -> ProviderError:
    error = exc.response.get("Error", {})
    meta = exc.response.get("ResponseMetadata", {})
    status = int(meta.get("HTTPStatusCode") or 0)
    code = str(error.get("Code") or "")
    detail = excerpt(str(error.get("Message") or ""))
    label = f"HTTP {status}" if code in ("", str(status)) else f"HTTP {status} {code}"
    text = f"{where}: {label}: {detail}" if detail else f"{where}: {label}"
    if code in AUTH or status in (401, 403):
        return ProviderAuthError(text, provider=PROVIDER, address=address)
    if code in THROTTLING or status == 429:
        return ProviderRateLimited(
            text, status=status or 429, body=detail, provider=PROVIDER, address=address
        )
    return ProviderHTTPError(text, status=status, body=detail, provider=PROVIDER, address=address)

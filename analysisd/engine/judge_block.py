"""The `judge:` provider block of an AnalysisTemplate metric, parsed and checked (pure:
a config named by canaryConfigName is read by the caller, through `named`).

provider:
  judge:
    source:                      # the provider the series come from (one key, as in Argo)
      prometheus:
        address: http://prometheus:9090
    lookback: 30m                # window ending at measurement time
    # start: 2026-01-01T10:00:00Z  # or a fixed window (RFC 3339); end defaults to the
    # end: 2026-01-01T11:00:00Z    #   measurement time, and start to end - lookback
    # baselineOffset: 1h           # the baseline's window that much earlier
    step: 1m
    scopes:                      # what ${scope} becomes in each query
      baseline: version="stable"
      canary: version="canary"
    queries:
      error-rate: sum(rate(http_requests_total{status="500",${scope}}[1m]))
      latency:                   # or separate queries
        baseline: ...
        canary: ...
    canaryConfig: {...}          # a Kayenta canary config, inline
    canaryConfigName: checkout   # ... or a file <config dir>/checkout.json|yaml
                                 #   (engine/judging.py reads it)
    thresholds: {pass: 95, marginal: 75}
    strict: false                # true: Kayenta's silent fallbacks become errors
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from analysisd.durations import DurationError, parse_seconds
from analysisd.judge.config import (
    CanaryConfig,
    MetricConfig,
    check_thresholds,
    decode_config_text,
    parse_canary_config,
)
from analysisd.judge.errors import ConfigError

# canaryConfigName -> (where it was read, for messages; its JSON or YAML text).
NamedConfigs = Callable[[str], tuple[str, str]]

SCOPE_PLACEHOLDER = "${scope}"
SOURCE_KINDS = ("prometheus", "datadog", "cloudWatch", "web")
_KNOWN_KEYS = {
    "source",
    "lookback",
    "start",
    "end",
    "baselineOffset",
    "step",
    "scopes",
    "queries",
    "canaryConfig",
    "canaryConfigName",
    "thresholds",
    "strict",
}


@dataclass(frozen=True, slots=True)
class MetricQueries:
    baseline: str
    canary: str


@dataclass(frozen=True, slots=True)
class JudgeSpec:
    """Everything one judge measurement needs, validated."""

    source_kind: str
    source_config: Mapping[str, Any]
    lookback_seconds: float
    step_seconds: float
    queries: Mapping[str, MetricQueries]
    canary_config: CanaryConfig
    pass_threshold: float
    marginal_threshold: float
    # A fixed window (else the lookback ending at measurement time), and how much
    # earlier the baseline's window is.
    start: datetime | None = None
    end: datetime | None = None
    baseline_offset_seconds: float = 0.0


def _instant(value: Any, where: str) -> datetime | None:
    """An RFC 3339 time (Kayenta's ISO instants, Argo's scope start/end), as UTC."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected an RFC 3339 time such as 2026-01-01T10:00:00Z")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{where}: {value!r} is not an RFC 3339 time such as 2026-01-01T10:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise ConfigError(f"{where}: {value!r} has no time zone (add Z for UTC)")
    return moment.astimezone(UTC)


def _seconds(value: Any, where: str, default: str | None) -> float:
    if value is None:
        if default is None:
            raise ConfigError(f"{where}: required (a duration such as 30m)")
        value = default
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a duration, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = parse_seconds(value)
        except DurationError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    else:
        raise ConfigError(f"{where}: expected a duration, got {value!r}")
    if seconds <= 0:
        raise ConfigError(f"{where}: must be positive (got {value!r})")
    return seconds


def _source(block: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    source = block.get("source")
    if not isinstance(source, Mapping) or len(source) != 1:
        raise ConfigError(
            "judge.source: required, one provider block such as {prometheus: {address: ...}}"
            f" (one of {', '.join(SOURCE_KINDS)})"
        )
    ((kind, config),) = source.items()
    if kind not in SOURCE_KINDS:
        raise ConfigError(
            f"judge.source.{kind}: cannot fetch series from {kind!r};"
            f" use one of {', '.join(SOURCE_KINDS)}"
        )
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise ConfigError(f"judge.source.{kind}: expected an object of provider settings")
    return str(kind), config


def _scoped(query: Any, where: str, scopes: Mapping[str, str]) -> MetricQueries:
    if isinstance(query, str):
        if SCOPE_PLACEHOLDER not in query:
            raise ConfigError(
                f"{where}: no ${{scope}} placeholder, so baseline and canary would run the"
                " same query; add ${scope} or give separate baseline and canary queries"
            )
        if "baseline" not in scopes or "canary" not in scopes:
            raise ConfigError(
                "judge.scopes: baseline and canary are required when a query uses ${scope}"
            )
        return MetricQueries(
            query.replace(SCOPE_PLACEHOLDER, scopes["baseline"]),
            query.replace(SCOPE_PLACEHOLDER, scopes["canary"]),
        )
    if isinstance(query, Mapping):
        baseline, canary = query.get("baseline"), query.get("canary")
        if not isinstance(baseline, str) or not isinstance(canary, str):
            raise ConfigError(f"{where}: needs both baseline and canary queries (strings)")
        return MetricQueries(baseline, canary)
    raise ConfigError(f"{where}: expected a query string or {{baseline, canary}}")


def _inline_template(metric: MetricConfig) -> str | None:
    """A Kayenta Prometheus query config's customInlineTemplate ("PromQL:..."), if any."""
    query = metric.raw.get("query")
    template = query.get("customInlineTemplate") if isinstance(query, Mapping) else None
    if not isinstance(template, str) or not template.strip():
        return None
    return template.removeprefix("PromQL:").strip()


def _queries(
    block: Mapping[str, Any], scopes: Mapping[str, str], config: CanaryConfig
) -> dict[str, MetricQueries]:
    raw = block.get("queries") or {}
    if not isinstance(raw, Mapping):
        raise ConfigError("judge.queries: expected metric name -> query (with ${scope})")
    known = {m.name for m in config.metrics}
    for name in raw:
        if name not in known:
            raise ConfigError(f"judge.queries.{name}: the canary config has no metric {name!r}")
    out: dict[str, MetricQueries] = {}
    for index, metric in enumerate(config.metrics):
        if metric.name in raw:
            out[metric.name] = _scoped(raw[metric.name], f"judge.queries.{metric.name}", scopes)
            continue
        template = _inline_template(metric)
        if template is None:
            raise ConfigError(
                f"judge.queries: no query for canary config metric {metric.name!r} (give"
                f" judge.queries.{metric.name} or query.customInlineTemplate in the config)"
            )
        where = f"canaryConfig.metrics[{index}].query.customInlineTemplate"
        out[metric.name] = _scoped(template, where, scopes)
    return out


def _canary_config(
    block: Mapping[str, Any], named: NamedConfigs | None, strict: bool
) -> CanaryConfig:
    inline, name = block.get("canaryConfig"), block.get("canaryConfigName")
    if (inline is None) == (name is None):
        raise ConfigError("judge: give exactly one of canaryConfig (inline) or canaryConfigName")
    if inline is not None:
        data = (
            decode_config_text(inline, "judge.canaryConfig") if isinstance(inline, str) else inline
        )
        try:
            return parse_canary_config(data, strict=strict)
        except ConfigError as exc:
            text = str(exc).removeprefix("canary config: ")
            joiner = ": " if text != str(exc) else "."
            raise ConfigError(f"judge.canaryConfig{joiner}{text}") from exc
    if named is None:
        raise ConfigError(
            "judge.canaryConfigName: no canary config directory is configured"
            " (set ANALYSISD_CANARY_CONFIG_DIR to the folder of <name>.json|yaml files)"
        )
    where, text = named(str(name))
    try:
        return parse_canary_config(decode_config_text(text, where), strict=strict)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def parse_judge_block(block: Any, *, named: NamedConfigs | None = None) -> JudgeSpec:
    """The resolved `provider.judge` mapping -> JudgeSpec; ConfigError names the field.

    `named` reads a canary config by name (engine/judging.py: from the config directory);
    without it a canaryConfigName is refused."""
    if not isinstance(block, Mapping):
        raise ConfigError("judge: expected an object")
    for key in block:
        if key not in _KNOWN_KEYS:
            raise ConfigError(
                f"judge.{key}: unknown setting (known: {', '.join(sorted(_KNOWN_KEYS))})"
            )
    strict = block.get("strict", False)
    if not isinstance(strict, bool):
        raise ConfigError(f"judge.strict: expected true or false, got {strict!r}")
    kind, source_config = _source(block)
    scopes = block.get("scopes") or {}
    if not isinstance(scopes, Mapping) or not all(isinstance(v, str) for v in scopes.values()):
        raise ConfigError("judge.scopes: expected {baseline: <scope>, canary: <scope>} strings")
    canary_config = _canary_config(block, named, strict)
    queries = _queries(block, scopes, canary_config)

    thresholds = block.get("thresholds") or {}
    if not isinstance(thresholds, Mapping):
        raise ConfigError("judge.thresholds: expected {pass: N, marginal: N}")
    pass_t = thresholds.get("pass", canary_config.pass_threshold)
    marginal_t = thresholds.get("marginal", canary_config.marginal_threshold)
    pass_f = 95.0 if pass_t is None else _number(pass_t, "judge.thresholds.pass")
    marginal_f = 75.0 if marginal_t is None else _number(marginal_t, "judge.thresholds.marginal")
    check_thresholds(pass_f, marginal_f)
    start = _instant(block.get("start"), "judge.start")
    end = _instant(block.get("end"), "judge.end")
    step = _seconds(block.get("step"), "judge.step", "1m")
    if start is None:
        lookback = _seconds(block.get("lookback"), "judge.lookback", None)
        window, window_name = lookback, "judge.lookback"
    else:
        lookback = 0.0
        if block.get("lookback") is not None:
            raise ConfigError("judge.lookback: give lookback or start, not both")
        if end is not None and end <= start:
            raise ConfigError("judge.end: must be after judge.start")
        window = (end - start).total_seconds() if end is not None else step
        window_name = "the window from judge.start to judge.end"
    if step > window:
        raise ConfigError(f"judge.step ({step:g}s) is longer than {window_name} ({window:g}s)")
    offset = block.get("baselineOffset")
    offset_s = 0.0 if offset is None else _seconds(offset, "judge.baselineOffset", None)
    return JudgeSpec(
        kind,
        source_config,
        lookback,
        step,
        queries,
        canary_config,
        pass_f,
        marginal_f,
        start=start,
        end=end,
        baseline_offset_seconds=offset_s,
    )


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    return float(value)

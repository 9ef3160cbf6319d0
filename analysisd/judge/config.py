"""Kayenta canary configs, read as Kayenta reads them, with the silent fallbacks made visible.

Kayenta looks settings up with MapUtils (a missing key, a wrong type in a
lookup path, or an unknown enum string silently becomes the default). We
return the same effective settings — so judgements match Kayenta's — plus a
warning for every place Kayenta would have quietly ignored what was written.
`strict=True` turns those warnings into ConfigError.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from analysisd.judge.classifier import (
    ClassifierSettings,
    Direction,
    EffectSizeMeasure,
    NaNStrategy,
)
from analysisd.judge.errors import ConfigError

ABSENT = None
_CANARY_KEYS = {
    "direction",
    "nanStrategy",
    "critical",
    "mustHaveData",
    "muted",
    "effectSize",
    "outliers",
}
_EFFECT_KEYS = {
    "allowedIncrease",
    "allowedDecrease",
    "criticalIncrease",
    "criticalDecrease",
    "measure",
}
_OUTLIER_KEYS = {"strategy", "outlierFactor"}
DEFAULT_TOLERANCE = 0.25
DEFAULT_CONF_LEVEL = 0.98


def lookup(data: Any, path: Sequence[str]) -> Any:
    """Kayenta's MapUtils.get: nested lookup; lists of maps are searched element-wise."""
    if data is None:
        return ABSENT
    if not path:
        return data
    head, rest = path[0], path[1:]
    if isinstance(data, Mapping):
        return lookup(data.get(head), rest) if head in data else ABSENT
    if isinstance(data, list):
        hits = [lookup(item, path) for item in data]
        found = [h for h in hits if h is not None]
        return found or ABSENT
    return ABSENT


@dataclass(frozen=True, slots=True)
class MetricConfig:
    """One metric's effective judging settings."""

    name: str
    groups: tuple[str, ...]
    direction: Direction = Direction.EITHER
    nan_strategy: NaNStrategy = NaNStrategy.REMOVE
    critical: bool = False
    must_have_data: bool = False
    muted: bool = False
    remove_outliers: bool = False
    outlier_factor: float = 3.0
    classifier: ClassifierSettings = field(default_factory=ClassifierSettings)
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CanaryConfig:
    """A parsed canary config: metrics in order, group weights, thresholds, and warnings."""

    name: str
    metrics: tuple[MetricConfig, ...]
    group_weights: Mapping[str, float]
    pass_threshold: float | None
    marginal_threshold: float | None
    warnings: tuple[str, ...]

    def metric(self, name: str) -> MetricConfig:
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise ConfigError(f"Could not find metric config for {name}")


class _Reader:
    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        if self.strict:
            raise ConfigError(message)
        self.warnings.append(message)

    def number(self, value: Any, where: str, default: float) -> float:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if math.isnan(float(value)):
            raise ConfigError(f"{where}: expected a number, got NaN")
        return float(value)

    def boolean(self, value: Any, where: str) -> bool:
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        # MapUtils.getAsBooleanWithDefault casts (asInstanceOf[Boolean]) outside the
        # classifier's try block, so Kayenta's whole judgement fails with a
        # ClassCastException. We judge on with false, and say so.
        self.warn(
            f"{where}: {value!r} is not a boolean; Kayenta would fail the whole judgement"
            " on it (ClassCastException), analysisd reads it as false"
            " (write true or false without quotes)"
        )
        return False

    def enum(
        self,
        value: Any,
        where: str,
        choices: type[Direction | NaNStrategy | EffectSizeMeasure],
        default: Any,
    ) -> Any:
        if value is None:
            return default
        allowed = [c.value for c in choices]
        if value in allowed:
            return choices(value)
        self.warn(
            f"{where}: unknown value {value!r}; Kayenta silently uses {default.value!r}"
            f" (allowed, case-sensitive: {', '.join(allowed)})"
        )
        return default

    def unknown_keys(self, block: Any, known: set[str], where: str) -> None:
        if isinstance(block, Mapping):
            for key in block:
                if key not in known:
                    self.warn(f"{where}.{key}: unknown setting, ignored")


def _metric(
    raw: Any, index: int, reader: _Reader, tolerance: float, conf_level: float
) -> MetricConfig:
    where = f"metrics[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected an object, got {type(raw).__name__}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name: required (a non-empty string)")
    groups_raw = raw.get("groups", [])
    if not isinstance(groups_raw, list) or not all(isinstance(g, str) for g in groups_raw):
        raise ConfigError(f"{where}.groups: expected a list of group names")
    if not groups_raw:
        reader.warn(
            f"{where}.groups: metric {name!r} is in no group, so it never affects the score"
        )
    ac = raw.get("analysisConfigurations")
    base = f"{where}.analysisConfigurations.canary"
    canary = lookup(ac, ["canary"])
    if canary is not None and not isinstance(canary, Mapping):
        raise ConfigError(f"{base}: expected an object")
    reader.unknown_keys(canary, _CANARY_KEYS, base)
    reader.unknown_keys(lookup(canary, ["effectSize"]), _EFFECT_KEYS, f"{base}.effectSize")
    reader.unknown_keys(lookup(canary, ["outliers"]), _OUTLIER_KEYS, f"{base}.outliers")

    def get(*path: str) -> Any:
        return lookup(ac, ["canary", *path])

    outlier_strategy = get("outliers", "strategy")
    if outlier_strategy not in (None, "remove", "keep"):
        reader.warn(
            f"{base}.outliers.strategy: unknown value {outlier_strategy!r}; Kayenta silently"
            " uses 'keep' (allowed, case-sensitive: remove, keep)"
        )
    factor = reader.number(get("outliers", "outlierFactor"), f"{base}.outliers.outlierFactor", 3.0)
    if factor <= 0:
        raise ConfigError(
            f"{base}.outliers.outlierFactor: must be greater than zero (got {factor})"
        )
    es = f"{base}.effectSize"
    measure = reader.enum(
        get("effectSize", "measure"),
        f"{es}.measure",
        EffectSizeMeasure,
        EffectSizeMeasure.MEAN_RATIO,
    )
    # NetflixACAJudge: "no effect" is a CLES of 0.5 but a mean ratio of 1.0, and
    # every threshold left out defaults to the measure's own no-effect value.
    neutral = 0.5 if measure is EffectSizeMeasure.CLES else 1.0

    def threshold(key: str) -> float:
        return reader.number(get("effectSize", key), f"{es}.{key}", neutral)

    settings = ClassifierSettings(
        tolerance=tolerance,
        conf_level=conf_level,
        effect_size_thresholds=(threshold("allowedDecrease"), threshold("allowedIncrease")),
        critical_thresholds=(threshold("criticalDecrease"), threshold("criticalIncrease")),
        effect_size_measure=measure,
    )
    return MetricConfig(
        name=name,
        groups=tuple(groups_raw),
        direction=reader.enum(get("direction"), f"{base}.direction", Direction, Direction.EITHER),
        nan_strategy=reader.enum(
            get("nanStrategy"), f"{base}.nanStrategy", NaNStrategy, NaNStrategy.REMOVE
        ),
        critical=reader.boolean(get("critical"), f"{base}.critical"),
        must_have_data=reader.boolean(get("mustHaveData"), f"{base}.mustHaveData"),
        muted=reader.boolean(get("muted"), f"{base}.muted"),
        remove_outliers=outlier_strategy == "remove",
        outlier_factor=factor,
        classifier=settings,
        raw=raw,
    )


def parse_canary_config(
    data: Any,
    *,
    strict: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
    conf_level: float = DEFAULT_CONF_LEVEL,
) -> CanaryConfig:
    """Decoded Kayenta canary config -> CanaryConfig; a ConfigError names the field."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"canary config: expected an object, got {type(data).__name__}")
    reader = _Reader(strict)
    judge_name = lookup(data, ["judge", "name"])
    if judge_name is not None and judge_name != "NetflixACAJudge-v1.0":
        reader.warn(f"judge.name: {judge_name!r}; analysisd judges as NetflixACAJudge-v1.0")
    metrics_raw = data.get("metrics")
    if not isinstance(metrics_raw, list) or not metrics_raw:
        raise ConfigError("metrics: required (a non-empty list of metric configs)")
    metrics = tuple(
        _metric(raw, i, reader, tolerance, conf_level) for i, raw in enumerate(metrics_raw)
    )
    seen: set[str] = set()
    for i, metric in enumerate(metrics):
        if metric.name in seen:
            raise ConfigError(f"metrics[{i}].name: duplicate metric name {metric.name!r}")
        seen.add(metric.name)

    classifier = data.get("classifier") or {}
    if not isinstance(classifier, Mapping):
        raise ConfigError("classifier: expected an object")
    weights_raw = classifier.get("groupWeights") or {}
    if not isinstance(weights_raw, Mapping):
        raise ConfigError("classifier.groupWeights: expected an object of group -> weight")
    weights: dict[str, float] = {}
    for group, weight in weights_raw.items():
        value = reader.number(weight, f"classifier.groupWeights.{group}", 0.0)
        if value < 0:
            raise ConfigError(
                f"classifier.groupWeights.{group}: must not be negative (got {value})"
            )
        weights[str(group)] = value
    _check_weights(weights, metrics, reader)

    thresholds = classifier.get("scoreThresholds") or {}
    if not isinstance(thresholds, Mapping):
        raise ConfigError("classifier.scoreThresholds: expected an object with pass and marginal")
    pass_t = thresholds.get("pass")
    marginal_t = thresholds.get("marginal")
    return CanaryConfig(
        name=str(data.get("name", "")),
        metrics=metrics,
        group_weights=weights,
        pass_threshold=None
        if pass_t is None
        else reader.number(pass_t, "classifier.scoreThresholds.pass", 0),
        marginal_threshold=None
        if marginal_t is None
        else reader.number(marginal_t, "classifier.scoreThresholds.marginal", 0),
        warnings=tuple(reader.warnings),
    )


def _check_weights(
    weights: Mapping[str, float], metrics: Sequence[MetricConfig], reader: _Reader
) -> None:
    groups = {g for m in metrics for g in m.groups}
    for group in weights:
        if group not in groups:
            reader.warn(f"classifier.groupWeights.{group}: no metric is in group {group!r}")
    if not weights:
        return
    total = sum(weights.values())
    unweighted = groups - set(weights)
    if total > 100 or (not unweighted and total != 100):
        reader.warn(
            f"classifier.groupWeights: weights sum to {total:g}, not 100; Kayenta uses them as"
            " given, so the summary score is scaled accordingly"
            + (
                f" and unweighted groups ({', '.join(sorted(unweighted))}) get a negative share"
                if unweighted and total > 100
                else ""
            )
        )


def check_thresholds(pass_threshold: float, marginal_threshold: float) -> None:
    """Pass and marginal thresholds must be scores with marginal <= pass."""
    for label, value in (("pass", pass_threshold), ("marginal", marginal_threshold)):
        if not 0 <= value <= 100:
            raise ConfigError(f"scoreThresholds.{label}: must be between 0 and 100 (got {value:g})")
    if marginal_threshold > pass_threshold:
        raise ConfigError(
            f"scoreThresholds.marginal ({marginal_threshold:g}) must not exceed"
            f" scoreThresholds.pass ({pass_threshold:g})"
        )


def decode_config_text(text: str, source: str = "canary config") -> Any:
    """JSON or YAML text -> data (JSON is tried first so NaN-free JSON stays exact)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: neither valid JSON nor YAML: {exc}") from exc


def effective_settings(metric: MetricConfig) -> dict[str, Any]:
    """The settings Kayenta would use for this metric, under Kayenta's own names."""
    c = metric.classifier
    return {
        "direction": metric.direction.value,
        "nanStrategy": metric.nan_strategy.value,
        "outliers.strategy": "remove" if metric.remove_outliers else "keep",
        "outliers.outlierFactor": metric.outlier_factor,
        "critical": metric.critical,
        "mustHaveData": metric.must_have_data,
        "muted": metric.muted,
        "effectSize.measure": c.effect_size_measure.value,
        "allowedDecrease": c.effect_size_thresholds[0],
        "allowedIncrease": c.effect_size_thresholds[1],
        "criticalDecrease": c.critical_thresholds[0],
        "criticalIncrease": c.critical_thresholds[1],
        "tolerance": c.tolerance,
        "confLevel": c.conf_level,
    }

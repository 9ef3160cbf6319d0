"""One measurement through the registry and the engine's own judging: (phase, message, value).

`measure_metric` binds the metric's provider block through a ProviderRegistry (coalescing,
limits, retries), then gives the reading to analysisd.engine.measure.judge_reading, or the
error to analysisd.engine.measure.failure, exactly as the engine's dispatch does. Tests of
provider faults use it to show the Argo phase and message a measurement ends with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analysisd.engine.measure import failure, judge_reading, provider_block
from analysisd.expr import compile_conditions
from analysisd.spec import Metric
from providers.base import ProviderError
from providers.registry import ProviderRegistry


@dataclass(frozen=True, slots=True)
class Outcome:
    phase: str
    message: str
    value: str
    error: ProviderError | None = None


async def measure_metric(registry: ProviderRegistry, metric: dict[str, Any]) -> Outcome:
    """The measurement the engine would record for `metric` (an Argo metric mapping)."""
    spec = Metric.model_validate(metric)
    kind, config = provider_block(spec)
    conditions = compile_conditions(spec.success_condition, spec.failure_condition)
    try:
        reading = await registry.bind(kind, config).measure()
    except ProviderError as exc:
        phase, message = failure(spec, exc, None)
        return Outcome(phase, message, "", exc)
    phase, message, value, _ = judge_reading(spec, kind, reading, conditions)
    return Outcome(phase, message, value)

"""JudgeMetric: the `judge:` provider kind — fetch baseline/canary series, judge off the loop.

The engine dispatches kind "judge" here. Series come from any object with
ProviderRegistry's `series(kind, config, query, start, end, step)`; the CPU
work runs in a worker thread (asyncio.to_thread) so the event loop keeps
serving other runs.

Engine contract without conditions: `verdict_for_score(reading.result)`
gives the measurement phase (Argo's Kayenta mapping).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from analysisd.judge.explain import fmt
from analysisd.judge.judge import JudgeResult, judge
from analysisd.judge.kayenta_result import kayenta_judge_result
from analysisd.judge.spec import JudgeSpec, parse_judge_block
from providers.base import Reading

SUCCESSFUL, INCONCLUSIVE, FAILED = "Successful", "Inconclusive", "Failed"


class SeriesSource(Protocol):
    async def series(
        self,
        kind: str,
        config: Mapping[str, Any],
        query: str,
        start: datetime,
        end: datetime,
        step: float,
    ) -> list[float]: ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


def verdict_for_score(result: Mapping[str, Any]) -> str:
    """A judge result without conditions -> measurement phase: >= pass Successful,
    >= marginal Inconclusive, else Failed (Argo's kayenta provider)."""
    score = float(result["score"])
    if score >= float(result["pass"]):
        return SUCCESSFUL
    if score >= float(result["marginal"]):
        return INCONCLUSIVE
    return FAILED


def reading_from(result: JudgeResult) -> Reading:
    """The judgement as a Reading: `result` for conditions, the score as `value`.

    Metadata is flat text a person reads as is (in `analysisd run`, the REST
    API and the dashboard): per metric `<name>.why`, `.baseline`, `.canary`,
    `.interval`, `.effect`, `.direction` and `.classification`.
    """
    data = result.as_dict()
    metadata = {
        "score": f"{result.score:g}",
        "classification": result.classification.value,
        "pass": f"{result.pass_threshold:g}",
        "marginal": f"{result.marginal_threshold:g}",
    }
    for metric in result.metrics:
        e = metric.explanation
        interval = "-"
        if e.interval is not None:
            interval = f"[{fmt(e.interval[0])}, {fmt(e.interval[1])}] at {e.conf_level * 100:g}%"
        label = metric.classification.value + (", critical" if metric.outcome.critical else "")
        metadata.update(
            {
                f"{metric.name}.classification": label,
                f"{metric.name}.why": e.why,
                f"{metric.name}.baseline": e.baseline.text(),
                f"{metric.name}.canary": e.canary.text(),
                f"{metric.name}.interval": interval,
                f"{metric.name}.effect": e.effect.text(),
                f"{metric.name}.direction": e.direction.value,
            }
        )
    if result.reason:
        metadata["reason"] = result.reason
    # The whole judgement in Kayenta's shape, for the Kayenta API and the pages.
    metadata["judgeResult"] = json.dumps(kayenta_judge_result(data), separators=(",", ":"))
    if result.warnings:
        metadata["warnings"] = "; ".join(result.warnings)
    return Reading(result=data, value=f"{result.score:g}", metadata=metadata)


CONFIG_DIR_ENV = "ANALYSISD_CANARY_CONFIG_DIR"


class JudgeMetric:
    """Measures a metric whose provider block is `judge: {...}` (see analysisd/judge/spec.py)."""

    def __init__(
        self,
        source: SeriesSource,
        *,
        config_dir: str | Path | None = None,
        clock: Callable[[], datetime] = _utc_now,
        fetch_timeout: float = 60.0,
    ) -> None:
        self._source = source
        # canaryConfigName resolves in this directory; the daemon and `analysisd run` take it
        # from the environment (a mounted ConfigMap of Kayenta configs, for example).
        self._config_dir = (
            config_dir if config_dir is not None else os.environ.get(CONFIG_DIR_ENV) or None
        )
        self._clock = clock
        self._fetch_timeout = fetch_timeout

    async def measure(self, config: Mapping[str, Any]) -> Reading:
        spec = parse_judge_block(config, config_dir=self._config_dir)
        pairs = await self._fetch(spec)
        result = await asyncio.to_thread(
            judge,
            spec.canary_config,
            pairs,
            pass_threshold=spec.pass_threshold,
            marginal_threshold=spec.marginal_threshold,
        )
        return reading_from(result)

    async def _fetch(self, spec: JudgeSpec) -> dict[str, tuple[list[float], list[float]]]:
        end = spec.end or self._clock()
        start = spec.start or end - timedelta(seconds=spec.lookback_seconds)
        offset = timedelta(seconds=spec.baseline_offset_seconds)

        async def one(query: str, shift: timedelta = timedelta(0)) -> list[float]:
            return await self._source.series(
                spec.source_kind,
                spec.source_config,
                query,
                start - shift,
                end - shift,
                spec.step_seconds,
            )

        tasks: dict[str, tuple[asyncio.Task[list[float]], asyncio.Task[list[float]]]] = {}
        try:
            async with asyncio.timeout(self._fetch_timeout), asyncio.TaskGroup() as group:
                for name, queries in spec.queries.items():
                    tasks[name] = (
                        group.create_task(one(queries.baseline, offset)),
                        group.create_task(one(queries.canary)),
                    )
        except ExceptionGroup as failed:
            # The first provider error, unwrapped, carries the message a user can
            # act on (query, address, status); the engine records it as is.
            first: BaseException = failed
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first from None
        # Config order, so results and scores read the way the config is written.
        return {
            m.name: (tasks[m.name][0].result(), tasks[m.name][1].result())
            for m in spec.canary_config.metrics
        }

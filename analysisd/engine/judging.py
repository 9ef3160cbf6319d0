"""A judge metric (`provider: {judge: {...}}`): fetch baseline and canary series
through the providers, then hand the numbers to the pure judge (analysisd/judge/).

This is the I/O side: the clock (a lookback window ends at the scheduler's "now"),
the canary config directory (canaryConfigName), concurrent range queries with one
deadline, and a worker thread for the statistics so the event loop keeps serving
other runs. Without conditions, `verdict_for_score(reading.result)` gives the
measurement phase (Argo's Kayenta mapping).
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from analysisd.engine.judge_block import JudgeSpec, NamedConfigs, parse_judge_block
from analysisd.judge.judge import JudgeResult, judge
from analysisd.judge.metric import judgement_metadata
from analysisd.judge_io import read_named_config
from providers.base import Reading

CONFIG_DIR_ENV = "ANALYSISD_CANARY_CONFIG_DIR"

Pairs = dict[str, tuple[list[float], list[float]]]


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


def reading_from(result: JudgeResult) -> Reading:
    """The judgement as a Reading: `result` for conditions, the score as `value`."""
    return Reading(
        result=result.as_dict(), value=f"{result.score:g}", metadata=judgement_metadata(result)
    )


def named_configs(config_dir: str | Path | None) -> NamedConfigs | None:
    """How a canaryConfigName is read: from `config_dir`, or not at all without one."""
    if not config_dir:
        return None
    return functools.partial(read_named_config, config_dir)


class JudgeMetric:
    """Measures a metric whose provider block is `judge: {...}` (see engine/judge_block.py)."""

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
        self._named = named_configs(
            config_dir if config_dir is not None else os.environ.get(CONFIG_DIR_ENV)
        )
        self._clock = clock
        self._fetch_timeout = fetch_timeout

    async def measure(self, config: Mapping[str, Any]) -> Reading:
        spec = parse_judge_block(config, named=self._named)
        pairs = await self._fetch(spec)
        result = await asyncio.to_thread(
            judge,
            spec.canary_config,
            pairs,
            pass_threshold=spec.pass_threshold,
            marginal_threshold=spec.marginal_threshold,
        )
        return reading_from(result)

    async def _fetch(self, spec: JudgeSpec) -> Pairs:
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

"""dispatch.take_measurement: a reading becomes an Argo Measurement (real conditions)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from analysisd.engine.dispatch import take_measurement
from analysisd.engine.measure import NoSecrets, PreparedRun, prepare_run
from analysisd.spec import AnalysisRunSpec, Metric
from providers.base import ProviderTimeout, Reading

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


class OneAnswer:
    def __init__(self, answer: Reading | BaseException | None) -> None:
        self.answer = answer
        self.asked: list[tuple[str, Mapping[str, Any]]] = []

    async def measure(self, kind: str, config: Mapping[str, Any]) -> Reading:
        self.asked.append((kind, config))
        if self.answer is None:
            await asyncio.Event().wait()
        if isinstance(self.answer, BaseException):
            raise self.answer
        assert isinstance(self.answer, Reading)
        return self.answer


def metric(success: str = "", failure: str = "") -> Metric:
    return Metric.model_validate(
        {
            "name": "rate",
            "successCondition": success,
            "failureCondition": failure,
            "provider": {"web": {"url": "http://127.0.0.1/x"}},
        }
    )


def prepared(m: Metric, secrets: frozenset[str] = frozenset()) -> PreparedRun:
    """The run of one metric as the scheduler prepares it (conditions compiled once)."""
    run = prepare_run(AnalysisRunSpec(metrics=[m]), NoSecrets())
    return dataclasses.replace(run, secret_values=secrets)


async def measure(source: OneAnswer, m: Metric, secrets: frozenset[str] = frozenset()) -> Any:
    clock = Clock()
    return await take_measurement(
        source, prepared(m, secrets), m, clock=clock, started=clock(), timeout_seconds=0.05
    )


@pytest.mark.parametrize(
    ("success", "failure", "result", "phase"),
    [
        ("result >= 0.95", "", 0.99, "Successful"),
        ("result >= 0.95", "", 0.5, "Failed"),
        ("", "result < 0.5", 0.7, "Successful"),
        ("result > 0.9", "result < 0.5", 0.7, "Inconclusive"),
        ("result > 0.1", "result < 0.5", 0.3, "Failed"),
        ("", "", 0.3, "Successful"),
    ],
)
async def test_conditions_decide_the_phase(
    success: str, failure: str, result: float, phase: str
) -> None:
    source = OneAnswer(Reading(result=result, value=str(result)))
    m = await measure(source, metric(success, failure))
    assert m.phase == phase
    assert m.value == str(result)
    assert source.asked == [("web", {"url": "http://127.0.0.1/x"})]
    assert m.started_at is not None and m.finished_at is not None
    assert m.finished_at > m.started_at


async def test_condition_evaluation_error_is_an_error_measurement() -> None:
    m = await measure(OneAnswer(Reading(result="text", value="text")), metric("result > 1"))
    assert m.phase == "Error"
    assert m.message


async def test_provider_error_becomes_error_with_its_message_redacted() -> None:
    err = ProviderTimeout("web: GET http://127.0.0.1/x?key=hunter2 timed out after 1s")
    m = await measure(OneAnswer(err), metric("result > 1"), frozenset({"hunter2"}))
    assert m.phase == "Error"
    assert m.message == "web: GET http://127.0.0.1/x?key=***** timed out after 1s"


async def test_hanging_provider_is_cut_off_by_the_timeout() -> None:
    m = await measure(OneAnswer(None), metric())
    assert m.phase == "Error"
    assert m.message == "rate: measurement timed out after 0.05s"


async def test_unexpected_exception_is_an_error_naming_its_type() -> None:
    m = await measure(OneAnswer(KeyError("data")), metric())
    assert m.phase == "Error"
    assert m.message == "KeyError: 'data'"


async def test_metadata_is_kept_as_strings() -> None:
    reading = Reading(result=[1.0], value="[1]", metadata={"resultType": "vector"})
    m = await measure(OneAnswer(reading), metric("result[0] == 1"))
    assert (m.phase, m.value, m.metadata) == ("Successful", "[1]", {"resultType": "vector"})


async def test_provider_decided_phase_skips_the_conditions() -> None:
    reading = Reading(result="ok", value="ok", metadata={"analysisd.io/phase": "Successful"})
    m = await measure(OneAnswer(reading), metric("result > 1"))
    assert (m.phase, m.value) == ("Successful", "ok")


def test_field_ref_arguments_resolve_from_the_run_metadata() -> None:
    from analysisd.spec import AnalysisRun

    run = AnalysisRun.model_validate(
        {
            "metadata": {"name": "r", "namespace": "team-a", "labels": {"app": "checkout"}},
            "spec": {
                "args": [
                    {
                        "name": "app",
                        "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}},
                    }
                ],
                "metrics": [
                    {
                        "name": "m",
                        "provider": {"web": {"url": "http://127.0.0.1:9/{{args.app}}"}},
                    }
                ],
            },
        }
    )
    prepared = prepare_run(run.spec, NoSecrets(), run.metadata)
    assert prepared.metrics[0].provider["web"]["url"] == "http://127.0.0.1:9/checkout"


async def test_a_secret_containing_another_is_redacted_whole() -> None:
    # Longest first: replacing "tok" first would leave "-extended" of the longer one shown.
    source = OneAnswer(ProviderTimeout("auth tok-extended rejected, tok expired"))
    m = await measure(source, metric(), frozenset({"tok", "tok-extended"}))
    assert m.message == "auth ***** rejected, ***** expired"


async def test_a_providers_own_timeout_without_a_deadline_here_names_no_number() -> None:
    # timeout_seconds None: the caller (the Scheduler) keeps the deadline; a bare
    # TimeoutError from inside a provider must not claim a limit that was never set.
    source = OneAnswer(TimeoutError())
    clock = Clock()
    m = await take_measurement(
        source, prepared(metric()), metric(), clock=clock, started=clock(), timeout_seconds=None
    )
    assert (m.phase, m.message) == ("Error", "rate: measurement timed out")


async def test_conditions_are_compiled_when_the_run_is_prepared_never_per_measurement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from analysisd.expr import conditions as expr_conditions

    compiled: list[str] = []
    real = expr_conditions.compile_expr_uncached

    def counting(source: str) -> Any:
        compiled.append(source)
        return real(source)

    monkeypatch.setattr(expr_conditions, "compile_expr_uncached", counting)
    expr_conditions._compile_shared.cache_clear()  # texts compiled by earlier tests
    m = metric("result >= 0.95", "result < 0.5")
    run = prepared(m)
    assert compiled == ["result >= 0.95", "result < 0.5"]
    clock = Clock()
    for value in (0.99, 0.7, 0.1) * 10:
        source = OneAnswer(Reading(result=value, value=str(value)))
        await take_measurement(source, run, m, clock=clock, started=clock())
    assert compiled == ["result >= 0.95", "result < 0.5"]


async def test_a_condition_that_does_not_compile_is_an_error_measurement_with_its_cause() -> None:
    m = await measure(OneAnswer(Reading(result=1.0, value="1")), metric("result >"))
    assert m.phase == "Error"
    assert m.message.startswith('could not evaluate successCondition "result >": ')

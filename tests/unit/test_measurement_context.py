"""The run and metric a binding is for (providers.base.MeasurementContext), from the
run's set-up to each provider's bind, the same way for every kind."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from aiohttp import web

from analysisd.engine.dispatch import take_measurement
from analysisd.engine.measure import NoSecrets
from analysisd.engine.runstate import RunState, set_up
from analysisd.spec import AnalysisRun, AnalysisRunStatus
from providers.base import NO_CONTEXT, MeasurementContext, ProviderError, Reading
from providers.kinds import PROVIDER_CLASSES, load_provider_class
from providers.limits import LimitsConfig
from providers.registry import BoundMeasurement, ProviderRegistry, Scope
from tests.unit.engine_fakes import make_run


def now() -> datetime:
    return datetime.now(UTC)


class Recording:
    """A binding source (like ProviderRegistry) that keeps the context of each bind."""

    def __init__(self, refuse: set[str] | None = None) -> None:
        self.bound: dict[str, MeasurementContext] = {}
        self.refuse = set(refuse or ())

    def bind(self, kind: str, config: Any, context: MeasurementContext) -> Any:
        name = context.metric_name
        if name in self.refuse:
            self.refuse.discard(name)
            raise ProviderError(f"cannot bind {name} yet")
        self.bound[name] = context

        class Bound:
            timed = True

            async def measure(self) -> Reading:
                return Reading(result=1.0, value="1")

        return Bound()

    async def measure(self, kind: str, config: Mapping[str, Any]) -> Reading:
        raise AssertionError("a binding source measures through its bindings")


def resuming(run: AnalysisRun, results: list[dict[str, Any]]) -> RunState:
    """The run as the daemon resumes it from a stored status with these metric results."""
    run.status = AnalysisRunStatus.model_validate(
        {"phase": "Running", "startedAt": "2026-01-01T00:00:00Z", "metricResults": results}
    )
    loop = asyncio.get_running_loop()
    return RunState(("shop", run.metadata.name), run, loop.create_future())


async def test_set_up_binds_each_metric_with_the_runs_identity_and_counts() -> None:
    run = make_run(
        {"a": {}, "b": {}, "c": {}},
        name="checkout-canary",
        namespace="shop",
        measurementRetention=[{"metricName": "b", "limit": 25}],
    )
    run.metadata.uid = "0b6f7c1e-2d3a-4f5b-8c9d-0e1f2a3b4c5d"
    # a: 3 counted + 2 Errors (Argo's Count + Error = 5); b: nothing yet; c: not in status.
    state = resuming(run, [{"name": "a", "count": 3, "successful": 3, "error": 2}, {"name": "b"}])
    source = Recording()
    prepared, error = set_up(state, source, NoSecrets())
    assert error is None and prepared is not None
    uid = "0b6f7c1e-2d3a-4f5b-8c9d-0e1f2a3b4c5d"
    assert source.bound == {
        "a": MeasurementContext(uid, "checkout-canary", "shop", "a", 5, 10),
        "b": MeasurementContext(uid, "checkout-canary", "shop", "b", 0, 25),
        "c": MeasurementContext(uid, "checkout-canary", "shop", "c", 0, 10),
    }
    # Built once, at set-up: a measurement through a binding makes no new one.
    assert prepared.contexts == source.bound


async def test_a_block_bound_at_its_first_measurement_gets_the_same_context() -> None:
    run = make_run({"a": {}}, name="late", namespace="shop")
    run.metadata.uid = "uid-1"
    state = resuming(run, [{"name": "a", "count": 4, "successful": 4}])
    source = Recording(refuse={"a"})  # the bind at set-up fails
    prepared, error = set_up(state, source, NoSecrets())
    assert error is None and prepared is not None
    assert source.bound == {}
    measurement = await take_measurement(
        source, prepared, prepared.metrics[0], clock=now, started=now()
    )
    assert measurement.phase == "Successful"
    assert source.bound == {"a": MeasurementContext("uid-1", "late", "shop", "a", 4, 10)}


# ---------------------------------------------------------------- the registry


class Probe:
    """A provider class with its own bind (STATIC_KEYS as given), recording contexts."""

    kind: ClassVar[str] = "probe"
    STATIC_KEYS: ClassVar[bool] = True
    contexts: ClassVar[list[MeasurementContext]] = []
    pool_keys: ClassVar[int] = 0

    @classmethod
    def pool_key(cls, config: Mapping[str, Any], secrets: Any) -> tuple[Any, ...]:
        Probe.pool_keys += 1
        return ("probe",)

    @classmethod
    def create(cls, config: Mapping[str, Any], secrets: Any) -> Probe:
        return cls()

    @classmethod
    def request_key(cls, config: Mapping[str, Any]) -> tuple[Any, ...]:
        return ("probe", config["q"])

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> None:
        pass

    def bind(
        self, config: Mapping[str, Any], context: MeasurementContext
    ) -> Callable[[], Awaitable[Reading]]:
        Probe.contexts.append(context)
        return functools.partial(self.measure, config)

    async def measure(self, config: Mapping[str, Any]) -> Reading:
        return Reading(result=1.0, value=str(config["q"]))

    async def series(self, *args: Any) -> list[float]:
        return []

    async def aclose(self) -> None:
        pass


class DynamicProbe(Probe):
    """Keys that read secrets: re-bound on every measurement, its own bind never used."""

    STATIC_KEYS: ClassVar[bool] = False


class RecordingRegistry(ProviderRegistry):
    """ProviderRegistry that keeps the context of every bind call, re-bindings included."""

    seen: list[MeasurementContext]

    def bind(
        self,
        kind: str,
        config: Mapping[str, Any],
        scope: Scope | None = None,
        context: MeasurementContext = NO_CONTEXT,
    ) -> BoundMeasurement:
        self.seen.append(context)
        return super().bind(kind, config, scope, context)


def registry_for(cls: str) -> RecordingRegistry:
    registry = RecordingRegistry(
        secrets=lambda _n, _k: None,
        limits=LimitsConfig(rate=0, coalesce_window=0),
        classes={"probe": f"{__name__}:{cls}"},
    )
    registry.seen = []
    return registry


CONTEXT = MeasurementContext("uid-7", "run-7", "shop", "latency", 2, 5)


async def test_the_registry_hands_the_context_to_the_providers_bind() -> None:
    Probe.contexts.clear()
    async with registry_for("Probe") as registry:
        bound = registry.for_namespace("shop").bind("probe", {"q": "x"}, context=CONTEXT)
        assert (await bound.measure()).value == "x"
        assert (await bound.measure()).value == "x"
    assert Probe.contexts == [CONTEXT]  # once, at bind: not per measurement
    assert registry.seen == [CONTEXT]


async def test_a_class_rebound_per_measurement_keeps_its_context() -> None:
    Probe.contexts.clear()
    async with registry_for("DynamicProbe") as registry:
        bound = registry.bind("probe", {"q": "y"}, context=CONTEXT)
        for _ in range(3):
            assert (await bound.measure()).value == "y"
    assert registry.seen == [CONTEXT] * 4  # the bind, then one re-bind per measurement
    assert Probe.contexts == []  # a non-static class's own bind is not used


async def test_a_measurement_outside_any_run_binds_with_no_context() -> None:
    Probe.contexts.clear()
    async with registry_for("Probe") as registry:
        assert (await registry.measure("probe", {"q": "z"})).value == "z"
    assert Probe.contexts == [NO_CONTEXT]


BINDING_KINDS = sorted(k for k in PROVIDER_CLASSES if hasattr(load_provider_class(k), "bind"))


def test_the_kinds_with_a_bind_of_their_own() -> None:
    assert BINDING_KINDS == ["job", "kayenta", "web"]


@pytest.mark.parametrize("kind", BINDING_KINDS)
def test_every_providers_bind_takes_config_and_context(kind: str) -> None:
    binder = getattr(load_provider_class(kind), "bind")  # noqa: B009 (not on ProviderClass)
    inspect.signature(binder).bind(object(), {}, CONTEXT)  # TypeError if it does not


@pytest.fixture
async def value_server() -> AsyncIterator[str]:
    async def answer(_request: web.Request) -> web.Response:
        return web.json_response({"value": 0.99})

    app = web.Application()
    app.router.add_get("/value", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/value"
    finally:
        await runner.cleanup()


async def test_a_web_block_bound_with_a_context_measures_as_without(value_server: str) -> None:
    config = {"url": value_server, "jsonPath": "{$.value}"}
    limits = LimitsConfig(rate=0, coalesce_window=0)
    async with ProviderRegistry(secrets=lambda _n, _k: None, limits=limits) as registry:
        with_context = await registry.bind("web", config, context=CONTEXT).measure()
        without = await registry.bind("web", dict(config)).measure()
    assert with_context.result == without.result == 0.99

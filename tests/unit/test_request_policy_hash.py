"""RequestPolicy keys coalescing (its hash, worked out once, agrees with its equality) and is
in force while a namespace's bound measurement runs."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

import pytest

from providers.base import MeasurementContext, Reading
from providers.egress import EgressPolicy
from providers.policy import DEFAULT_POLICY, RequestPolicy, current_policy


def test_equal_policies_hash_equal_and_different_ones_are_told_apart() -> None:
    a = RequestPolicy(EgressPolicy.build("shop", ["http://127.0.0.1:8080/api"]), 1000, "cap")
    b = RequestPolicy(EgressPolicy.build("shop", ["http://127.0.0.1:8080/api"]), 1000, "cap")
    assert a == b and hash(a) == hash(b)
    assert a is not b
    keys = {("measure", "web", a): 1}
    assert keys[("measure", "web", b)] == 1  # equal policies: one coalescing key
    others = [
        dataclasses.replace(a, max_response_bytes=1001),
        dataclasses.replace(a, cap_setting="other"),
        RequestPolicy(EgressPolicy.build("shop", ["http://127.0.0.1:8081/api"]), 1000, "cap"),
        DEFAULT_POLICY,
    ]
    for other in others:
        assert other != a
        assert ("measure", "web", other) not in keys
        # The kept hash is the one of the fields, as the generated __hash__ made it.
        fields = (other.egress, other.max_response_bytes, other.cap_setting)
        assert hash(other) == hash(fields)
    assert RequestPolicy() == DEFAULT_POLICY and hash(RequestPolicy()) == hash(DEFAULT_POLICY)


class PolicyProbe:
    """A provider that answers with the policy in force while it measures."""

    kind: ClassVar[str] = "web"
    STATIC_KEYS: ClassVar[bool] = True
    seen: ClassVar[list[tuple[str, RequestPolicy]]] = []

    @classmethod
    def pool_key(cls, config: Mapping[str, Any], secrets: Any) -> tuple[Any, ...]:
        return ("probe",)

    @classmethod
    def request_key(cls, config: Mapping[str, Any]) -> tuple[Any, ...]:
        return (config["url"],)

    @classmethod
    def limit_address(cls, config: Mapping[str, Any]) -> str:
        return "probe"

    @classmethod
    def create(cls, config: Mapping[str, Any], secrets: Any) -> PolicyProbe:
        return cls()

    async def measure(self, config: Mapping[str, Any]) -> Reading:
        await asyncio.sleep(0)
        PolicyProbe.seen.append((config["url"], current_policy()))
        return Reading(result=1.0, value="1")

    async def series(self, *args: Any) -> list[float]:
        return []

    async def aclose(self) -> None:
        pass


class BindingPolicyProbe(PolicyProbe):
    """The same through a provider's own bind() (as the Web provider binds)."""

    def bind(
        self, config: Mapping[str, Any], context: MeasurementContext
    ) -> Callable[[], Awaitable[Reading]]:
        return functools.partial(self.measure, config)


@pytest.mark.parametrize("probe", ["PolicyProbe", "BindingPolicyProbe"])
async def test_each_namespace_measures_under_its_own_policy_and_it_is_reset_after(
    probe: str,
) -> None:
    from providers.registry import LimitsConfig, ProviderRegistry, Scope

    policies = {
        "a": RequestPolicy(EgressPolicy.build("a", ["http://127.0.0.1:1/"]), 1000, "a-cap"),
        "b": RequestPolicy(EgressPolicy.build("b", ["http://127.0.0.1:2/"]), 2000, "b-cap"),
    }
    registry = ProviderRegistry(
        secrets=lambda name, key: None,
        limits=LimitsConfig(rate=0, coalesce_window=0),
        classes={"web": f"{__name__}:{probe}"},
        scopes=lambda namespace: Scope(namespace, lambda n, k: None, policies[namespace]),
    )
    PolicyProbe.seen.clear()
    async with registry:
        bound = {
            ns: registry.for_namespace(ns).bind("web", {"url": f"http://127.0.0.1/{ns}"})
            for ns in ("a", "b")
        }
        for _ in range(3):
            readings = await asyncio.gather(bound["a"].measure(), bound["b"].measure())
            assert [r.result for r in readings] == [1.0, 1.0]
            assert current_policy() is DEFAULT_POLICY  # reset after each measurement
        await registry.measure("web", {"url": "http://127.0.0.1/none"})
    expected = {"http://127.0.0.1/a": policies["a"], "http://127.0.0.1/b": policies["b"]}
    expected["http://127.0.0.1/none"] = DEFAULT_POLICY
    assert len(PolicyProbe.seen) == 7
    for url, policy in PolicyProbe.seen:
        assert policy is expected[url]

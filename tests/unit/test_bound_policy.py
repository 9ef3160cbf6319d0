"""A bound measurement runs under its namespace's RequestPolicy, whatever was in force
before it, and leaves the policy in force as it found it: alternating namespaces in
one task, nested in a policy already in force, and with the same policy in force."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar

from providers.base import Reading
from providers.egress import EgressPolicy
from providers.policy import DEFAULT_POLICY, RequestPolicy, current_policy, using_policy
from providers.registry import LimitsConfig, ProviderRegistry, Scope


class PolicyProbe:
    """Answers with nothing; notes the policy in force while it measures."""

    kind: ClassVar[str] = "probe"
    seen: ClassVar[list[RequestPolicy]] = []

    @classmethod
    def pool_key(cls, config: Mapping[str, Any], secrets: Any) -> tuple[Any, ...]:
        return ("probe",)

    @classmethod
    def create(cls, config: Mapping[str, Any], secrets: Any) -> PolicyProbe:
        return cls()

    @classmethod
    def request_key(cls, config: Mapping[str, Any]) -> tuple[Any, ...]:
        return (config["q"],)

    async def measure(self, config: Mapping[str, Any]) -> Reading:
        await asyncio.sleep(0)
        type(self).seen.append(current_policy())
        return Reading(result=1.0, value="1")

    async def series(self, *args: Any) -> list[float]:
        return []

    async def aclose(self) -> None:
        pass


async def test_each_measurement_sees_its_namespaces_policy_and_leaves_the_one_in_force() -> None:
    policies = {
        "a": RequestPolicy(egress=EgressPolicy.build("a", ["http://a.example/"], [])),
        "b": RequestPolicy(max_response_bytes=1024, cap_setting="namespaces.b.maxResponseBytes"),
        "default": DEFAULT_POLICY,
    }
    registry = ProviderRegistry(
        secrets=lambda name, key: None,
        limits=LimitsConfig(rate=0, coalesce_window=0),
        classes={"probe": f"{__name__}:PolicyProbe"},
        scopes=lambda ns: Scope(ns, lambda name, key: None, policies[ns]),
    )
    PolicyProbe.seen = []
    bound = {
        ns: registry.for_namespace(ns).bind("probe", {"q": ns}) for ns in ("a", "b", "default")
    }
    order = ["a", "b", "a", "a", "default", "b", "default", "a"]
    for ns in order:  # one task: each call starts with the previous one's leftovers, if any
        await bound[ns].measure()
        assert current_policy() is DEFAULT_POLICY
    with using_policy(policies["b"]):  # called inside another policy, and inside its own
        for ns in order:
            await bound[ns].measure()
            assert current_policy() is policies["b"]
    assert PolicyProbe.seen == [policies[ns] for ns in order + order]
    await registry.aclose()

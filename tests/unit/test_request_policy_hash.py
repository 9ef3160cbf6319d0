"""RequestPolicy keys coalescing: its hash (worked out once) agrees with its equality."""

from __future__ import annotations

import dataclasses

from providers.egress import EgressPolicy
from providers.policy import DEFAULT_POLICY, RequestPolicy


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

"""The RequestPolicy in force for a provider call: what it may reach and read.

The registry sets one per namespace for the duration of each call (`using_policy`);
providers.http's sessions, resolver and body reader consult `current_policy()`.
Kept apart from providers.http so that the registry (and with it `analysisd lint`
and the API's door, which only check provider blocks) does not import aiohttp.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from providers.egress import EgressPolicy

DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class RequestPolicy:
    """What one namespace's requests may reach and read (hashable: it keys coalescing)."""

    egress: EgressPolicy = field(default_factory=EgressPolicy)
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    # Shown in a refusal: where the cap comes from, e.g. "namespaces.shop.maxResponseBytes".
    cap_setting: str = "maxResponseBytes"
    # The hash of the fields above, worked out once: the policy is part of every
    # request's coalescing key, which is hashed several times per measurement.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fields = (self.egress, self.max_response_bytes, self.cap_setting)
        object.__setattr__(self, "_hash", hash(fields))

    def __hash__(self) -> int:
        return self._hash


# The default (outside any registry call) still refuses link-local addresses.
DEFAULT_POLICY = RequestPolicy()
POLICY: ContextVar[RequestPolicy] = ContextVar(
    "analysisd_request_policy",
    default=DEFAULT_POLICY,
)


def current_policy() -> RequestPolicy:
    return POLICY.get()


@contextlib.contextmanager
def using_policy(policy: RequestPolicy) -> Iterator[RequestPolicy]:
    """Requests made inside (and in tasks started inside) follow `policy`."""
    token = POLICY.set(policy)
    try:
        yield policy
    finally:
        POLICY.reset(token)


def check_url(url: str) -> None:
    """Raise EgressRefused unless the current policy lets a request go to `url`."""
    POLICY.get().egress.check_url(str(url))

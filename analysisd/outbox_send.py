"""One outbox row POSTed: signed, sent under its routing's egress policy, answer capped.

Each row is sent as its namespace allows (`Routing`): a run's callback is signed
with a secret of the run's namespace and held to that namespace's egress policy;
an operator's subscription with the operator's secrets. Answers are read up to
64 KiB, never more. Recording the attempt and retrying are `analysisd.outbox`'s.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from analysisd.outbox_events import (
    ANSWER_MAX_BYTES,
    CONTENT_TYPE,
    ERROR_EXCERPT,
    HMAC_KEY,
    SIGNATURE_HEADER,
    masked_url,
    sign,
)
from analysisd.store.records import OutboxRow
from providers.egress import EgressPolicy, EgressRefused
from providers.http import RequestPolicy, client_session, using_policy

WEBHOOK_POLICY = RequestPolicy(EgressPolicy(), ANSWER_MAX_BYTES, "webhook answers")


class SecretLookup(Protocol):
    def get(self, name: str, key: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Routing:
    """How one row is sent: the secrets that sign it and the policy it is sent under."""

    secrets: SecretLookup
    policy: RequestPolicy = WEBHOOK_POLICY


def webhook_session(timeout: float) -> aiohttp.ClientSession:
    """The deliverer's session: every request ends within `timeout` seconds."""
    # Redirects are not followed: a receiver answers, it does not send us elsewhere.
    return client_session(timeout=aiohttp.ClientTimeout(total=timeout))


async def post_row(
    session: aiohttp.ClientSession, row: OutboxRow, routing: Routing, within: float
) -> tuple[int | None, str | None]:
    """POST `row` to its target, answered `within` seconds: its HTTP status (None if none
    came), and what went wrong (None after a 2xx), the target's query values masked."""
    body = row.body.encode("utf-8")
    headers = {
        "Content-Type": CONTENT_TYPE,
        "Idempotency-Key": row.event_id,
        "Ce-Id": row.event_id,
    }
    if row.secret_name:
        key = routing.secrets.get(row.secret_name, HMAC_KEY)
        if key is None:
            return None, (
                f'secret "{row.secret_name}" has no key "{HMAC_KEY}" in namespace {row.namespace!r}'
            )
        headers[SIGNATURE_HEADER] = sign(body, key)
    try:
        with using_policy(routing.policy):
            async with asyncio.timeout(within):
                async with session.post(
                    row.target, data=body, headers=headers, allow_redirects=False
                ) as resp:
                    text = await _answer_excerpt(resp)
                    if 200 <= resp.status < 300:
                        return resp.status, None
                    return resp.status, f"HTTP {resp.status}: {text[:ERROR_EXCERPT]}"
    except EgressRefused as exc:
        return None, f"refused: {exc}"
    except TimeoutError:
        return None, f"no answer within {within:g}s"
    except aiohttp.ClientError as exc:
        text = f"{type(exc).__name__}: {exc}".replace(row.target, masked_url(row.target))
        return None, text[:ERROR_EXCERPT]


async def _answer_excerpt(response: aiohttp.ClientResponse) -> str:
    """At most ANSWER_MAX_BYTES of the answer; the connection is dropped if more follows."""
    buffer = bytearray()
    while len(buffer) < ANSWER_MAX_BYTES:
        chunk = await response.content.read(ANSWER_MAX_BYTES - len(buffer))
        if not chunk:
            return buffer.decode("utf-8", "replace")
        buffer += chunk
    if not response.content.at_eof():
        response.close()
    return buffer.decode("utf-8", "replace")

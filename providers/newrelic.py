"""New Relic provider: Argo Rollouts' ``newRelic`` metrics, NRQL through NerdGraph (GraphQL).

Request, as Argo's newrelic-client-go sends it: ``POST <NerdGraph URL>`` with the header
``Api-Key: <personal-api-key>`` and the JSON body ``{"query": <the client's NRQL query
document>, "variables": {"accountId": <account-id>, "query": <the metric's NRQL>}}``.

Credentials, as Argo reads them: the secret ``newrelic`` (or the block's ``profile``) in the
run's namespace, keys ``personal-api-key`` and ``account-id`` (both required: ``account ID
or personal API key not found``), ``region`` (``us`` default, ``eu``, ``staging``, ``local``)
choosing the NerdGraph URL, and ``base-url-nerdgraph`` replacing it (``base-url-rest`` is
read and unused: NRQL goes through NerdGraph only).

What conditions see (Argo master): the ``results`` of the NRQL answer decoded as Go does
(every number a float64). One result row is the row itself, a ``map[string]interface {}``
(``result.count``, ``result['percentile.duration']['95']``); several rows (a FACET or a
TIMESERIES) are the list of rows (``result[0].count``). No row is the Error ``no results
returned from NRQL query``. The measurement value is Go's json.Marshal of ``result``.

Config (``provider.newRelic``): ``profile``, ``query`` (required), and the analysisd
extension ``timeout`` (seconds for one request; default 30).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from providers.base import (
    ProviderAuthError,
    ProviderBadBody,
    ProviderConfigError,
    ProviderError,
    ProviderUnsupported,
    Reading,
    SecretLookup,
    excerpt,
    fingerprint,
)
from providers.gocompat import go_quote, json_marshal
from providers.vendor_http import (
    VendorHttp,
    check_profile_query,
    go_json,
    http_failure,
    http_url,
    profile_query_key,
    profile_secret,
    redact,
    required_text,
    timeout_of,
)

KIND = "newRelic"
PROVIDER = "newRelic"
DEFAULT_SECRET = "newrelic"
DEFAULT_TIMEOUT_S = 30.0
NO_RESULTS = "no results returned from NRQL query"
MISSING = "account ID or personal API key not found"
UNAUTHORIZED = (
    "401 response returned: Invalid credentials provided. "
    "Missing API key or an invalid API key was provided."
)
GO_ROW = "map[string]interface {}"
GO_ROWS = "[]map[string]interface {}"
# newrelic-client-go's NerdGraph URL per region (pkg/region).
NERDGRAPH_URLS: Mapping[str, str] = {
    "us": "https://api.newrelic.com/graphql",
    "eu": "https://api.eu.newrelic.com/graphql",
    "staging": "https://staging-api.newrelic.com/graphql",
    "local": "http://localhost:3000/graphql",
}
# The document newrelic-client-go's Nrdb.Query posts (pkg/nrdb).
NRQL_DOCUMENT = (
    "query($query: Nrql!, $accountId: Int!) { actor { account(id: $accountId) { "
    "nrql(query: $query) {\n"
    """    currentResults otherResult previousResults results totalResult
    metadata { eventTypes facets messages timeWindow { begin compareWith end since until } }
  } } } }"""
)


def secret_name(config: Mapping[str, Any]) -> str:
    return profile_secret(config, DEFAULT_SECRET)


def account(config: Mapping[str, Any], secrets: SecretLookup) -> tuple[str, int, str]:
    """(NerdGraph URL, account id, API key) from the profile secret, as Argo reads them."""
    name = secret_name(config)
    api_key = secrets(name, "personal-api-key") or ""
    account_id = secrets(name, "account-id") or ""
    if not api_key or not account_id:
        raise ProviderAuthError(
            f"newRelic: {MISSING} (secret {name!r}, keys 'personal-api-key' and 'account-id')",
            provider=PROVIDER,
        )
    region = (secrets(name, "region") or "us").strip().lower()
    if region not in NERDGRAPH_URLS:
        raise ProviderConfigError(
            f"newRelic: secret {name!r}: unknown region {region!r} (us, eu, staging or local)",
            provider=PROVIDER,
            field="profile",
        )
    url = secrets(name, "base-url-nerdgraph") or NERDGRAPH_URLS[region]
    try:
        number = int(account_id.strip(), 10)
    except ValueError:
        raise ProviderConfigError(
            f"newRelic: could not parse account ID: strconv.Atoi: parsing {go_quote(account_id)}: "
            "invalid syntax",
            provider=PROVIDER,
            field="profile",
        ) from None
    return http_url(url, PROVIDER, "profile"), number, api_key


def _messages(errors: Any) -> list[str]:
    if not isinstance(errors, Sequence) or isinstance(errors, str):
        return []
    return [str(e.get("message")) for e in errors if isinstance(e, Mapping) and e.get("message")]


def _bad_key(errors: Any) -> bool:
    if not isinstance(errors, Sequence) or isinstance(errors, str):
        return False
    for error in errors:
        extensions = error.get("extensions") if isinstance(error, Mapping) else None
        if isinstance(extensions, Mapping) and extensions.get("error_code") == "BAD_API_KEY":
            return True
    return False


def decode_results(payload: Any) -> list[Any]:
    """``data.actor.account.nrql.results`` of a NerdGraph answer; ValueError when malformed."""
    node = payload
    for step in ("data", "actor", "account", "nrql"):
        if node is None:
            return []
        if not isinstance(node, Mapping):
            raise ValueError(f"{step!r} is not an object")
        node = node.get(step)
    if node is None:
        return []
    if not isinstance(node, Mapping):
        raise ValueError("'nrql' is not an object")
    results = node.get("results")
    if results is None:
        return []
    if not isinstance(results, list):
        raise ValueError("'results' is not a list")
    return results


class NewRelicProvider:
    """One pooled session per (NerdGraph URL, account, key)."""

    kind: ClassVar[str] = KIND

    def __init__(self, url: str, account_id: int, api_key: str) -> None:
        self.url = url
        self.account_id = account_id
        self._key = api_key
        self._http = VendorHttp(PROVIDER)

    # -- ProviderClass

    @classmethod
    def pool_key(cls, config: Mapping[str, Any], secrets: SecretLookup) -> tuple[Any, ...]:
        url, account_id, api_key = account(config, secrets)
        return (KIND, url, account_id, fingerprint(api_key))

    @classmethod
    def create(cls, config: Mapping[str, Any], secrets: SecretLookup) -> NewRelicProvider:
        return cls(*account(config, secrets))

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> None:
        check_profile_query(config, KIND, DEFAULT_TIMEOUT_S)

    @classmethod
    def request_key(cls, config: Mapping[str, Any]) -> tuple[Any, ...]:
        return profile_query_key(config, KIND, DEFAULT_TIMEOUT_S, DEFAULT_SECRET)

    # -- Provider

    async def measure(self, config: Mapping[str, Any]) -> Reading:
        nrql = required_text(config, "query", KIND)
        rows = await self._nrql(nrql, timeout_of(config, DEFAULT_TIMEOUT_S, KIND))
        if not rows or (len(rows) == 1 and not rows[0]):
            raise ProviderBadBody(
                f"newRelic at {self.url} (account {self.account_id}): {NO_RESULTS} "
                f"(query {excerpt(nrql, 200)!r})",
                provider=PROVIDER,
                address=self.url,
            )
        result: Any = rows[0] if len(rows) == 1 else rows
        go_type = GO_ROW if len(rows) == 1 else GO_ROWS
        return Reading(result=result, value=json_marshal(result, strict=False), go_type=go_type)

    async def series(
        self, config: Mapping[str, Any], query: str, start: datetime, end: datetime, step: float
    ) -> list[float]:
        raise ProviderUnsupported(
            "newRelic does not serve range data to the judge in analysisd; "
            "use a prometheus, datadog, graphite, influxdb or wavefront source",
            provider=PROVIDER,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- I/O

    async def _nrql(self, nrql: str, timeout_s: float) -> list[Any]:
        where = f"{self.url} (account {self.account_id})"
        body = json.dumps(
            {"query": NRQL_DOCUMENT, "variables": {"accountId": self.account_id, "query": nrql}}
        ).encode()
        headers = {
            "Api-Key": self._key,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "analysisd",
        }
        answer = await self._http.send(
            "POST", self.url, where=where, timeout_s=timeout_s, headers=headers, body=body
        )
        payload: Any = None
        try:
            payload = go_json(answer.body)
        except ValueError:
            if answer.ok:
                raise ProviderBadBody(
                    redact(
                        f"newRelic at {where}: HTTP {answer.status} but the body is not JSON: "
                        f"{excerpt(answer.body)!r}",
                        (self._key,),
                    ),
                    provider=PROVIDER,
                    address=self.url,
                ) from None
        errors = payload.get("errors") if isinstance(payload, Mapping) else None
        messages = ", ".join(_messages(errors))
        if answer.status == 401 or _bad_key(errors):
            detail = f" ({messages})" if messages else ""
            raise ProviderAuthError(
                redact(f"newRelic at {where}: {UNAUTHORIZED}{detail}", (self._key,)),
                provider=PROVIDER,
                address=self.url,
            )
        if not answer.ok:
            text = messages or answer.body.decode("utf-8", "replace").strip()
            argo = f"{answer.status} response returned" + (f": {excerpt(text)}" if text else "")
            raise http_failure(PROVIDER, where, answer, argo, secrets=(self._key,))
        if messages:
            raise ProviderError(
                redact(f"newRelic at {where}: {messages}", (self._key,)),
                provider=PROVIDER,
                address=self.url,
            )
        try:
            return decode_results(payload)
        except ValueError as exc:
            raise ProviderBadBody(
                redact(
                    f"newRelic at {where}: HTTP {answer.status} but {exc}: {excerpt(answer.body)}",
                    (self._key,),
                ),
                provider=PROVIDER,
                address=self.url,
            ) from None

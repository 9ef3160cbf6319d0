"""The kayenta block of an Argo metric, pure: thresholds, scopes, Argo's payload text,
the score -> phase rule and Go-style accessors of the status JSON (providers/kayenta.py
makes the calls)."""

from __future__ import annotations

import json
import math
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from providers.base import (
    ProviderConfigError,
    excerpt,
)
from providers.vendor_http import (
    http_url,
    required_text,
    shown_url,
    timeout_of,
)

KIND = "kayenta"
PROVIDER = "kayenta"
EXECUTION_ID_KEY = "canaryExecutionId"  # Argo's measurement metadata key
PHASE_METADATA_KEY = "analysisd.io/phase"  # the engine takes the phase from here
DEFAULT_TIMEOUT_S = 15.0  # Argo's httpConnectionTimout
DEFAULT_RESUME_DELAY_S = 15.0  # Argo's resumeDelay
SETTINGS_KEY = "resumeDelaySeconds"

INVALID_RESPONSE = "Invalid Response"
INVALID_EXECUTION_ID = "Invalid canaryExecutionId"
MISSING_COMPLETE = "Missing Complete Status"
MISSING_SCORE = "Missing Score"

# Argo's jobPayloadFormat and scopeFormat, character for character.
_PAYLOAD = (
    "\n\t\t\t\t\t\t\t{\n"
    '\t\t\t\t\t\t\t\t"scopes": {\n'
    "\t\t\t\t\t\t\t\t\t\t{scopes}\n"
    "\t\t\t\t\t\t\t\t},\n"
    '                                "thresholds" : {\n'
    '                                    "pass": {passing},\n'
    '                                    "marginal": {marginal}\n'
    "                                }\n"
    "                            }"
)
_SCOPE = '"{name}":{{"controlScope": {control}, "experimentScope": {experiment}}}'
_SCOPE_FIELDS = ("scope", "region", "step", "start", "end")  # ScopeDetail's order


# ---------------------------------------------------------------- the block


def _config_error(message: str, field: str) -> ProviderConfigError:
    return ProviderConfigError(f"kayenta: {message}", provider=PROVIDER, field=field)


def _go_int(value: Any, field: str) -> int:
    """A Go ``int`` field: a whole number (YAML may give 90.0), not a bool or a string."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _config_error(f"{field} must be an integer, got {value!r}", field)
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise _config_error(f"{field} must be an integer, got {value!r}", field)
    return int(value)


def text_field(value: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _config_error(f"{field} must be a string, got {value!r}", field)
    return value


def thresholds(config: Mapping[str, Any]) -> tuple[int, int]:
    """(pass, marginal) from Argo's ``threshold`` block.

    Argo's own docs example writes ``thresholds``, which Argo's controller drops (its
    field is ``threshold``), leaving pass 0: every score passes. analysisd reads
    ``thresholds`` when ``threshold`` is absent, and requires one of them.
    """
    block = config.get("threshold")
    if block is None:
        block = config.get("thresholds")
    if not isinstance(block, Mapping):
        raise _config_error("threshold: {pass, marginal} is required", "threshold")
    return (
        _go_int(block.get("pass"), "threshold.pass"),
        _go_int(block.get("marginal"), "threshold.marginal"),
    )


def scope_detail(value: Any, field: str) -> dict[str, Any]:
    """Argo's ScopeDetail: only its five fields, zero values for those not given."""
    if not isinstance(value, Mapping):
        raise _config_error(f"{field} must be a mapping {{scope, region, step, start, end}}", field)
    return {
        "scope": text_field(value.get("scope"), f"{field}.scope"),
        "region": text_field(value.get("region"), f"{field}.region"),
        "step": _go_int(value.get("step", 0), f"{field}.step"),
        "start": text_field(value.get("start"), f"{field}.start"),
        "end": text_field(value.get("end"), f"{field}.end"),
    }


def scopes_of(config: Mapping[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    scopes = config.get("scopes")
    if not isinstance(scopes, Sequence) or isinstance(scopes, str) or not scopes:
        raise _config_error("scopes must list at least one scope", "scopes")
    out = []
    for i, scope in enumerate(scopes):
        where = f"scopes[{i}]"
        if not isinstance(scope, Mapping):
            raise _config_error(f"{where} must be a mapping", where)
        out.append(
            (
                text_field(scope.get("name"), f"{where}.name"),
                scope_detail(scope.get("controlScope"), f"{where}.controlScope"),
                scope_detail(scope.get("experimentScope"), f"{where}.experimentScope"),
            )
        )
    return out


def check(config: Mapping[str, Any]) -> None:
    """What the block must hold before any call (Argo's CRD types say the same)."""
    http_url(required_text(config, "address", KIND), KIND)
    for key in ("application", "canaryConfigName"):
        required_text(config, key, KIND)
    for key in ("metricsAccountName", "configurationAccountName", "storageAccountName"):
        text_field(config.get(key), key)
    thresholds(config)
    scopes_of(config)
    timeout_of(config, DEFAULT_TIMEOUT_S, KIND)


def go_marshal(value: Any) -> str:
    """encoding/json's output: no spaces, <, > and & escaped, non-ASCII kept as UTF-8."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def payload(config: Mapping[str, Any]) -> str:
    """The body Argo POSTs: its format string filled in as fmt.Sprintf fills it."""
    scopes = ",".join(
        _SCOPE.format(
            # Argo puts the name in raw (%s); escaped here so a quote cannot break the JSON.
            name=go_marshal(name)[1:-1],
            control=go_marshal({k: control[k] for k in _SCOPE_FIELDS}),
            experiment=go_marshal({k: experiment[k] for k in _SCOPE_FIELDS}),
        )
        for name, control, experiment in scopes_of(config)
    )
    passing, marginal = thresholds(config)
    return (
        _PAYLOAD.replace("{scopes}", scopes)
        .replace("{passing}", str(passing))
        .replace("{marginal}", str(marginal))
    )


def evaluate(score: int, passing: int, marginal: int) -> str:
    """Argo's evaluateResult."""
    if score >= passing:
        return "Successful"
    if score >= marginal:
        return "Inconclusive"
    return "Failed"


def split_address(address: str) -> tuple[str, str, str]:
    """(address without userinfo, user, password): Go's client sends userinfo as Basic."""
    parts = urllib.parse.urlsplit(address)
    if parts.username is None and parts.password is None:
        return address, "", ""
    return (
        shown_url(address),
        urllib.parse.unquote(parts.username or ""),
        urllib.parse.unquote(parts.password or ""),
    )


def query_escape(value: str) -> str:
    """A query value as Argo's Sprintf leaves it (plain names unchanged), made URL-safe."""
    return urllib.parse.quote(value, safe="-_.~:")


def _go_type(value: Any) -> str:
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "float64"
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    return "[]interface {}"


def go_value(value: Any) -> str:
    """fmt's %v of a decoded JSON value (enough for an accessor error)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str | int | float):
        return str(value)
    return excerpt(json.dumps(value), 80)


def _accessor_error(path: Sequence[str], value: Any, expected: str) -> str:
    return (
        f".{'.'.join(path)} accessor error: {go_value(value)} is of the type "
        f"{_go_type(value)}, expected {expected}"
    )


def nested(patch: Mapping[str, Any], path: Sequence[str], expected: str) -> tuple[Any, str]:
    """unstructured.Nested*: (value, "") found, (None, "") missing, (None, error) wrong type."""
    value: Any = patch
    for i, key in enumerate(path):
        if value is None:  # a null on the way is "not found", as in unstructured
            return None, ""
        if not isinstance(value, Mapping):
            return None, _accessor_error(path[: i + 1], value, "map[string]interface{}")
        if key not in value:
            return None, ""
        value = value[key]
    wanted = bool if expected == "bool" else float
    if isinstance(value, wanted) and not (wanted is float and isinstance(value, bool)):
        return value, ""
    if wanted is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value), ""
    return None, _accessor_error(path, value, expected)


# ---------------------------------------------------------------- the provider

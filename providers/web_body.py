"""The web provider's reading side: a body decoded as Go decodes JSON, the jsonPath compiled."""

from __future__ import annotations

import json
import math
from typing import Any

from providers.base import ProviderBadBody, ProviderConfigError
from providers.jsonpath import JSONPath, JSONPathError, go_json
from providers.web_request import KIND


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON literal {name}")  # Go rejects NaN/Infinity


# One decoder for every body: json.loads with keyword arguments builds a new one per call.
_DECODER = json.JSONDecoder(parse_int=float, parse_constant=_reject_constant)


def decode_json(raw: bytes) -> tuple[bool, Any]:
    """(is JSON?, value) with every number a float, as Go's json.Unmarshal into any."""
    text = raw.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        return False, text  # a byte-order mark is not JSON (json.loads refuses it too)
    try:
        return True, _DECODER.decode(text)
    except ValueError:
        return False, text


def compile_json_path(template: str) -> JSONPath:
    """The jsonPath compiled, or the ProviderConfigError every measurement would give."""
    try:
        return JSONPath(template)
    except (JSONPathError, RecursionError) as exc:
        problem = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ProviderConfigError(
            f"web: invalid jsonPath {template!r}: {problem}", provider=KIND, field="jsonPath"
        ) from None


def series_number(item: Any, where: str) -> float:
    """One value of a series body: a number (or numeric string); null is a gap (NaN)."""
    if item is None:
        return math.nan  # a gap; the judge's NaN strategy decides
    if isinstance(item, bool):
        raise ProviderBadBody(f"web at {where}: series value {item!r} is not a number")
    if isinstance(item, (int, float)):
        return float(item)
    if isinstance(item, str):
        try:
            return float(item)
        except ValueError:
            pass
    raise ProviderBadBody(f"web at {where}: series value {go_json(item)[:100]} is not a number")

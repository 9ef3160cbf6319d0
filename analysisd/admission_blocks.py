"""Admission of one metric's provider block: parsed as its measurements will parse it.

Each provider checks its own block (providers.registry.check_block: required fields,
URL forms, methods, headers, jsonPath); the judge block is parsed as the engine will
parse it. In a template a field still waiting for an argument (`{{...}}`) is not
judged: it is given a stand-in and the rest of the block is checked on. Problems come
back as (field path, message) pairs; `analysisd.admission` makes them its Problems.
Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from analysisd import AnalysisdError
from analysisd.spec import Metric
from providers.base import ProviderConfigError, ProviderError, ProviderUnsupported
from providers.kinds import PROVIDER_CLASSES, check_block

# A `{{...}}` tag: a value a template's arguments supply.
PLACEHOLDER_TAG = re.compile(r"\{\{.*?\}\}", re.S)
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
# Fields a template's block may still wait for, each given a stand-in in turn.
_MAX_STAND_INS = 8
_STAND_IN_URL = "http://placeholder.invalid/"


def single_block(metric: Metric) -> tuple[str, Mapping[str, Any]] | None:
    """The metric's one provider block (kind, config); None if it has none, several, or
    one that is not a mapping."""
    blocks = [(k, v) for k, v in metric.provider.items() if v is not None]
    if len(blocks) != 1 or not isinstance(blocks[0][1], Mapping):
        return None
    return blocks[0]


def unsupported_message(kind: str, config: Mapping[str, Any], supported: frozenset[str]) -> str:
    """Why a block of a kind analysisd does not run is a problem."""
    message = (
        f"provider kind '{kind}' is not run by analysisd (it runs "
        f"{', '.join(sorted(supported))}); every measurement would be an Error"
    )
    if kind in PROVIDER_CLASSES:
        # A kind registered only to explain itself (plugin) says why in its own sentence.
        try:
            check_block(kind, config)
        except ProviderUnsupported as exc:
            message = str(exc)
        except ProviderError:
            pass
    return message


def block_problems(
    where: str, kind: str, config: Mapping[str, Any], lenient: bool
) -> list[tuple[str, str]]:
    """The block's first problem. In a template (lenient) a field waiting for an argument
    is not judged: it is given a stand-in and the rest of the block is checked on."""
    trial: Any = config
    for _ in range(_MAX_STAND_INS):
        try:
            check_block(kind, trial)
        except ProviderConfigError as exc:
            if lenient:
                stood_in = _stood_in(kind, trial, exc.field)
                if stood_in is not None:
                    trial = stood_in
                    continue
                if _waits_for_arguments(trial, exc.field):
                    return []  # no stand-in satisfies it: leave it to the run's door
            field = f"{where}.{exc.field}" if exc.field else where
            return [(field, str(exc))]
        except ProviderError as exc:  # unavailable (its module cannot be loaded)
            return [(where, str(exc))]
        return []
    return []


def _stood_in(kind: str, config: Mapping[str, Any], field: str) -> Any:
    """`config` with `field` given a stand-in that passes where it waits for an argument
    (or, for Prometheus, for the environment), else None."""
    if kind == "prometheus" and field == "address" and not config.get("address"):
        # Where a template runs, ARGO_ROLLOUTS_PROMETHEUS_ADDRESS may supply it (Argo's
        # rule); a run is checked against the daemon's own environment.
        return _with_value(config, field, _STAND_IN_URL)
    if not field or not _waits_for_arguments(config, field):
        return None
    value = _value_at(config, field)
    candidates: list[Any] = [_STAND_IN_URL, "0", 0]
    if isinstance(value, str):
        candidates.insert(0, PLACEHOLDER_TAG.sub("0", value))
    for candidate in candidates:
        trial = _with_value(config, field, candidate)
        try:
            check_block(kind, trial)
        except ProviderConfigError as exc:
            if exc.field == field:
                continue
        except ProviderError:
            return None
        return trial
    return None


def _path(field: str) -> list[str | int]:
    return [name if name else int(position) for name, position in _PATH_PART.findall(field)]


def _value_at(config: Any, field: str) -> Any:
    value = config
    for step in _path(field):
        if isinstance(step, str) and isinstance(value, Mapping):
            value = value.get(step)
        elif isinstance(step, int) and isinstance(value, list) and step < len(value):
            value = value[step]
        else:
            return None
    return value


def _with_value(config: Mapping[str, Any], field: str, value: Any) -> Any:
    """A copy of `config` with the value at `field` replaced (the path must exist)."""
    copy: Any = json.loads(json.dumps(config, default=str))
    steps = _path(field)
    node = copy
    for step in steps[:-1]:
        node = node[step]
    node[steps[-1]] = value
    return copy


def _waits_for_arguments(config: Mapping[str, Any], field: str) -> bool:
    """True when the failing field (or, unnamed, the block) still holds a `{{...}}` tag."""
    value = _value_at(config, field) if field else config
    return "{{" in json.dumps(value, default=str)


def judge_problems(where: str, block: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The judge block parsed as the engine will parse it, where that can be known now."""
    if "canaryConfigName" in block:
        return []  # read from the daemon's canary config directory at run time
    from analysisd.engine.judge_block import parse_judge_block

    try:
        parse_judge_block(block)
    except AnalysisdError as exc:
        text = str(exc)
        if "{{" in text:
            return []  # about an argument only the Rollout supplies
        head, sep, rest = text.partition(": ")
        if sep and head.startswith("judge") and " " not in head:
            return [(f"{where.removesuffix('.judge')}.{head}", rest)]
        return [(where, text)]
    return []

"""Argo's scalar field types as pydantic sees them: Go's int32 (Kubernetes refuses a
bigger number at decode), intstr.IntOrString (an int, or a string that may hold
"{{args.x}}" until arguments are resolved), and argument values, which are strings
in Argo (a YAML `value: 9090` is taken as its text). Pure: pydantic only."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator

__all__ = ["INT32_MAX", "INT32_MIN", "Int32", "IntOrString", "scalar_to_string", "shown"]

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def shown(value: object) -> str:
    """A value as a message quotes it: repr, cut at 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "..."


def _int32(value: Any) -> Any:
    # Argo's integer fields are Go int32s: Kubernetes refuses a bigger number at decode.
    in_range = not isinstance(value, int) or INT32_MIN <= value <= INT32_MAX
    if not in_range and not isinstance(value, bool):
        raise ValueError(f"{shown(value)} is out of range (a 32-bit integer)")
    return value


def _int_or_string(value: Any) -> int | str:
    # YAML booleans and floats are not intstr values; say so instead of coercing.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"must be an integer or a string, got {type(value).__name__} {value!r}")
    result: int | str = _int32(value)
    return result


# An int field of Argo's (int32): a bigger number is refused where it is written.
Int32 = Annotated[int, BeforeValidator(_int32)]


# Argo's intstr.IntOrString: an int, or a string that may hold "{{args.x}}" until
# arguments are resolved (then it must parse as an int: see int_value).
IntOrString = Annotated[int | str, BeforeValidator(_int_or_string)]


def scalar_to_string(value: Any) -> Any:
    # Argument values are strings in Argo; YAML readers write `value: 9090` (an
    # upstream example does), so plain scalars are taken as their YAML text.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value

"""The Go types the result-type checker reasons about, and how they are named.

A type is a kind name ("nil", "bool", "int", "float", "string", "any"), a pair ("array",
element) / ("map", element), or ("struct", Go name) for the one struct a provider hands over
(CloudWatch's types.MetricDataResult). `go_type_key` infers a type from a Python value;
`type_of_go_name` reads the name a provider put on its Reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from analysisd.expr import values as v

Type = Any
ANY = "any"
NUMBERS = ("int", "float")
_GO = {
    "nil": "<nil>",
    "bool": "bool",
    "int": "int",
    "float": "float64",
    "string": "string",
    "any": "interface {}",
}


_SCALARS: Mapping[type, str] = {
    type(None): "nil",
    bool: "bool",
    int: "int",
    float: "float",
    str: "string",
}
ARRAY_OF_FLOAT = ("array", "float")
ARRAY_OF_ANY = ("array", ANY)
MAP_OF_ANY = ("map", ANY)


def go_type_key(value: Any) -> Type:
    """The Go type Argo's checker would see for this result (hashable, for caching).

    Runs for every measurement, so the common shapes are looked up by exact type first."""
    kind = _SCALARS.get(type(value))
    if kind is not None:
        return kind
    if type(value) is list:
        for item in value:
            if not isinstance(item, float):
                return ARRAY_OF_ANY
        return ARRAY_OF_FLOAT if value else ARRAY_OF_ANY
    if type(value) is dict:
        return MAP_OF_ANY
    return _slow_type_key(value)


def _slow_type_key(value: Any) -> Type:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if v.is_array(value):
        if value and all(isinstance(item, float) for item in value):
            return ARRAY_OF_FLOAT
        return ARRAY_OF_ANY
    if isinstance(value, Mapping):
        return MAP_OF_ANY
    return ANY


# The AWS SDK struct a CloudWatch result is a slice of: its fields, as far as they are sure.
METRIC_DATA_RESULT = ("struct", "types.MetricDataResult")
STRUCT_FIELDS: Mapping[str, Mapping[str, Type]] = {
    "types.MetricDataResult": {
        "Id": ANY,
        "Label": ANY,
        "StatusCode": ANY,
        "Timestamps": ("array", ANY),
        "Values": ("array", "float"),
        "Messages": ("array", ANY),
    }
}
_GO_NAMES: Mapping[str, Type] = {
    "<nil>": "nil",
    "bool": "bool",
    "int": "int",
    "int64": "int",
    "float64": "float",
    "string": "string",
    "interface {}": ANY,
    "any": ANY,
    "types.MetricDataResult": METRIC_DATA_RESULT,
}


@lru_cache(maxsize=256)
def type_of_go_name(name: str) -> Type:
    """The checker's type for a Go type name a provider gave ("[]float64", "<nil>", ...)."""
    name = name.strip()
    known = _GO_NAMES.get(name)
    if known is not None:
        return known
    if name.startswith("[]"):
        return ("array", type_of_go_name(name[2:]))
    if name.startswith("map[string]"):
        return ("map", type_of_go_name(name[len("map[string]") :]))
    if name.startswith("*"):
        return type_of_go_name(name[1:])  # Argo's valueFromPointer hands over the element
    return ANY


def go_name(kind: Type) -> str:
    if isinstance(kind, tuple) and kind[0] == "struct":
        return str(kind[1])
    if isinstance(kind, tuple):
        inner = go_name(kind[1])
        return f"[]{inner}" if kind[0] == "array" else f"map[string]{inner}"
    return _GO.get(kind, "interface {}")


def is_kind(kind: Type, *names: str) -> bool:
    return kind == ANY or kind in names


def is_array_type(kind: Type) -> bool:
    return isinstance(kind, tuple) and kind[0] == "array"


def is_map_type(kind: Type) -> bool:
    return isinstance(kind, tuple) and kind[0] == "map"


def comparable_types(left: Type, right: Type) -> bool:
    if ANY in (left, right) or "nil" in (left, right) or left == right:
        return True
    if left in NUMBERS and right in NUMBERS:
        return True
    return (is_array_type(left) and is_array_type(right)) or (
        is_map_type(left) and is_map_type(right)
    )

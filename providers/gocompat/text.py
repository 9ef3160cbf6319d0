"""Go's text of values: float formatting (%v, strconv 'f', encoding/json), json.Marshal,
fmt's %v of values, and the Go type names of provider results."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from providers.gocompat._base import GoError

# --- Go type names of provider results ------------------------------------------------------

GO_NIL = "<nil>"
GO_FLOAT64 = "float64"
GO_FLOAT64_SLICE = "[]float64"
GO_METRIC_DATA_RESULTS = "[]types.MetricDataResult"


def json_go_type(value: Any) -> str:
    """The dynamic Go type of a value json.Unmarshal decoded into an interface{}."""
    if value is None:
        return GO_NIL
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return GO_FLOAT64  # every JSON number decodes to float64
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    return "map[string]interface {}"


# --- float formatting ---------------------------------------------------------------------------


def _shortest_digits(value: float) -> tuple[str, int]:
    """The shortest round-trip decimal digits of |value| and its decimal exponent."""
    text = repr(abs(float(value)))  # a float subclass (numpy) must not change the digits
    mantissa, _, exp_text = text.partition("e")
    point = mantissa.find(".")
    point = len(mantissa) if point < 0 else point
    digits = mantissa.replace(".", "")
    exponent = (int(exp_text) if exp_text else 0) + point - 1
    stripped = digits.lstrip("0")
    exponent -= len(digits) - len(stripped)
    return stripped.rstrip("0") or "0", exponent


def format_float(value: float, *, e_small: int = -4, e_large: int = 6) -> str:
    """Go's shortest formatting of a float64: exponent form when the decimal exponent is
    below e_small or at least e_large. (-4, 6) is fmt's %v / strconv 'g' -1; see
    format_f and format_json for the other two Go uses."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    digits, exponent = _shortest_digits(value)
    sign = "-" if value < 0 else ""
    if exponent < e_small or exponent >= e_large:
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{body}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if exponent < 0:
        return f"{sign}0.{'0' * (-exponent - 1)}{digits}"
    if len(digits) <= exponent + 1:
        return f"{sign}{digits}{'0' * (exponent + 1 - len(digits))}"
    return f"{sign}{digits[: exponent + 1]}.{digits[exponent + 1 :]}"


def format_v(value: float) -> str:
    """fmt's %v of a float64: 0.1, 1e+06, 1.5e-05, NaN, +Inf, -0."""
    return format_float(value)


def format_f(value: float) -> str:
    """strconv.FormatFloat(value, 'f', -1, 64): shortest digits, never an exponent."""
    return format_float(value, e_small=-(10**6), e_large=10**6)


def format_json(value: float) -> str:
    """A float64 as encoding/json writes it ('f' from 1e-6 to 1e21, else 'e' with e-7 not
    e-07); GoError for NaN and infinities, as json.Marshal refuses them."""
    if not math.isfinite(value):
        raise GoError(f"json: unsupported value: {format_v(value)}")
    # Python's repr has the same shortest round-trip digits; without an exponent
    # (0, and 1e-4 <= |value| < 1e16, inside Go's 'f' range) it is Go's text once a
    # trailing ".0" is dropped: "1", "-0", "0.25". The common case of a measured value.
    text = repr(float(value))
    if "e" not in text:
        return text[:-2] if text.endswith(".0") else text
    text = format_float(value, e_small=-6, e_large=21)
    if "e-0" in text:
        text = text.replace("e-0", "e-")
    return text


# --- encoding/json ------------------------------------------------------------------------------

_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_JSON_ESCAPES.update({"\b": "\\b", "\f": "\\f"})
# HTML-safe, as json.Marshal escapes by default; and the JavaScript line terminators.
_JSON_ESCAPES.update({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})
_JSON_ESCAPES.update({"\u2028": "\\u2028", "\u2029": "\\u2029"})


def json_string(text: str) -> str:
    """A string as json.Marshal writes it (invalid UTF-8, here lone surrogates, is U+FFFD)."""
    out = ['"']
    for char in text:
        escaped = _JSON_ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif char < " ":
            out.append(f"\\u{ord(char):04x}")
        elif "\ud800" <= char <= "\udfff":
            out.append("\ufffd")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def json_marshal(value: Any, indent: str = "", *, strict: bool = True, _depth: int = 0) -> str:
    """json.Marshal (indent "") or json.MarshalIndent(value, "", indent) of a decoded JSON
    value: sorted keys, HTML-safe escapes, Go's float text. strict=False writes what Go
    refuses (NaN, non-string keys, other objects) readably instead of raising GoError."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if not strict and not math.isfinite(value):
            return format_v(value)
        return format_json(value)
    if isinstance(value, str):
        return json_string(value)
    pad = "\n" + indent * (_depth + 1) if indent else ""
    end = "\n" + indent * _depth if indent else ""
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        items = [json_marshal(item, indent, strict=strict, _depth=_depth + 1) for item in value]
        return "[" + pad + ("," + pad).join(items) + end + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        if strict and not all(isinstance(key, str) for key in value):
            raise GoError("json: unsupported type: map[interface {}]interface {}")
        colon = ": " if indent else ":"
        items = [
            json_string(str(key))
            + colon
            + json_marshal(item, indent, strict=strict, _depth=_depth + 1)
            for key, item in sorted(value.items(), key=lambda pair: str(pair[0]))
        ]
        return "{" + pad + ("," + pad).join(items) + end + "}"
    if strict:
        raise GoError(f"json: unsupported type: {type(value).__name__}")
    return json_string(str(value))


# --- fmt ----------------------------------------------------------------------------------------


def sprint(value: Any) -> str:
    """fmt.Sprint / %v of a decoded value: <nil>, true, 0.5 and 1e+06, strings bare,
    [a b] for slices, map[k:v] (keys sorted) for maps."""
    if value is None:
        return "<nil>"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return format_v(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(sprint(item) for item in value) + "]"
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda pair: str(pair[0]))
        return "map[" + " ".join(f"{sprint(key)}:{sprint(item)}" for key, item in items) + "]"
    return str(value)

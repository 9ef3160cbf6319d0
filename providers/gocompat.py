"""Go's behaviour that analysisd must copy, written once: RE2 regexps, strconv, math,
time.ParseDuration, float formatting (%v, strconv 'f', encoding/json) and json.Marshal text.

A leaf module: it imports nothing of ours. The condition language (analysisd.expr), the
spec's durations (analysisd.durations), rules.py and every provider use it; where a caller
needs a different acceptance (a provider refusing a zero interval) it keeps a thin wrapper
around the one parser here.

- Regexps are Go's `regexp` package, i.e. RE2 syntax and linear-time matching, through
  google-re2 (the C++ RE2 that Go's package was ported from). Go rejects a few escapes C++ RE2
  accepts (`\\C`); those are refused here too.
- ParseFloat / ParseInt follow Go's strconv, including `_` separators and hex floats.
- Float-to-int conversion follows amd64 (what Argo's images run on): NaN, ±Inf and anything
  out of range become math.MinInt64.
- Round and Pow are ports of Go's math.Round / math.Pow, which differ from C's in ways a
  condition can observe (Pow of an integer exponent is computed by repeated squaring).
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import re2  # type: ignore[import-untyped]

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


class GoError(ValueError):
    """A Go function returned an error; str() is Go's message."""


# --- regexp (RE2) ---------------------------------------------------------------------------

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # errors are raised, never printed to stderr


def _go_rejects(pattern: str) -> str | None:
    """Escapes C++ RE2 accepts but Go's regexp/syntax refuses."""
    index = 0
    while index < len(pattern):
        if pattern[index] == "\\" and index + 1 < len(pattern):
            if pattern[index + 1] == "C":
                return "invalid escape sequence: `\\C`"
            index += 2
            continue
        index += 1
    return None


@lru_cache(maxsize=512)
def compile_regexp(pattern: str) -> Any:
    """regexp.Compile: a compiled RE2 pattern, or GoError('error parsing regexp: ...')."""
    problem = _go_rejects(pattern)
    if problem is not None:
        raise GoError(f"error parsing regexp: {problem}")
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        text = exc.args[0] if exc.args else str(exc)
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        raise GoError(f"error parsing regexp: {text}") from None


def regexp_match(pattern: str, text: str) -> bool:
    """regexp.MatchString: does the pattern match anywhere in text (unanchored)."""
    return compile_regexp(pattern).search(text) is not None


# --- strconv ----------------------------------------------------------------------------------


def go_quote(text: str) -> str:
    """strconv.Quote, as far as messages need it."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _underscore_ok(text: str) -> bool:
    """strconv's underscoreOK: `_` only between digits (or after a base prefix)."""
    saw = "^"
    index = 0
    if text[:1] in ("+", "-"):
        text = text[1:]
    hex_digits = False
    if len(text) >= 2 and text[0] == "0" and text[1].lower() in "box":
        index = 2
        saw = "0"
        hex_digits = text[1].lower() == "x"
    while index < len(text):
        char = text[index]
        if (char.isdigit() and char.isascii()) or (hex_digits and char.lower() in "abcdef"):
            saw = "0"
        elif char == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
        index += 1
    return saw != "_"


_DEC_FLOAT = re.compile(r"[+-]?(?:[0-9_]+\.?[0-9_]*|\.[0-9_]+)(?:[eE][+-]?[0-9_]+)?", re.ASCII)
_HEX_FLOAT = re.compile(
    r"([+-]?)0[xX]((?:[0-9a-fA-F_]+\.?[0-9a-fA-F_]*|\.[0-9a-fA-F_]+))[pP]([+-]?[0-9_]+)", re.ASCII
)
_SPECIAL = {"inf": math.inf, "infinity": math.inf, "nan": math.nan}


def parse_float(text: str) -> float:
    """strconv.ParseFloat(text, 64): GoError for bad syntax or a value out of range."""
    body = text[1:] if text[:1] in ("+", "-") else text
    special = _SPECIAL.get(body.lower())
    if special is not None:
        return -special if text.startswith("-") else special
    if "_" in text and not _underscore_ok(text):
        raise GoError(f"strconv.ParseFloat: parsing {go_quote(text)}: invalid syntax")
    hex_match = _HEX_FLOAT.fullmatch(text)
    if hex_match is not None:
        sign, mantissa, exponent = hex_match.groups()
        mantissa = mantissa.replace("_", "")
        if not any(c not in "." for c in mantissa):
            raise GoError(f"strconv.ParseFloat: parsing {go_quote(text)}: invalid syntax")
        try:
            value = float.fromhex(f"{sign}0x{mantissa}p{int(exponent.replace('_', ''))}")
        except OverflowError:
            value = -math.inf if sign == "-" else math.inf
    elif _DEC_FLOAT.fullmatch(text) and any(c.isdigit() for c in text.split("e")[0].split("E")[0]):
        value = float(text.replace("_", ""))
    else:
        raise GoError(f"strconv.ParseFloat: parsing {go_quote(text)}: invalid syntax")
    if math.isinf(value):
        raise GoError(f"strconv.ParseFloat: parsing {go_quote(text)}: value out of range")
    return value


_DEC_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)


def parse_int(text: str, *, func: str = "ParseInt") -> int:
    """strconv.ParseInt(text, 10, 64) (func="Atoi" words the error as Atoi does)."""
    if not _DEC_INT.fullmatch(text):
        raise GoError(f"strconv.{func}: parsing {go_quote(text)}: invalid syntax")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise GoError(f"strconv.{func}: parsing {go_quote(text)}: value out of range")
    return value


# --- numbers ----------------------------------------------------------------------------------


def wrap_int64(value: int) -> int:
    """Go int64 arithmetic wraps around instead of growing."""
    if INT64_MIN <= value <= INT64_MAX:
        return value
    return ((value - INT64_MIN) % (1 << 64)) + INT64_MIN


def float_to_int64(value: float) -> int:
    """int64(f) on amd64: truncation; NaN, ±Inf and out-of-range give math.MinInt64."""
    if not math.isfinite(value) or not -(2.0**63) <= value < 2.0**63:
        return INT64_MIN
    return int(value)


def _bits(value: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", value))[0])


def _from_bits(bits: int) -> float:
    return float(struct.unpack("<d", struct.pack("<Q", bits & 0xFFFFFFFFFFFFFFFF))[0])


def go_round(value: float) -> float:
    """math.Round: half away from zero, computed on the bits (exact for every float)."""
    bits = _bits(value)
    exponent = (bits >> 52) & 0x7FF
    bias = 1023
    if exponent < bias:
        bits &= 1 << 63  # ±0
        if exponent == bias - 1:
            bits |= 0x3FF0000000000000  # ±1
    elif exponent < bias + 52:
        half = 1 << 51
        exponent -= bias
        bits += half >> exponent
        bits &= ~((1 << 52) - 1 >> exponent)
    return _from_bits(bits)


def _ldexp(fraction: float, exponent: int) -> float:
    try:
        return math.ldexp(fraction, exponent)
    except OverflowError:
        return math.copysign(math.inf, fraction)


def _is_odd_int(value: float) -> bool:
    if abs(value) >= 2.0**53:
        return False
    fraction, integer = math.modf(value)
    return fraction == 0 and int(integer) % 2 == 1


def go_pow(x: float, y: float) -> float:
    """math.Pow, ported: special cases first, then repeated squaring for the integer part."""
    if y == 0 or x == 1:
        return 1.0
    if y == 1:
        return x
    if math.isnan(x) or math.isnan(y):
        return math.nan
    if x == 0:
        if y < 0:
            return -math.inf if math.copysign(1, x) < 0 and _is_odd_int(y) else math.inf
        return x if math.copysign(1, x) < 0 and _is_odd_int(y) else 0.0
    if math.isinf(y):
        if x == -1:
            return 1.0
        return 0.0 if (abs(x) < 1) == (y > 0) else math.inf
    if math.isinf(x):
        if x < 0:
            return go_pow(-0.0, -y)
        return 0.0 if y < 0 else math.inf
    if y == 0.5:
        return math.sqrt(x) if x >= 0 else math.nan
    if y == -0.5:
        return 1 / math.sqrt(x) if x > 0 else (math.inf if x == 0 else math.nan)
    fraction_part, integer_part = math.modf(abs(y))
    if fraction_part != 0 and x < 0:
        return math.nan
    if integer_part >= 2.0**63:
        if x == -1:
            return 1.0
        return 0.0 if (abs(x) < 1) == (y > 0) else math.inf
    a1 = 1.0
    ae = 0
    yi = integer_part
    if fraction_part != 0:
        if fraction_part > 0.5:
            fraction_part -= 1
            yi += 1
        a1 = math.exp(fraction_part * math.log(x))
    x1, xe = math.frexp(x)
    i = int(yi)
    while i != 0:
        if xe < -(1 << 12) or xe > (1 << 12):
            ae += xe
            break
        if i & 1 == 1:
            a1 *= x1
            ae += xe
        x1 *= x1
        xe <<= 1
        if x1 < 0.5:
            x1 += x1
            xe -= 1
        i >>= 1
    if y < 0:
        a1 = 1 / a1
        ae = -ae
    return _ldexp(a1, ae)


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


# --- time.ParseDuration -----------------------------------------------------------------------

_DURATION_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # U+00B5 micro sign
    "\u03bcs": 1_000,  # U+03BC Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DIGITS = "0123456789"


def _quote_duration(text: str) -> str:
    # strconv.Quote as time's errors use it; a text past 100 characters is cut (Go would
    # echo a 5,000-digit duration whole).
    if len(text) > 100:
        return json.dumps(text[:100], ensure_ascii=False)[:-1] + '..."'
    return json.dumps(text, ensure_ascii=False)


def _leading_int(text: str, pos: int) -> tuple[int, int] | None:
    """time.leadingInt: (value, end), None when it overflows 1<<63."""
    value = 0
    while pos < len(text) and text[pos] in _DIGITS:
        if value > (1 << 63) // 10:
            return None
        value = value * 10 + ord(text[pos]) - 48
        if value > 1 << 63:
            return None
        pos += 1
    return value, pos


def _leading_fraction(text: str, pos: int) -> tuple[int, float, int]:
    """time.leadingFraction: (digits as an int, 10**count as a float64, end); digits past
    what an int64 holds are skipped."""
    value, scale, overflow = 0, 1.0, False
    while pos < len(text) and text[pos] in _DIGITS:
        if not overflow:
            if value > INT64_MAX // 10:
                overflow = True
            else:
                following = value * 10 + ord(text[pos]) - 48
                if following > 1 << 63:
                    overflow = True
                else:
                    value = following
                    scale *= 10
        pos += 1
    return value, scale, pos


def parse_duration_ns(text: str) -> int:
    """time.ParseDuration in integer nanoseconds, ported: signs, us/\u00b5s/\u03bcs,
    fractions added as float64(f) * (float64(unit) / scale) as Go does, int64 overflow;
    GoError with Go's message."""
    invalid = GoError(f"time: invalid duration {_quote_duration(text)}")
    pos, negative = 0, False
    if text[:1] in ("-", "+"):
        negative = text[0] == "-"
        pos = 1
    if text[pos:] == "0":
        return 0
    if pos == len(text):
        raise invalid
    total = 0
    while pos < len(text):
        if text[pos] not in _DIGITS and text[pos] != ".":
            raise invalid
        start = pos
        leading = _leading_int(text, pos)
        if leading is None:
            raise invalid
        whole, pos = leading
        had_whole = pos != start
        fraction, scale, had_fraction = 0, 1.0, False
        if pos < len(text) and text[pos] == ".":
            after = pos + 1
            fraction, scale, pos = _leading_fraction(text, after)
            had_fraction = pos != after
        if not had_whole and not had_fraction:
            raise invalid
        unit_end = pos
        while unit_end < len(text) and text[unit_end] not in _DIGITS and text[unit_end] != ".":
            unit_end += 1
        if unit_end == pos:
            raise GoError(f"time: missing unit in duration {_quote_duration(text)}")
        unit = text[pos:unit_end]
        scale_ns = _DURATION_UNITS_NS.get(unit)
        if scale_ns is None:
            raise GoError(
                f"time: unknown unit {_quote_duration(unit)} in duration {_quote_duration(text)}"
            )
        if whole > (1 << 63) // scale_ns:
            raise invalid
        part = whole * scale_ns
        if fraction > 0:
            # float64 is what Go uses here (nanosecond-accurate for fractions of hours)
            part += int(float(fraction) * (float(scale_ns) / scale))
            if part > 1 << 63:
                raise invalid
        total += part
        if total > 1 << 63:
            raise invalid
        pos = unit_end
    if negative:
        return -total
    if total > INT64_MAX:
        raise invalid
    return total


def parse_duration_seconds(text: str) -> float:
    """time.ParseDuration(text).Seconds()."""
    return parse_duration_ns(text) / 1e9


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

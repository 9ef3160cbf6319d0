"""strconv: Quote, ParseFloat (underscores, hex floats, Inf/NaN spellings), ParseInt."""

from __future__ import annotations

import math
import re

from providers.gocompat._base import INT64_MAX, INT64_MIN, GoError

# --- strconv ----------------------------------------------------------------------------------


_QUOTE_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    '"': '\\"',
    "\\": "\\\\",
}


def go_quote(text: str) -> str:
    """strconv.Quote (and %q): a double-quoted Go literal, printable Unicode kept as is,
    other characters as \\a-style, \\x, \\u or \\U escapes (a lone surrogate, Go's
    invalid UTF-8, becomes U+FFFD)."""
    out = ['"']
    for char in text:
        escaped = _QUOTE_ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif "\ud800" <= char <= "\udfff":
            out.append("\ufffd")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)


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

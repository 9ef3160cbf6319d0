"""Literal tokens -> values: Go-style integers, floats and quoted strings."""

from __future__ import annotations

import re

from analysisd.expr.values import INT64_MAX

_ESCAPE = re.compile(
    r"\\(?:([abfnrtv\\'\"`])|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|([0-7]{3})|(.))",
    re.S,
)
_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def parse_int_literal(text: str) -> int | None:
    """Decimal, 0x, 0o and 0b integers with `_` separators; None if out of int64 range."""
    digits = text.replace("_", "")
    lowered = digits.lower()
    try:
        value = int(digits, 0) if lowered.startswith(("0x", "0o", "0b")) else int(digits, 10)
    except ValueError:  # a prefix with no digits, e.g. "0x_"
        return None
    return value if value <= INT64_MAX else None


def parse_float_literal(text: str) -> float:
    return float(text.replace("_", ""))


def unquote(token: str) -> str | None:
    """A quoted literal's text, with Go escapes decoded; None for a bad escape."""
    quote, body = token[0], token[1:-1]
    if quote == "`":
        return body
    bad = False

    def decode(match: re.Match[str]) -> str:
        nonlocal bad
        simple, hex2, hex4, hex8, octal, other = match.groups()
        if simple is not None:
            if simple == "`" or (simple in "'\"" and simple != quote):
                bad = True  # Go: a quote may be escaped only inside its own kind of literal
            return _SIMPLE.get(simple, simple)
        code = hex2 or hex4 or hex8
        if code is not None:
            number = int(code, 16)
        elif octal is not None:
            number = int(octal, 8)
            if number > 0o377:
                bad = True
                return ""
        else:
            bad = True
            return other or ""
        if number > 0x10FFFF:
            bad = True
            return ""
        if 0xD800 <= number <= 0xDFFF:
            return "\ufffd"  # expr-lang accepts a lone surrogate; it encodes as U+FFFD
        return chr(number)

    text = _ESCAPE.sub(decode, body)
    return None if bad else text

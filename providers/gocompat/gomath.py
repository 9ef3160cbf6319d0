"""Go's int64 wrap-around and float->int64 conversion (amd64), math.Round and math.Pow ported."""

from __future__ import annotations

import math
import struct

from providers.gocompat._base import INT64_MAX, INT64_MIN

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

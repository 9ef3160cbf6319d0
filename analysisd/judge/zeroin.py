"""R's zeroin2 (Brent's root finder behind `uniroot`), ported step for step.

Kayenta's MannWhitney (KayentaBrentSolver.brentDirect) is the same C code in
Java. The function we solve is a step function of the shift, so a generic
solver (scipy's brentq) lands elsewhere on a flat stretch and flips labels;
only the exact sequence of steps reproduces R's and Kayenta's intervals.
"""

from __future__ import annotations

import math
from collections.abc import Callable

DBL_EPSILON = 2.220446049250313e-16


def _div(a: float, b: float) -> float:
    """IEEE division as C and Java do it (Python raises on a zero divisor)."""
    try:
        return a / b
    except ZeroDivisionError:
        if a == 0.0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


def zeroin2(
    f: Callable[[float], float],
    ax: float,
    bx: float,
    fa: float,
    fb: float,
    tol: float = 1e-4,
    maxiter: int = 1000,
) -> float:
    """A root of `f` in [ax, bx] given f(ax)=fa and f(bx)=fb, as R_zeroin2 finds it."""
    a, b = ax, bx
    c, fc = a, fa
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    remaining = maxiter + 1
    while remaining > 0:
        remaining -= 1
        prev_step = b - a
        if abs(fc) < abs(fb):
            # Swap so that b is the best approximation so far.
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * DBL_EPSILON * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0.0:
            return b
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:
                # Only two distinct points: linear interpolation.
                t1 = _div(fb, fa)
                p = cb * t1
                q = 1.0 - t1
            else:
                # Inverse quadratic interpolation.
                q = _div(fa, fc)
                t1 = _div(fb, fc)
                t2 = _div(fb, fa)
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0.0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(prev_step * q / 2):
                new_step = _div(p, q)
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0.0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return b

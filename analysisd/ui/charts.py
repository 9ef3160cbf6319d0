"""A metric's measurements over time as inline SVG, drawn on the server (pure).

One marker per measurement, its shape and colour by phase (shape alone tells
the phase: circle Successful, cross Failed, triangle Error, diamond
Inconclusive), and the success/failure thresholds as lines when a condition is
a simple comparison (`result < 10`, `result[0] >= 0.95`, `0.9 <= result`).
A measurement without a numeric value (an Error, a JSON object) still gets its
marker, on the "no value" lane under the axis.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from analysisd.ui.layout import e

WIDTH, HEIGHT = 640, 210
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 14, 160  # plot area; the no-value lane sits below BOTTOM
LANE = 182
COLOURS = {
    "Successful": "#2e7d32",
    "Failed": "#c62828",
    "Error": "#e65100",
    "Inconclusive": "#6a1b9a",
    "Running": "#1565c0",
}

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RESULT = r"(?:result(?:\[0\])?|asFloat\(result(?:\[0\])?\)|asInt\(result(?:\[0\])?\))"
_LEFT_FORM = re.compile(rf"^\s*{_RESULT}\s*(<=|>=|<|>|==)\s*({_NUMBER})\s*$")
_RIGHT_FORM = re.compile(rf"^\s*({_NUMBER})\s*(<=|>=|<|>|==)\s*{_RESULT}\s*$")
_MIRROR = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "=="}


@dataclass(frozen=True, slots=True)
class Threshold:
    kind: str  # "success" or "failure"
    op: str  # result <op> value
    value: float
    text: str  # the condition as written


@dataclass(frozen=True, slots=True)
class Point:
    at: datetime | None
    phase: str
    value: str
    message: str


def threshold(kind: str, condition: str) -> Threshold | None:
    """The line to draw for a condition that is one comparison of the result with a number."""
    if match := _LEFT_FORM.match(condition):
        op, number = match.group(1), match.group(2)
    elif match := _RIGHT_FORM.match(condition):
        number, op = match.group(1), _MIRROR[match.group(2)]
    else:
        return None
    return Threshold(kind, op, float(number), condition.strip())


def numeric(value: str) -> float | None:
    """The number a value string shows: `0.97`, `[0.97]` (a one-sample vector), else None."""
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        parts = text[1:-1].replace(",", " ").split()
        if len(parts) != 1:
            return None
        text = parts[0]
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _marker(phase: str, x: float, y: float) -> str:
    colour = COLOURS.get(phase, "#555")
    if phase == "Failed":
        d = (
            f"M{x - 4:.1f} {y - 4:.1f}L{x + 4:.1f} {y + 4:.1f}"
            f"M{x - 4:.1f} {y + 4:.1f}L{x + 4:.1f} {y - 4:.1f}"
        )
        return f'<path d="{d}" stroke="{colour}" stroke-width="2.5"/>'
    if phase == "Error":
        d = f"M{x:.1f} {y - 5:.1f}L{x + 5:.1f} {y + 4:.1f}L{x - 5:.1f} {y + 4:.1f}Z"
        return f'<path d="{d}" fill="{colour}"/>'
    if phase == "Inconclusive":
        d = f"M{x:.1f} {y - 5:.1f}L{x + 5:.1f} {y:.1f}L{x:.1f} {y + 5:.1f}L{x - 5:.1f} {y:.1f}Z"
        return f'<path d="{d}" fill="{colour}"/>'
    if phase == "Running":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="none" stroke="{colour}"/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>'


def _range(values: Sequence[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if low == high:
        pad = abs(low) * 0.1 or 1.0
        return low - pad, high + pad
    pad = (high - low) * 0.08
    return low - pad, high + pad


def time_chart(metric: str, points: Sequence[Point], thresholds: Sequence[Threshold]) -> str:
    """The chart: x is time (finishedAt), y the value; thresholds dashed, labelled."""
    label = e(metric)
    numbers = [numeric(p.value) for p in points]
    finite = [n for n in numbers if n is not None]
    scale = _range(finite + [t.value for t in thresholds] or [0.0])
    low, high = scale
    times = [p.at.timestamp() for p in points if p.at is not None]
    first, last = (min(times), max(times)) if times else (0.0, 0.0)
    span = last - first or 1.0

    def x(index: int, point: Point) -> float:
        if point.at is None or not times:
            return LEFT + 8 + index * 6
        if last == first:
            return (LEFT + WIDTH - RIGHT) / 2
        return LEFT + 8 + (point.at.timestamp() - first) / span * (WIDTH - RIGHT - LEFT - 16)

    def y(value: float) -> float:
        return BOTTOM - (value - low) / (high - low) * (BOTTOM - TOP)

    summary = f"{len(points)} measurements of {metric}"
    if points:
        summary += f"; last: {points[-1].phase}" + (
            f", value {points[-1].value}" if points[-1].value else ""
        )
    parts = [
        f'<svg class="time-chart" data-metric="{label}" data-points="{len(points)}"'
        f' xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"'
        f' aria-label="{e(summary)}">',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{BOTTOM}" stroke="#888"/>',
        f'<line x1="{LEFT}" y1="{BOTTOM}" x2="{WIDTH - RIGHT}" y2="{BOTTOM}" stroke="#888"/>',
    ]
    for i in range(5):
        tick = low + (high - low) * i / 4
        parts.append(
            f'<line x1="{LEFT - 3}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"'
            f' stroke="#eee"/><text x="{LEFT - 6}" y="{y(tick) + 4:.1f}"'
            f' text-anchor="end">{_fmt(tick)}</text>'
        )
    parts.append(
        f'<text x="{LEFT - 6}" y="{LANE + 4}" text-anchor="end">no value</text>'
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{LANE}" y2="{LANE}" stroke="#eee"'
        ' stroke-dasharray="2,3"/>'
    )
    for t in thresholds:
        colour = COLOURS["Successful" if t.kind == "success" else "Failed"]
        dash = "6,4" if t.kind == "success" else "2,3"
        parts.append(
            f'<g class="threshold {t.kind}" data-value="{_fmt(t.value)}">'
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(t.value):.1f}" y2="{y(t.value):.1f}"'
            f' stroke="{colour}" stroke-dasharray="{dash}" stroke-width="1.5"/>'
            f'<text x="{WIDTH - RIGHT - 2}" y="{y(t.value) - 4:.1f}" text-anchor="end"'
            f' fill="{colour}">{t.kind}: {e(t.text)}</text></g>'
        )
    if times:
        for at, anchor in ((first, "start"), (last, "end")):
            stamp = datetime.fromtimestamp(at, UTC).strftime("%H:%M:%SZ")
            where = LEFT if anchor == "start" else WIDTH - RIGHT
            parts.append(
                f'<text x="{where}" y="{HEIGHT - 2}" text-anchor="{anchor}">{stamp}</text>'
            )
    for index, (point, number) in enumerate(zip(points, numbers, strict=True)):
        px = x(index, point)
        py = LANE if number is None else y(number)
        when = point.at.strftime("%H:%M:%S") if point.at else "-"
        title = f"#{index + 1} {when} {point.phase}"
        if point.value:
            title += f" value={point.value}"
        if point.message:
            title += f" \u2013 {point.message}"
        parts.append(
            f'<g class="point" data-phase="{e(point.phase)}" data-index="{index + 1}">'
            f"<title>{e(title)}</title>{_marker(point.phase, px, py)}</g>"
        )
    parts.append("</svg>")
    return "".join(parts)


LEGEND = (
    '<p class="legend muted">Markers: \u25cf Successful, \u2716 Failed, \u25b2 Error,'
    " \u25c6 Inconclusive; dashed lines: success / failure thresholds.</p>"
)

"""A judgement as one self-contained HTML page: no scripts, fonts or images from anywhere.

render_report(result) -> str is pure, so the CLI (`analysisd judge --report`)
and the daemon's pages render the same page. Per metric: baseline and canary
distributions side by side (box plot over a strip of the points, inline SVG),
the interval of the shift with its tolerance band, the effect size and the
sentence saying why; then group scores and the verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from analysisd.judge.explain import fmt
from analysisd.judge.judge import JudgeResult, MetricResult
from analysisd.judge.stats import percentile_r7

WIDTH, HEIGHT = 520, 230
PLOT_TOP, PLOT_BOTTOM, PLOT_LEFT = 16, 196, 64
MAX_POINTS = 400  # per side in the strip; the box always uses every point
COLOURS = {"baseline": "#4c72b0", "canary": "#dd8452"}
LABEL_COLOURS = {
    "Pass": "#2e7d32",
    "High": "#c62828",
    "Low": "#c62828",
    "Nodata": "#757575",
    "NodataFailMetric": "#c62828",
    "Error": "#ef6c00",
    "Marginal": "#ef6c00",
    "Fail": "#c62828",
}

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:0 0 6px}
.verdict{font-size:18px;font-weight:600;margin:8px 0 16px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-weight:600}
.metrics{display:flex;flex-wrap:wrap;gap:16px}
.metric{border:1px solid #ddd;border-radius:6px;padding:12px;width:540px}
.why{margin:4px 0 8px}
table{border-collapse:collapse}td,th{padding:2px 10px 2px 0;text-align:left;vertical-align:top}
th{font-weight:600;color:#555}.muted{color:#777}
svg text{font:11px system-ui,sans-serif;fill:#333}
"""


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def _thin(values: list[float]) -> list[float]:
    if len(values) <= MAX_POINTS:
        return values
    ordered = sorted(values)
    step = len(ordered) / MAX_POINTS
    return [ordered[int(i * step)] for i in range(MAX_POINTS)]


def _scale(low: float, high: float) -> tuple[float, float]:
    if low == high:
        pad = abs(low) * 0.1 or 1.0
        return low - pad, high + pad
    pad = (high - low) * 0.06
    return low - pad, high + pad


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    return [low + (high - low) * i / (count - 1) for i in range(count)]


def _jitter(index: int) -> float:
    # Deterministic spread in [-1, 1]: the same judgement draws the same picture.
    return ((index * 0.6180339887498949) % 1.0) * 2 - 1


def distribution_svg(metric: MetricResult) -> str:
    """Box plot over a strip of points, baseline left and canary right, on one value axis."""
    sides = (("baseline", metric.baseline_values), ("canary", metric.canary_values))
    finite = {name: _finite(values) for name, values in sides}
    everything = finite["baseline"] + finite["canary"]
    label = escape(metric.name)
    parts = [
        f'<svg class="metric-plot" data-metric="{label}" xmlns="http://www.w3.org/2000/svg"'
        f' width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"'
        f' aria-label="baseline and canary distributions of {label}">'
    ]
    if not everything:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no data</text>')
        parts.append("</svg>")
        return "".join(parts)
    low, high = _scale(min(everything), max(everything))

    def y(value: float) -> float:
        return PLOT_BOTTOM - (value - low) / (high - low) * (PLOT_BOTTOM - PLOT_TOP)

    parts.append(
        f'<line x1="{PLOT_LEFT}" y1="{PLOT_TOP}" x2="{PLOT_LEFT}" y2="{PLOT_BOTTOM}"'
        ' stroke="#999"/>'
    )
    for tick in _ticks(low, high):
        parts.append(
            f'<line x1="{PLOT_LEFT - 4}" x2="{WIDTH - 8}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"'
            ' stroke="#eee"/>'
            f'<text x="{PLOT_LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">'
            f"{escape(fmt(tick))}</text>"
        )
    column = (WIDTH - PLOT_LEFT) / 2
    for index, (name, _) in enumerate(sides):
        values = finite[name]
        centre = PLOT_LEFT + column * (index + 0.5)
        colour = COLOURS[name]
        count = len(metric.baseline_values if name == "baseline" else metric.canary_values)
        hidden = count - len(values)
        caption = f"{name} (n={count}" + (f", {hidden} infinite not drawn" if hidden else "") + ")"
        parts.append(
            f'<text x="{centre:.1f}" y="{HEIGHT - 14}" text-anchor="middle">{caption}</text>'
        )
        if not values:
            parts.append(
                f'<text x="{centre:.1f}" y="{HEIGHT / 2}" text-anchor="middle">no data</text>'
            )
            continue
        for i, value in enumerate(_thin(values)):
            parts.append(
                f'<circle class="point {name}" cx="{centre + _jitter(i) * column * 0.3:.1f}"'
                f' cy="{y(value):.1f}" r="2" fill="{colour}" fill-opacity="0.35"/>'
            )
        q1, median, q3 = (percentile_r7(values, p) for p in (25, 50, 75))
        box_left, box_width = centre - column * 0.18, column * 0.36
        parts.append(
            f'<line x1="{centre:.1f}" x2="{centre:.1f}" y1="{y(min(values)):.1f}"'
            f' y2="{y(max(values)):.1f}" stroke="{colour}"/>'
            f'<rect class="box {name}" x="{box_left:.1f}" y="{y(q3):.1f}" width="{box_width:.1f}"'
            f' height="{max(1.0, y(q1) - y(q3)):.1f}" fill="{colour}" fill-opacity="0.25"'
            f' stroke="{colour}"/>'
            f'<line x1="{box_left:.1f}" x2="{box_left + box_width:.1f}" y1="{y(median):.1f}"'
            f' y2="{y(median):.1f}" stroke="{colour}" stroke-width="2.5"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def interval_svg(metric: MetricResult) -> str:
    """The interval of the shift (canary - baseline) against the tolerance band around zero."""
    o = metric.outcome
    if o.ci_lower is None or o.ci_upper is None or o.upper_bound is None or o.estimate is None:
        return ""
    points = [o.ci_lower, o.ci_upper, o.estimate, o.upper_bound, -o.upper_bound, 0.0]
    finite = [v for v in points if math.isfinite(v)]
    low, high = _scale(min(finite), max(finite))
    width, left, right, mid = WIDTH, 16.0, WIDTH - 16.0, 22.0

    def x(value: float) -> float:
        value = min(max(value, low), high)  # an infinite end sits at the edge
        return left + (value - low) / (high - low) * (right - left)

    band = o.upper_bound
    colour = LABEL_COLOURS.get(o.classification.value, "#555")
    parts = [
        f'<svg class="interval-plot" xmlns="http://www.w3.org/2000/svg" width="{width}"'
        f' height="48" viewBox="0 0 {width} 48" role="img"'
        f' aria-label="interval of the shift of {escape(metric.name)}">',
        f'<rect x="{x(-band):.1f}" y="{mid - 9}" width="{max(1.0, x(band) - x(-band)):.1f}"'
        f' height="18" fill="#9e9e9e" fill-opacity="0.25"/>',
        f'<line x1="{x(0.0):.1f}" x2="{x(0.0):.1f}" y1="{mid - 12}" y2="{mid + 12}"'
        ' stroke="#555" stroke-dasharray="3,2"/>',
        f'<line x1="{x(o.ci_lower):.1f}" x2="{x(o.ci_upper):.1f}" y1="{mid}" y2="{mid}"'
        f' stroke="{colour}" stroke-width="4"/>',
        f'<circle cx="{x(o.estimate):.1f}" cy="{mid}" r="4" fill="{colour}"/>',
        f'<text x="{left}" y="44">shift canary \u2212 baseline: interval and estimate;'
        " grey: tolerance band; dashed: no shift</text>",
        "</svg>",
    ]
    return "".join(parts)


def _badge(label: str) -> str:
    colour = LABEL_COLOURS.get(label, "#555")
    return f'<span class="badge" style="background:{colour}">{escape(label)}</span>'


def _metric_section(metric: MetricResult) -> str:
    e = metric.explanation
    o = metric.outcome
    rows = [
        ("baseline", e.baseline.text()),
        ("canary", e.canary.text()),
        (
            "interval",
            "-"
            if e.interval is None
            else f"[{fmt(e.interval[0])}, {fmt(e.interval[1])}] at {e.conf_level * 100:g}%,"
            f" estimate {fmt(o.estimate)}, tolerance band \u00b1{fmt(o.upper_bound)}",
        ),
        ("effect", e.effect.text()),
        ("direction", e.direction.value),
        ("groups", ", ".join(metric.groups) or "-"),
    ]
    label = o.classification.value
    flags = " (critical)" if o.critical else ""
    flags += " (muted: not scored)" if metric.muted else ""
    table = "".join(f"<tr><th>{k}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return (
        f'<section class="metric" data-metric="{escape(metric.name)}">'
        f"<h2>{escape(metric.name)} {_badge(label)}{escape(flags)}</h2>"
        f'<p class="why">{escape(e.why)}</p>'
        f"{distribution_svg(metric)}{interval_svg(metric)}<table>{table}</table></section>"
    )


def render_report(result: JudgeResult, *, title: str = "Canary judgement") -> str:
    """The whole judgement as one HTML document with inline CSS and SVG only."""
    groups = "".join(
        f"<tr><td>{escape(g.name)}</td><td>{g.score:.2f}</td>"
        f"<td class='muted'>{'no data: counts as 100' if g.no_data else ''}</td></tr>"
        for g in result.group_scores
    )
    warnings = "".join(f"<li>{escape(w)}</li>" for w in result.warnings)
    reason = f"<p>{escape(result.reason)}</p>" if result.reason else ""
    verdict = result.classification.value
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f"<div class='verdict' id='verdict'>score {result.score:g}: {_badge(verdict)}"
        f" <span class='muted'>(pass \u2265 {result.pass_threshold:g},"
        f" marginal \u2265 {result.marginal_threshold:g})</span></div>{reason}"
        f"<h2>Groups</h2><table><tr><th>group</th><th>score</th><th></th></tr>{groups}</table>"
        + (f"<h2>Warnings</h2><ul>{warnings}</ul>" if warnings else "")
        + "<h2>Metrics</h2><div class='metrics'>"
        + "".join(_metric_section(m) for m in result.metrics)
        + "</div></body></html>"
    )

"""A judge metric's report as HTML (pure), from what its measurement stores.

A judge measurement keeps the score as its value and, in its metadata, the
verdict and per canary metric the text the judge wrote (`<metric>.why`,
`.baseline` "n= mean= median=", `.canary`, `.interval` "[lo, hi] at 95%",
`.effect`, `.direction`, `.classification`), and the whole judgement in
Kayenta's CanaryJudgeResult shape (`judgeResult`: each side's count, min,
median, mean and max per metric, the group scores). Per metric one plot:
baseline and canary on one value axis (min-max range, median, mean), and the
interval of the shift against zero; then the group scores and the verdict. The
raw series are not stored: `analysisd judge --report` draws them whole.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analysisd.judge.report import LABEL_COLOURS
from analysisd.store import RunRecord, StoredMeasurement
from analysisd.ui.layout import badge, e, list_url, page, path_part, run_url

WIDTH = 520
_SIDE = re.compile(r"n=(\d+)(?: mean=(\S+) median=(\S+))?")
_INTERVAL = re.compile(r"\[(\S+), (\S+)\] at (\S+)%")
_FIELDS = ("baseline", "canary", "interval", "effect", "direction")


@dataclass(frozen=True, slots=True)
class Side:
    n: int
    mean: float | None
    median: float | None
    low: float | None = None  # min
    high: float | None = None  # max


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def side(text: str) -> Side | None:
    match = _SIDE.match(text or "")
    if not match:
        return None
    return Side(int(match.group(1)), _number(match.group(2)), _number(match.group(3)))


def kayenta_result(metadata: Mapping[str, str]) -> dict[str, Any]:
    """The stored CanaryJudgeResult (empty when absent or unreadable)."""
    try:
        value = json.loads(metadata.get("judgeResult") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _stat(stats: Mapping[str, Any], key: str) -> float | None:
    value = stats.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def side_of(result: Mapping[str, Any], key: str, text: str) -> Side | None:
    """A side from the CanaryJudgeResult's stats (`controlMetadata` baseline,
    `experimentMetadata` canary), else from the text the judge wrote."""
    stats = (result.get(key) or {}).get("stats") or {}
    if isinstance(stats, Mapping) and isinstance(stats.get("count"), int):
        return Side(
            int(stats["count"]),
            _stat(stats, "mean"),
            _stat(stats, "median"),
            _stat(stats, "min"),
            _stat(stats, "max"),
        )
    return side(text)


def interval(text: str) -> tuple[float, float] | None:
    match = _INTERVAL.match(text or "")
    if not match:
        return None
    low, high = _number(match.group(1)), _number(match.group(2))
    return None if low is None or high is None else (low, high)


def canary_metrics(metadata: Mapping[str, str], order: Sequence[str] = ()) -> list[str]:
    """The judged metrics, in the canary config's order where it is known."""
    names = [k[: -len(".why")] for k in metadata if k.endswith(".why")]
    known = [n for n in order if n in names]
    return known + sorted(n for n in names if n not in known)


def _label(metadata: Mapping[str, str], name: str) -> tuple[str, bool]:
    text = metadata.get(f"{name}.classification", "")
    label, _, rest = text.partition(",")
    return label.strip(), "critical" in rest


def _badge(label: str) -> str:
    colour = LABEL_COLOURS.get(label, "#555")
    return f'<span class="label" style="background:{colour}">{e(label or "-")}</span>'


def _scale(values: list[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if low == high:
        pad = abs(low) * 0.1 or 1.0
        return low - pad, high + pad
    pad = (high - low) * 0.1
    return low - pad, high + pad


def summary_svg(name: str, baseline: Side | None, canary: Side | None) -> str:
    """Baseline and canary on one value axis: min-max as a thin line, median as a bar,
    mean as a dot."""
    rows = [("baseline", baseline, "#4c72b0", 34), ("canary", canary, "#dd8452", 74)]
    values = [
        v
        for _, s, _, _ in rows
        if s is not None
        for v in (s.mean, s.median, s.low, s.high)
        if v is not None
    ]
    parts = [
        f'<svg class="metric-plot" data-metric="{e(name)}" xmlns="http://www.w3.org/2000/svg"'
        f' viewBox="0 0 {WIDTH} 112" role="img"'
        f' aria-label="baseline and canary of {e(name)}: range, median and mean">'
    ]
    if not values:
        parts.append('<text x="260" y="56" text-anchor="middle">no data</text></svg>')
        return "".join(parts)
    low, high = _scale(values)

    def x(value: float) -> float:
        return 92 + (value - low) / (high - low) * (WIDTH - 112)

    for i in range(5):
        tick = low + (high - low) * i / 4
        parts.append(
            f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="16" y2="92" stroke="#eee"/>'
            f'<text x="{x(tick):.1f}" y="106" text-anchor="middle">{tick:.4g}</text>'
        )
    for label, s, colour, y in rows:
        n = s.n if s is not None else 0
        parts.append(f'<text x="4" y="{y + 4}">{label} n={n}</text>')
        if s is None or (s.mean is None and s.median is None):
            parts.append(f'<text x="92" y="{y + 4}">no data</text>')
            continue
        if s.low is not None and s.high is not None:
            parts.append(
                f'<line class="range" x1="{x(s.low):.1f}" x2="{x(s.high):.1f}" y1="{y}"'
                f' y2="{y}" stroke="{colour}" stroke-width="2"><title>{label} min'
                f" {s.low:.4g}, max {s.high:.4g}</title></line>"
            )
        if s.median is not None:
            parts.append(
                f'<line x1="{x(s.median):.1f}" x2="{x(s.median):.1f}" y1="{y - 11}"'
                f' y2="{y + 11}" stroke="{colour}" stroke-width="4"><title>{label} median'
                f" {s.median:.4g}</title></line>"
            )
        if s.mean is not None:
            parts.append(
                f'<circle cx="{x(s.mean):.1f}" cy="{y}" r="5" fill="{colour}"'
                f' fill-opacity="0.6"><title>{label} mean {s.mean:.4g}</title></circle>'
            )
    parts.append("</svg>")
    return "".join(parts)


def interval_svg(name: str, bounds: tuple[float, float] | None) -> str:
    if bounds is None:
        return ""
    low, high = _scale([bounds[0], bounds[1], 0.0])

    def x(value: float) -> float:
        return 16 + (value - low) / (high - low) * (WIDTH - 32)

    return (
        f'<svg class="interval-plot" data-metric="{e(name)}" xmlns="http://www.w3.org/2000/svg"'
        f' viewBox="0 0 {WIDTH} 48" role="img" aria-label="interval of the shift of {e(name)}">'
        f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="8" y2="34" stroke="#555"'
        ' stroke-dasharray="3,2"/>'
        f'<line x1="{x(bounds[0]):.1f}" x2="{x(bounds[1]):.1f}" y1="21" y2="21"'
        ' stroke="#333" stroke-width="4"/>'
        f'<text x="16" y="45">shift canary \u2212 baseline: [{bounds[0]:.4g}, {bounds[1]:.4g}];'
        " dashed: no shift</text></svg>"
    )


def _section(metadata: Mapping[str, str], name: str, result: Mapping[str, Any]) -> str:
    label, critical = _label(metadata, name)
    rows = "".join(
        f"<tr><th scope=row>{f}</th><td>{e(metadata.get(f'{name}.{f}', '-'))}</td></tr>"
        for f in _FIELDS
    )
    plot = summary_svg(
        name,
        side_of(result, "controlMetadata", metadata.get(f"{name}.baseline", "")),
        side_of(result, "experimentMetadata", metadata.get(f"{name}.canary", "")),
    )
    groups = ", ".join(str(g) for g in result.get("groups") or [])
    return (
        f'<section class="judged" data-metric="{e(name)}">'
        f"<h2>{e(name)} {_badge(label)}{' (critical)' if critical else ''}</h2>"
        f'<p class="why">{e(metadata.get(f"{name}.why", ""))}</p>{plot}'
        f"{interval_svg(name, interval(metadata.get(f'{name}.interval', '')))}"
        f"<table>{rows}"
        f"{f'<tr><th scope=row>groups</th><td>{e(groups)}</td></tr>' if groups else ''}"
        "</table></section>"
    )


def group_table(result: Mapping[str, Any]) -> str:
    """The group scores (0-100), each with a bar; the summary score is their weighted sum."""
    rows = []
    for group in result.get("groupScores") or []:
        if not isinstance(group, Mapping):
            continue
        score = _stat(group, "score")
        width = 0.0 if score is None else max(0.0, min(100.0, score))
        shown = "-" if score is None else f"{score:.4g}"
        rows.append(
            f'<tr data-group="{e(group.get("name", ""))}"><th scope="row">'
            f"{e(group.get('name', ''))}</th><td>{shown}</td>"
            f'<td><svg class="group-bar" viewBox="0 0 100 10" width="200" height="12"'
            f' aria-hidden="true"><rect width="100" height="10" fill="#eee"/>'
            f'<rect width="{width:.1f}" height="10" fill="#4c72b0"/></svg></td></tr>'
        )
    if not rows:
        return ""
    return (
        '<table class="groups"><caption>Group scores</caption><thead><tr>'
        '<th scope="col">Group</th><th scope="col">Score</th><th scope="col">of 100</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def config_order(record: RunRecord, metric: str) -> list[str]:
    """Canary metric names in the inline canaryConfig's order (empty if by name or absent)."""
    for m in (record.body.get("spec") or {}).get("metrics") or []:
        if m.get("name") == metric:
            block: Any = ((m.get("provider") or {}).get("judge") or {}).get("canaryConfig")
            if isinstance(block, Mapping):
                return [
                    str(c.get("name")) for c in block.get("metrics") or [] if isinstance(c, Mapping)
                ]
    return []


def judge_page(
    record: RunRecord, metric: str, history: Sequence[StoredMeasurement], chosen: int | None
) -> str:
    """The report of measurement `chosen` (1-based; default the newest with a judgement)."""
    mine = [m for m in history if m.metric == metric]
    judged = [i for i, m in enumerate(mine) if (m.body.get("metadata") or {}).get("score")]
    index = (chosen - 1) if chosen and 0 < chosen <= len(mine) else (judged[-1] if judged else None)
    base = f"{run_url(record.namespace, record.name)}/metrics/{path_part(metric)}"
    picker = " ".join(
        f'<a href="{e(base)}?measurement={i + 1}"'
        f"{' aria-current=page' if i == index else ''}>#{i + 1} {e(m.phase)}</a>"
        for i, m in enumerate(mine)
    )
    crumbs = [
        ("namespaces", "/ui/"),
        (record.namespace, list_url(record.namespace)),
        (record.name, run_url(record.namespace, record.name)),
        (metric, ""),
    ]
    title = f"Judge report: {metric} of {record.name}"
    if index is None:
        body = f"<h1>{e(title)}</h1><p>No judgement stored yet.</p>"
        return page(title, body, crumbs=crumbs, script=False)
    chosen_one = mine[index]
    meta: Mapping[str, str] = chosen_one.body.get("metadata") or {}
    names = canary_metrics(meta, config_order(record, metric))
    kayenta = kayenta_result(meta)
    by_name = {
        str(r.get("name")): r for r in kayenta.get("results") or [] if isinstance(r, Mapping)
    }
    reason = f"<p>{e(meta['reason'])}</p>" if meta.get("reason") else ""
    warnings = (
        f'<p class="problem">Warnings: {e(meta["warnings"])}</p>' if meta.get("warnings") else ""
    )
    message = chosen_one.body.get("message") or ""
    body = (
        f"<h1>{e(title)}</h1>"
        f'<p class="muted">Measurements: {picker}</p>'
        f'<div id="verdict" class="verdict">measurement #{index + 1} {badge(chosen_one.phase)}'
        f" score {e(meta.get('score', chosen_one.body.get('value', '-')))}:"
        f" {_badge(meta.get('classification', ''))}"
        f' <span class="muted">(pass \u2265 {e(meta.get("pass", "-"))},'
        f" marginal \u2265 {e(meta.get('marginal', '-'))})</span></div>"
        f"{reason}{warnings}{f'<p class=message>{e(message)}</p>' if message else ''}"
        f"{group_table(kayenta)}"
        '<p class="muted">Per metric: baseline and canary on one axis (thin line min to max,'
        " bar median, dot mean) and the interval of the shift. Stored with each judge"
        " measurement: the score, the verdict, each side's summary statistics and the group"
        " scores; the raw series are not stored (<code>analysisd judge --report</code> draws"
        " them whole).</p>"
        '<div class="judged-metrics">'
        f"{''.join(_section(meta, n, by_name.get(n, {})) for n in names)}</div>"
    )
    return page(title, body, crumbs=crumbs, script=False)

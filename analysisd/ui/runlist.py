"""The run list of one namespace as HTML (pure): phase, template, age, progress per metric.

Rows are built from the stored JSON as it is (no model validation), one page of
them (listing.PAGE_SIZE) with links to newer and older pages: the page's cost does
not grow with the namespace. The live stream sends the same row markup
(`row_html`), so a row looks the same loaded or updated.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from analysisd.store import RunRecord
from analysisd.ui.layout import PHASES, badge, e, list_url, page, parse_time, run_url, time_tag
from analysisd.ui.listing import RunPage

TEMPLATE_KEY = (
    "analysisd.io/template"  # label or annotation naming the template, if the creator set it
)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def wanted(metric: Mapping[str, Any]) -> str:
    """Measurements a metric wants, as Argo counts them: count; unset/0 means once
    without an interval and until terminated (\u221e) with one."""
    count = metric.get("count")
    number = _int(count)
    if count is None or number == 0:
        return "\u221e" if metric.get("interval") else "1"
    return str(number) if number is not None else str(count)


def template_of(record: RunRecord) -> str:
    meta = record.body.get("metadata") or {}
    for source in (meta.get("labels") or {}, meta.get("annotations") or {}):
        if source.get(TEMPLATE_KEY):
            return str(source[TEMPLATE_KEY])
    return ""


def progress(record: RunRecord) -> list[tuple[str, int, str, str]]:
    """(metric, measured, wanted, metric phase) for each metric of the spec."""
    results = {r.get("name"): r for r in (record.status or {}).get("metricResults") or [] if r}
    out = []
    for metric in (record.body.get("spec") or {}).get("metrics") or []:
        name = str(metric.get("name", ""))
        result = results.get(name) or {}
        out.append((name, int(result.get("count") or 0), wanted(metric), result.get("phase", "")))
    return out


def row_html(record: RunRecord, now: datetime) -> str:
    phase = record.phase or "Pending"
    template = template_of(record)
    cells = "".join(
        f"<li>{e(name)} {done} of {want}</li>" for name, done, want, _ in progress(record)
    )
    shown = e(template) if template else '<span class="muted">-</span>'
    return (
        f'<tr data-run="{e(record.name)}" data-phase="{e(phase)}">'
        f'<th scope="row"><a href="{e(run_url(record.namespace, record.name))}">'
        f"{e(record.name)}</a></th>"
        f"<td>{badge(phase)}</td><td>{shown}</td>"
        f"<td>{time_tag(parse_time(record.created_at), now)}</td>"
        f'<td><ul class="progress">{cells}</ul></td></tr>'
    )


def _filters(namespace: str, phase: str, label: str) -> str:
    options = "".join(
        f'<option value="{p}"{" selected" if p == phase else ""}>{p}</option>' for p in PHASES
    )
    return (
        f'<form class="filters" method="get" action="{e(list_url(namespace))}" role="search">'
        '<label for="f-phase">Phase</label> <select id="f-phase" name="phase">'
        f'<option value="">any</option>{options}</select> '
        '<label for="f-label">Labels</label> <input id="f-label" name="label" size="28"'
        f' value="{e(label)}" placeholder="app=checkout,tier in (web)"> '
        "<button type=submit>Filter</button></form>"
    )


def _pager(namespace: str, query: dict[str, str], number: int, pages: int) -> str:
    if pages <= 1:
        return ""

    def link(target: int, text: str, rel: str) -> str:
        href = list_url(namespace) + "?" + urlencode({**query, "page": str(target)})
        return f'<a rel="{rel}" href="{e(href)}">{text}</a>'

    parts = [link(number - 1, "\u2190 newer", "prev")] if number > 1 else []
    parts.append(f"page {number} of {pages}")
    if number < pages:
        parts.append(link(number + 1, "older \u2192", "next"))
    joined = " \u00b7 ".join(parts)
    return f'<nav class="pager" aria-label="pages">{joined}</nav>'


def list_page(
    namespace: str,
    shown: RunPage,
    now: datetime,
    *,
    phase: str = "",
    label: str = "",
    problem: str = "",
) -> str:
    """One page of runs (newest first), with links to the others."""
    query = {k: v for k, v in (("phase", phase), ("label", label)) if v}
    live_query = {**query, "page": str(shown.number)} if shown.number > 1 else query
    live = list_url(namespace) + "/live" + (f"?{urlencode(live_query)}" if live_query else "")
    rows = "".join(row_html(r, now) for r in shown.rows)
    pager = _pager(namespace, query, shown.number, shown.pages)
    empty = "" if shown.total else '<p id="empty">No runs match.</p>'
    note = f'<p class="problem" role="alert">{e(problem)}</p>' if problem else ""
    body = (
        f"<h1>AnalysisRuns in {e(namespace)}</h1>{_filters(namespace, phase, label)}{note}"
        f'<p class="muted"><span id="count">{shown.total}</span> runs, newest first;'
        f' <span id="live-state" role="status">updates live</span></p>{pager}'
        '<table class="runs"><thead><tr><th scope="col">Name</th><th scope="col">Phase</th>'
        '<th scope="col">Template</th><th scope="col">Age</th>'
        '<th scope="col">Progress (measured of count)</th></tr></thead>'
        f'<tbody id="runs">{rows}</tbody></table>{empty}{pager}'
    )
    return page(
        f"Runs in {namespace}",
        body,
        crumbs=[("namespaces", "/ui/"), (namespace, "")],
        attrs=f' data-page="list" data-live="{e(live)}" data-first="{int(shown.number == 1)}"',
    )

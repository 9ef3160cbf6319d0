"""One run as HTML (pure): per metric its chart, measurements, query as sent, next due.

`run_main` is the page's <main> content; the live stream re-sends it after every
change, so what arrives while the page is open is drawn by the same code as what
was there on load. Secrets never reach the page: secret-valued arguments are
substituted as ***** and credential-like keys of the provider block are masked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from analysisd.args import REDACTED, ArgsError, resolve_metrics
from analysisd.engine import run as lifecycle
from analysisd.rules import RuleError, dry_run_metrics
from analysisd.spec import COMPLETED_PHASES, AnalysisRun, Metric, MetricResult
from analysisd.store import RunRecord, StoredMeasurement
from analysisd.ui.charts import LEGEND, Point, Threshold, threshold, time_chart
from analysisd.ui.layout import badge, e, list_url, page, parse_time, path_part, run_url
from analysisd.ui.runlist import wanted

TABLE_ROWS = 30  # newest measurements listed under a chart (the chart has all of them)
_SENSITIVE = re.compile(
    r"secret|token|password|passwd|credential|authorization|apikey|api_key|appkey|app_key"
    r"|private|oauth|sigv4|basicauth|bearer|headers",
    re.IGNORECASE,
)


class MaskedSecrets:
    """A SecretSource answering ***** for every key: the query shows where a secret goes."""

    def get(self, name: str, key: str) -> str | None:
        return REDACTED


def masked(value: Any) -> Any:
    """The provider block with credential-like keys (headers, auth, keys) masked."""
    if isinstance(value, Mapping):
        return {
            str(k): (REDACTED if _SENSITIVE.search(str(k)) and v not in (None, "") else masked(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


def query_text(metric: Metric) -> str:
    """The provider block as sent: arguments substituted, secrets masked, one key per line."""
    blocks = masked(metric.provider)
    return json.dumps(blocks, indent=2, ensure_ascii=False)


def resolved_metrics(run: AnalysisRun) -> dict[str, Metric]:
    try:
        metrics = resolve_metrics(run.spec, MaskedSecrets(), meta=run.metadata).metrics
    except (ArgsError, ValueError):
        metrics = list(run.spec.metrics)  # unresolvable: show the spec as written
    return {m.name: m for m in metrics}


def judge_url(namespace: str, name: str, metric: str) -> str:
    return f"{run_url(namespace, name)}/metrics/{path_part(metric)}"


def points_of(history: Sequence[StoredMeasurement], metric: str) -> list[Point]:
    out = []
    for stored in history:
        if stored.metric != metric:
            continue
        body = stored.body
        at = parse_time(body.get("finishedAt")) or parse_time(body.get("startedAt"))
        out.append(
            Point(
                at,
                str(body.get("phase", "")),
                str(body.get("value", "")),
                str(body.get("message", "")),
            )
        )
    return out


def retained(result: MetricResult | None) -> list[Point]:
    """The status' retained measurements, for a run whose history the store lacks."""
    if result is None:
        return []
    return [
        Point(m.finished_at, m.phase, m.value, m.message)
        for m in result.measurements
        if m.finished_at is not None
    ]


def _next(metric: Metric, result: MetricResult | None, run: AnalysisRun, now: datetime) -> str:
    phase = result.phase if result is not None else "Pending"
    if phase in COMPLETED_PHASES or (run.status and run.status.phase in COMPLETED_PHASES):
        return '<span class="next">no more measurements</span>'
    last = result.measurements[-1] if result is not None and result.measurements else None
    if last is not None and last.finished_at is None:
        return '<span class="next">measuring now</span>'
    if run.status is None:
        return '<span class="next">waiting to start</span>'
    due = lifecycle.metric_next_due(metric, run.status)
    if due is None:
        return '<span class="next">next: when the scheduler gets to it</span>'
    seconds = max(0, int((due - now).total_seconds() + 0.999))
    stamp = due.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return f'<span class="next" data-next-at="{stamp}">next measurement in {seconds}s</span>'


def _table(points: Sequence[Point]) -> str:
    rows = []
    for index in range(len(points) - 1, max(-1, len(points) - 1 - TABLE_ROWS), -1):
        p = points[index]
        when = p.at.strftime("%H:%M:%SZ") if p.at else "-"
        rows.append(
            f"<tr><td>{index + 1}</td><td>{when}</td><td>{badge(p.phase)}</td>"
            f'<td class="value">{e(p.value)}</td><td class="message">{e(p.message)}</td></tr>'
        )
    more = (
        f'<p class="muted">The newest {TABLE_ROWS} of {len(points)} are listed;'
        " the chart shows every one.</p>"
        if len(points) > TABLE_ROWS
        else ""
    )
    return (
        '<table class="measurements"><caption>Measurements, newest first</caption>'
        '<thead><tr><th scope="col">#</th><th scope="col">Finished</th>'
        '<th scope="col">Phase</th><th scope="col">Value</th><th scope="col">Message / error</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"
    )


def _metric_section(
    record: RunRecord,
    run: AnalysisRun,
    metric: Metric,
    result: MetricResult | None,
    points: list[Point],
    dry: bool,
    now: datetime,
) -> str:
    phase = result.phase if result is not None else "Pending"
    thresholds: list[Threshold] = [
        t
        for t in (
            threshold("success", metric.success_condition) if metric.success_condition else None,
            threshold("failure", metric.failure_condition) if metric.failure_condition else None,
        )
        if t is not None
    ]
    counts = ""
    if result is not None:
        counts = (
            f"{result.successful} successful, {result.failed} failed,"
            f" {result.inconclusive} inconclusive, {result.error} errors"
        )
    done = result.count if result is not None else 0
    want = wanted(metric.model_dump(mode="json", by_alias=True, exclude_none=True))
    conditions = "".join(
        f"<tr><th>{label}</th><td><code>{e(text)}</code></td></tr>"
        for label, text in (
            ("success", metric.success_condition),
            ("failure", metric.failure_condition),
        )
        if text
    )
    kind = next(iter(metric.provider), "")
    judge = ""
    if kind == "judge":
        href = judge_url(record.namespace, record.name, metric.name)
        judge = (
            f'<p><a class="judge-link" href="{e(href)}">Judge report of {e(metric.name)}</a></p>'
        )
    message = f'<p class="message">{e(result.message)}</p>' if result and result.message else ""
    return (
        f'<section class="metric" id="metric-{e(metric.name)}" data-metric="{e(metric.name)}">'
        f"<h2>{e(metric.name)}{' (dry-run)' if dry else ''} {badge(phase)}</h2>{message}"
        f'<p class="summary"><span class="count">{done} of {want}</span> measured'
        f"{'; ' + counts if counts else ''}. {_next(metric, result, run, now)}</p>"
        f"{judge}"
        f"{time_chart(metric.name, points, thresholds)}{LEGEND}"
        f'<div class="columns"><div>{_table(points)}</div><div>'
        f"<table class=conditions><caption>Conditions</caption>"
        f"{conditions or '<tr><td>none</td></tr>'}</table>"
        f'<h3>Query as sent ({e(kind)})</h3><pre class="query">{e(query_text(metric))}</pre>'
        "</div></div></section>"
    )


def run_main(record: RunRecord, history: Sequence[StoredMeasurement], now: datetime) -> str:
    run = AnalysisRun.model_validate(record.manifest())
    status = run.status
    phase = status.phase if status else record.phase or "Pending"
    results = {r.name: r for r in status.metric_results} if status else {}
    metrics = resolved_metrics(run)
    try:
        dry = dry_run_metrics(run.spec.dry_run, run.spec.metrics)
    except RuleError:
        dry = set()
    completed = record.completed or phase in COMPLETED_PHASES
    action = run_url(record.namespace, record.name) + "/terminate"
    terminate = (
        ""
        if completed
        else f'<form class="terminate" method="post" action="{e(action)}">'
        '<button type="submit" id="terminate">Terminate run</button></form>'
    )
    labels = ", ".join(f"{k}={v}" for k, v in sorted(record.labels.items())) or "-"
    started = (
        status.started_at.strftime("%Y-%m-%d %H:%M:%SZ") if status and status.started_at else "-"
    )
    message = f'<p class="message">{e(status.message)}</p>' if status and status.message else ""
    sections = []
    for spec_metric in run.spec.metrics:
        metric = metrics.get(spec_metric.name, spec_metric)
        points = points_of(history, metric.name) or retained(results.get(metric.name))
        sections.append(
            _metric_section(
                record,
                run,
                metric,
                results.get(metric.name),
                points,
                metric.name in dry,
                now,
            )
        )
    return (
        f'<div id="run" data-phase="{e(phase)}" data-completed="{int(completed)}">'
        f"<h1>{e(record.name)} {badge(phase)}</h1>{message}"
        f'<p class="muted">namespace {e(record.namespace)} \u00b7 started {started}'
        f" \u00b7 labels {e(labels)} \u00b7 "
        f'<span id="live-state" role="status">{"final" if completed else "updates live"}</span></p>'
        f'{terminate}<p id="terminate-result" role="status"></p>{"".join(sections)}</div>'
    )


def run_page(record: RunRecord, history: Sequence[StoredMeasurement], now: datetime) -> str:
    live = run_url(record.namespace, record.name) + "/live"
    return page(
        f"{record.name} ({record.namespace})",
        run_main(record, history, now),
        crumbs=[
            ("namespaces", "/ui/"),
            (record.namespace, list_url(record.namespace)),
            (record.name, ""),
        ],
        attrs=f' data-page="run" data-live="{e(live)}"',
    )

"""`analysisd run`'s terminal views, which are the scheduler's observer: a table redrawn in
place on a terminal (LiveView), one line per measurement otherwise (ProgressLines)."""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from analysisd.engine import assess
from analysisd.engine import run as lifecycle
from analysisd.engine.observer import RunChange
from analysisd.spec import (
    AnalysisRun,
    Metric,
    MetricResult,
)

# ---- terminal views (they are the scheduler's observer) ----


def discard(stream: TextIO) -> None:
    """The reader of `stream` went away (`| head`): send the rest to devnull.

    Python's documented way (docs "Note on SIGPIPE"): point the descriptor at
    devnull so the interpreter's flush at exit cannot raise BrokenPipeError again;
    the exit code stays the verdict's.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, stream.fileno())
    finally:
        os.close(devnull)


@dataclass(frozen=True)
class MetricInfo:
    """What the views show of a metric beyond its status: resolved schedule, dry-run."""

    metric: Metric  # arguments substituted where they have plain values (interval, count)
    dry_run: bool

    @property
    def label(self) -> str:
        return f"{self.metric.name} (dry-run)" if self.dry_run else self.metric.name

    def progress(self, result: MetricResult | None) -> str:
        """`2 of 5` (or `2` when it measures until terminated)."""
        done = result.count if result is not None else 0
        wanted = assess.effective_count(self.metric)
        return f"{done}" if wanted is None else f"{done} of {wanted}"


def metric_infos(run: AnalysisRun) -> dict[str, MetricInfo]:
    """The run's metrics as the views show them, by name.

    The spec keeps `{{args.interval}}` placeholders (the scheduler resolves them when
    it prepares the run); for display, substitute the plain values here. Secret values
    are never substituted, so nothing secret can reach the screen.
    """
    from analysisd.args import ArgsError, resolve_metric
    from analysisd.rules import RuleError, dry_run_metrics

    plain = [a for a in run.spec.args if a.value is not None]
    try:
        dry = dry_run_metrics(run.spec.dry_run, run.spec.metrics)
    except RuleError:
        dry = set()
    infos: dict[str, MetricInfo] = {}
    for metric in run.spec.metrics:
        try:
            resolved = resolve_metric(metric, plain)
        except (ArgsError, ValueError):
            resolved = metric
        infos[metric.name] = MetricInfo(resolved, metric.name in dry)
    return infos


def _one_line(text: str) -> str:
    """Messages and values on one line: a multi-line query's lines joined by spaces."""
    return " ".join(text.split())


def _fit(text: str, width: int) -> str:
    if width <= 1:
        return ""
    return text if len(text) <= width else text[: width - 1] + "…"


class RunView:
    """Plain progress lines on a stream: one per measurement and per phase change."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.latest: AnalysisRun | None = None
        self._infos: dict[str, MetricInfo] = {}
        self._infos_of: int | None = None

    def infos(self, run: AnalysisRun) -> dict[str, MetricInfo]:
        # The spec does not change during a run: resolve once per spec object.
        if self._infos_of != id(run.spec):
            self._infos, self._infos_of = metric_infos(run), id(run.spec)
        return self._infos

    async def on_change(self, run: AnalysisRun, change: RunChange) -> None:
        self.latest = run
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        infos = self.infos(run)
        results = {r.name: r for r in run.status.metric_results} if run.status else {}
        for new in change.measurements:
            m = new.measurement
            info = infos.get(new.metric)
            label = info.label if info else new.metric
            text = f"{stamp} {label}: {m.phase}"
            if info is not None:
                text += f" [{info.progress(results.get(new.metric))}]"
            if m.value:
                text += f" value={_one_line(m.value)}"
            if m.message:
                text += f" ({_one_line(m.message)})"
            self._line(text)
        if change.phase != change.previous_phase:
            message = run.status.message if run.status else ""
            suffix = f": {_one_line(message)}" if message and change.completed else ""
            self._line(f"{stamp} run {change.previous_phase} -> {change.phase}{suffix}")

    def note(self, text: str) -> None:
        self._line(text)

    async def tick(self, run: AnalysisRun) -> None:
        """Periodic redraw; plain lines need none."""

    def close(self, final: AnalysisRun) -> None:
        self._write("")

    def _line(self, text: str) -> None:
        self._write(text + "\n")

    def _write(self, text: str) -> None:
        # Progress is a courtesy: a closed stream (`2>&1 | head`) must not stop the run
        # (the view is the scheduler's observer: an error here would end the run).
        try:
            self.out.write(text)
            self.out.flush()
        except BrokenPipeError:
            discard(self.out)


ProgressLines = RunView


class LiveView(RunView):
    """A table redrawn in place on a TTY: each metric, progress, counts, next, last value."""

    def __init__(self, out: TextIO) -> None:
        super().__init__(out)
        self._drawn = 0
        self._notes: list[str] = []
        self._submitted: AnalysisRun | None = None

    async def on_change(self, run: AnalysisRun, change: RunChange) -> None:
        self.latest = run
        self._draw()

    def note(self, text: str) -> None:
        self._notes = [*self._notes[-2:], text]
        self._draw()

    async def tick(self, run: AnalysisRun) -> None:
        self._submitted = run
        while True:
            self._draw()
            await asyncio.sleep(0.5)

    def close(self, final: AnalysisRun) -> None:
        self.latest = final
        self._draw()

    def _draw(self) -> None:
        run = self.latest or self._submitted
        width = shutil.get_terminal_size((100, 24)).columns
        infos = self.infos(run) if run is not None else {}
        lines = render_table(run, datetime.now(UTC), width=width, infos=infos) + self._notes
        # Move up over the previous drawing and clear it, then draw again.
        prefix = f"\x1b[{self._drawn}F\x1b[J" if self._drawn else ""
        self._write(prefix + "\n".join(lines) + "\n")
        self._drawn = len(lines)


def _next_text(info: MetricInfo, result: MetricResult, status: Any, now: datetime) -> str:
    if assess.completed(result.phase):
        return "done"
    last = result.measurements[-1] if result.measurements else None
    if last is not None and last.finished_at is None:
        return "measuring"
    due = lifecycle.metric_next_due(info.metric, status)
    if due is None:
        return ""
    return f"in {max(0.0, (due - now).total_seconds()):.1f}s"


def render_table(
    run: AnalysisRun | None,
    now: datetime,
    *,
    width: int = 100,
    infos: dict[str, MetricInfo] | None = None,
) -> list[str]:
    """The live view: one row per metric, and under it the last measurement's message.

    VALUE is the last column, cut to the terminal width, so it never runs into another.
    """
    if run is None:
        return []
    infos = infos if infos is not None else metric_infos(run)
    status = run.status
    phase = status.phase if status else "Pending"
    lines = [f"AnalysisRun {run.metadata.namespace}/{run.metadata.name}: {phase}"]
    if status and status.message:
        lines.append(_fit(f"  {_one_line(status.message)}", width))
    rows: list[tuple[list[str], str]] = []
    results = {r.name: r for r in status.metric_results} if status else {}
    for metric in run.spec.metrics:
        info = infos.get(metric.name) or MetricInfo(metric, False)
        result = results.get(metric.name)
        if result is None:
            rows.append(([info.label, "Pending", info.progress(None), "", ""], ""))
            continue
        counts = f"{result.successful}/{result.failed}/{result.inconclusive}/{result.error}"
        last = result.measurements[-1] if result.measurements else None
        value = _one_line(last.value) if last and last.value else ""
        nxt = _next_text(info, result, status, now)
        cells = [info.label, result.phase, info.progress(result), counts, nxt]
        rows.append((cells, value))
        message = last.message if last is not None and last.message else ""
        if message and last is not None and last.phase != "Successful":
            rows.append(([], f"{last.phase}: {_one_line(message)}"))
    header = ["METRIC", "PHASE", "MEASURED", "OK/FAIL/INC/ERR", "NEXT"]
    widths = [len(h) for h in header]
    for cells, _ in rows:
        for i, cell in enumerate(cells):
            widths[i] = max(widths[i], len(cell))

    def row(cells: list[str], last: str) -> str:
        head = "  " + " ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
        return head + " " + _fit(last, width - len(head) - 2)

    lines.append(row(header, "VALUE").rstrip())
    for cells, tail in rows:
        if cells:
            lines.append(row(cells, tail).rstrip())
        else:  # the reason of the last measurement, straight under its metric
            lines.append(_fit(f"    └ {tail}", width - 1))
    return lines

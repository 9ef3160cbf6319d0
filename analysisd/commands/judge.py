"""Judge a canary against its baseline with a Kayenta canary config (NetflixACAJudge).

Series files are JSON ({"metric name": [values]}) or CSV (a header row of
metric names, one column per metric; "NaN" or an empty cell is a missing
point). Exit codes: 0 Pass, 1 Fail, 3 Marginal, 2 error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from analysisd.judge.errors import JudgeError
from analysisd.judge.explain import fmt
from analysisd.judge.judge import JudgeResult, judge
from analysisd.judge.report import render_report
from analysisd.judge.scorer import ScoreLabel
from analysisd.judge_io import load_config_file, load_series_file

EXIT_CODES = {ScoreLabel.PASS: 0, ScoreLabel.FAIL: 1, ScoreLabel.MARGINAL: 3}
EXIT_ERROR = 2


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "judge",
        help="compare canary and baseline series with a Kayenta canary config",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True, help="Kayenta canary config (JSON or YAML)")
    parser.add_argument("--baseline", required=True, help="baseline series (JSON or CSV)")
    parser.add_argument("--canary", required=True, help="canary series (JSON or CSV)")
    parser.add_argument("--pass", dest="pass_threshold", type=float, help="pass score (95)")
    parser.add_argument("--marginal", dest="marginal_threshold", type=float, help="marginal (75)")
    parser.add_argument(
        "--strict", action="store_true", help="fail on settings Kayenta would silently ignore"
    )
    parser.add_argument(
        "--reject-infinite",
        action="store_true",
        help="refuse +Inf/-Inf points (Kayenta keeps and ranks them; so do we by default)",
    )
    parser.add_argument(
        "--report", metavar="FILE.html", help="also write a self-contained HTML report"
    )
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    try:
        config = load_config_file(args.config, strict=args.strict)
        baseline = load_series_file(args.baseline)
        canary = load_series_file(args.canary)
        notes: list[str] = []
        pairs: dict[str, tuple[list[float], list[float]]] = {}
        for metric in config.metrics:
            for label, series in (("baseline", baseline), ("canary", canary)):
                if metric.name not in series:
                    notes.append(f"{metric.name}: no {label} series (judged as no data)")
            pairs[metric.name] = (baseline.get(metric.name, []), canary.get(metric.name, []))
        for name in sorted((set(baseline) | set(canary)) - set(pairs)):
            config.metric(name)  # raises: Kayenta refuses series for unknown metrics
        result = judge(
            config,
            pairs,
            pass_threshold=args.pass_threshold,
            marginal_threshold=args.marginal_threshold,
            reject_infinite=args.reject_infinite,
        )
    except JudgeError as exc:
        print(f"analysisd judge: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.report:
        try:
            html = render_report(result, title=f"Canary judgement: {config.name or args.config}")
            Path(args.report).write_text(html, encoding="utf-8")
        except OSError as exc:
            print(f"analysisd judge: {args.report}: cannot write report: {exc}", file=sys.stderr)
            return EXIT_ERROR
    if args.output == "json":
        print(json.dumps({**result.as_dict(), "notes": notes}, indent=2, allow_nan=False))
    else:
        print(render_table(result, notes))
    return EXIT_CODES[result.classification]


def render_table(result: JudgeResult, notes: list[str]) -> str:
    """Per-metric evidence and why, then group scores, the score line and warnings."""
    header = ("METRIC", "RESULT", "BASELINE", "CANARY", "INTERVAL", "EFFECT", "WHY")
    rows = [header]
    for m in result.metrics:
        e = m.explanation
        interval = "-"
        if e.interval is not None:
            interval = f"[{fmt(e.interval[0])}, {fmt(e.interval[1])}] @{e.conf_level * 100:g}%"
        effect = "-" if e.effect.value is None else f"{e.effect.name} {fmt(e.effect.value)}"
        label = m.classification.value + (" (critical)" if m.outcome.critical else "")
        rows.append(
            (
                m.name + (" (muted)" if m.muted else ""),
                label,
                e.baseline.text(),
                e.canary.text(),
                interval,
                effect,
                e.why,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.append("")
    for group in result.group_scores:
        lines.append(
            f"group {group.name}: {group.score:.2f}"
            + (" (no data: counts as 100)" if group.no_data else "")
        )
    lines.append(
        f"score {result.score:g}: {result.classification.value}"
        f" (pass {result.pass_threshold:g}, marginal {result.marginal_threshold:g})"
    )
    if result.reason:
        lines.append(result.reason)
    lines.extend(f"warning: {w}" for w in result.warnings)
    lines.extend(f"note: {n}" for n in notes)
    return "\n".join(lines)

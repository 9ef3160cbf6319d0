"""`analysisd run TEMPLATE.yaml [--arg k=v]... [--secrets-dir DIR] [-o json|yaml]`.

Runs one analysis in the foreground with the real providers and prints the final
AnalysisRun (status as Argo writes it). Exit code: 0 Successful, 1 Failed,
2 Error, 3 Inconclusive. Interrupted is not a pass: SIGINT (Ctrl-C) or SIGTERM
terminates the run gracefully (a second signal aborts), prints the status so far
and exits 130 (SIGINT) or 143 (SIGTERM), whatever the phase. A reader that goes
away (`| head -1`) costs the output, never the exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from analysisd.engine import assess
from analysisd.engine import run as lifecycle
from analysisd.engine.observer import RunChange
from analysisd.spec import (
    AnalysisRun,
    AnalysisTemplate,
    Argument,
    ClusterAnalysisTemplate,
    ObjectMeta,
)

EXIT_CODES = {"Successful": 0, "Failed": 1, "Error": 2, "Inconclusive": 3}
# The shell's convention for "ended by signal N": 128 + N.
INTERRUPTED_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}
_DOC_SUFFIXES = (".yaml", ".yml", ".json")


class RunCommandError(Exception):
    """Bad input to `analysisd run`; printed as `analysisd run: <message>`, exit 2."""


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "run",
        help="run one analysis in the foreground and print the final AnalysisRun",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", help="AnalysisTemplate, ClusterAnalysisTemplate or AnalysisRun")
    parser.add_argument(
        "--arg", action="append", default=[], metavar="K=V", help="argument value (repeatable)"
    )
    parser.add_argument("--secrets-dir", help="directory of <secret>/<key> files")
    parser.add_argument("-o", "--output", choices=("json", "yaml"), default="yaml")
    parser.add_argument("--name", help="name of the AnalysisRun (default: the template's)")
    parser.add_argument("--namespace", default="default")
    parser.add_argument(
        "--measurement-timeout", type=float, default=60.0, help="seconds per measurement"
    )
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    try:
        run = build_run(Path(args.file), args.arg, args.name, args.namespace)
    except RunCommandError as exc:
        print(f"analysisd run: {exc}", file=sys.stderr)
        return 2
    refused = door_problems(run, args.secrets_dir)
    if refused:  # refused as the daemon would refuse it: nothing is measured
        for problem in refused:
            print(f"{args.file}: {problem}", file=sys.stderr)
        return 2
    view: RunView = LiveView(sys.stdout) if sys.stdout.isatty() else ProgressLines(sys.stderr)
    signals: list[signal.Signals] = []
    try:
        final = asyncio.run(
            execute(run, args.secrets_dir, view, args.measurement_timeout, signals=signals)
        )
    except KeyboardInterrupt:
        # Ctrl-C before our handler was in place: asyncio.run cancelled everything.
        signals.append(signal.SIGINT)
        final = view.latest or run
    phase = final.status.phase if final.status else "Error"
    code = EXIT_CODES.get(phase, 2)
    if signals:
        code = INTERRUPTED_EXIT[signals[0]]
        _say(f"analysisd run: interrupted by {signals[0].name}; status so far follows; exit {code}")
    try:
        write_output(final, args.output, sys.stdout)
    except BrokenPipeError:
        _discard(sys.stdout)
    return code


def _discard(stream: TextIO) -> None:
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


def _say(text: str) -> None:
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except BrokenPipeError:
        _discard(sys.stderr)


def parse_args(pairs: Sequence[str]) -> list[Argument]:
    out: list[Argument] = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise RunCommandError(f"--arg {pair!r}: expected NAME=VALUE")
        out.append(Argument(name=key, value=value))
    return out


def _load(path: Path) -> list[Any]:
    from analysisd.loader import LoadError, load_file

    try:
        return list(load_file(path))
    except LoadError as exc:
        raise RunCommandError(str(exc)) from exc
    except OSError as exc:
        raise RunCommandError(f"{path}: {exc.strerror or exc}") from exc


def _neighbours(path: Path) -> list[Any]:
    """Documents from the other files in the template's directory (for template refs)."""
    docs: list[Any] = []
    for other in sorted(path.parent.iterdir()):
        if other == path or other.suffix not in _DOC_SUFFIXES or not other.is_file():
            continue
        try:
            docs.extend(_load(other))
        except RunCommandError:
            continue  # an unrelated bad file next to ours does not stop this run
    return docs


def build_run(
    path: Path, arg_pairs: Sequence[str], name: str | None, namespace: str
) -> AnalysisRun:
    """The AnalysisRun to execute: the file's run, or one built from its first template."""
    cli_args = parse_args(arg_pairs)
    docs = _load(path)
    runs = [d for d in docs if isinstance(d, AnalysisRun)]
    if runs:
        run = runs[0].model_copy(deep=True)
        run.spec.args = _merge_args(run.spec.args, cli_args)
    else:
        templates = [d for d in docs if isinstance(d, AnalysisTemplate | ClusterAnalysisTemplate)]
        if not templates:
            raise RunCommandError(f"{path}: no AnalysisTemplate, ClusterAnalysisTemplate or run")
        primary = templates[0]
        pool = docs + (_neighbours(path) if _has_missing_refs(primary, docs) else [])
        run = AnalysisRun(
            metadata=ObjectMeta(name=primary.metadata.name or "analysis"),
            spec=_run_spec(primary, pool, cli_args),
        )
    run.metadata.name = name or run.metadata.name or "analysis"
    run.metadata.namespace = run.metadata.namespace or namespace
    run.status = run.status if run.status and run.status.metric_results else None
    return run


def _merge_args(existing: list[Argument], overrides: list[Argument]) -> list[Argument]:
    by_name = {a.name: a for a in existing}
    for arg in overrides:
        by_name[arg.name] = arg
    return list(by_name.values())


def _has_missing_refs(
    template: AnalysisTemplate | ClusterAnalysisTemplate, docs: list[Any]
) -> bool:
    names = {(type(d).__name__, d.metadata.name) for d in docs}
    for ref in template.spec.templates:
        kind = "ClusterAnalysisTemplate" if ref.cluster_scope else "AnalysisTemplate"
        if (kind, ref.template_name) not in names:
            return True
    return False


def _run_spec(
    primary: AnalysisTemplate | ClusterAnalysisTemplate, pool: list[Any], cli_args: list[Argument]
) -> Any:
    from analysisd.args import ArgsError, build_run_spec, expand_template_refs

    try:
        # The template plus every template it references, recursively, from the pool.
        templates, clusters = expand_template_refs([primary], pool)
        return build_run_spec(templates, clusters, cli_args)
    except ArgsError as exc:
        raise RunCommandError(str(exc)) from exc


async def execute(
    run: AnalysisRun,
    secrets_dir: str | None,
    view: RunView,
    measurement_timeout: float,
    *,
    signals: list[signal.Signals] | None = None,
) -> AnalysisRun:
    """Run to completion with the real providers; SIGINT or SIGTERM terminates the run
    (each one received before the run ended is appended to `signals`), a second aborts."""
    from analysisd.engine.scheduler import Scheduler, SchedulerClosed
    from providers.registry import LimitsConfig, ProviderRegistry

    secrets = _secret_source(secrets_dir)
    lookup = secrets.get if secrets is not None else (lambda name, key: None)
    namespace, name = run.metadata.namespace or "default", run.metadata.name
    loop = asyncio.get_running_loop()
    async with (
        # One run has nothing to share: no result reuse between its own measurements
        # (a sub-second interval would otherwise see the previous answer again).
        ProviderRegistry(secrets=lookup, limits=LimitsConfig(coalesce_window=0)) as registry,
        Scheduler(
            registry, view, secrets=secrets, measurement_timeout=measurement_timeout
        ) as scheduler,
    ):
        interrupted = asyncio.Event()

        def on_signal(signum: signal.Signals) -> None:
            if aborting.done():
                return  # the run had ended on its own: its verdict stands
            if signals is not None:
                signals.append(signum)
            if interrupted.is_set():
                aborting.cancel()
                return
            interrupted.set()
            view.note(f"{signum.name}: terminating (Ctrl-C again to abort)")
            scheduler.terminate(namespace, name)

        scheduler.submit(run)
        aborting = asyncio.ensure_future(scheduler.wait(namespace, name))
        ticker = asyncio.ensure_future(view.tick(run))
        # Off the main thread (tests) there is no signal handling.
        for signum in INTERRUPTED_EXIT:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, on_signal, signum)
        try:
            final = await aborting
        except (asyncio.CancelledError, SchedulerClosed):
            # Aborted (second Ctrl-C): do not wait for measurements in flight.
            final = view.latest or run
            await scheduler.aclose(grace=0)
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            for signum in INTERRUPTED_EXIT:
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(signum)
    view.close(final)
    return final


def door_problems(run: AnalysisRun, secrets_dir: str | None) -> list[Any]:
    """What the daemon's door refuses in this run (analysisd.admission), before submitting."""
    from analysisd.admission import admission_problems, errors
    from analysisd.engine.measure import NoSecrets

    secrets = _secret_source(secrets_dir) or NoSecrets()
    return errors(admission_problems(run.spec, run.metadata, secrets))


def _secret_source(secrets_dir: str | None) -> Any:
    if secrets_dir is None:
        return None
    from analysisd.secrets import DirectorySecretSource

    return DirectorySecretSource(Path(secrets_dir))


def write_output(run: AnalysisRun, fmt: str, out: TextIO) -> None:
    data = run.model_dump(mode="json", by_alias=True, exclude_none=True)
    if fmt == "json":
        out.write(json.dumps(data, indent=2) + "\n")
    else:
        out.write(yaml.safe_dump(data, sort_keys=False))
    out.flush()


# ---- terminal views (they are the scheduler's observer) ----


class RunView:
    """Plain progress lines on a stream: one per measurement and per phase change."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.latest: AnalysisRun | None = None

    async def on_change(self, run: AnalysisRun, change: RunChange) -> None:
        self.latest = run
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        for new in change.measurements:
            m = new.measurement
            text = f"{stamp} {new.metric}: {m.phase}"
            if m.value:
                text += f" value={m.value}"
            if m.message:
                text += f" ({m.message})"
            self._line(text)
        if change.phase != change.previous_phase:
            message = run.status.message if run.status else ""
            suffix = f": {message}" if message and change.completed else ""
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
            _discard(self.out)


ProgressLines = RunView


class LiveView(RunView):
    """A table redrawn in place on a TTY: each metric, its counts, last value, next measurement."""

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
        lines = render_table(self.latest or self._submitted, datetime.now(UTC)) + self._notes
        # Move up over the previous drawing and clear it, then draw again.
        prefix = f"\x1b[{self._drawn}F\x1b[J" if self._drawn else ""
        self._write(prefix + "\n".join(lines) + "\n")
        self._drawn = len(lines)


def render_table(run: AnalysisRun | None, now: datetime) -> list[str]:
    if run is None:
        return []
    status = run.status
    phase = status.phase if status else "Pending"
    lines = [f"AnalysisRun {run.metadata.namespace}/{run.metadata.name}: {phase}"]
    if status and status.message:
        lines.append(f"  {status.message}")
    header = f"  {'METRIC':<24} {'PHASE':<13} {'OK/FAIL/INC/ERR':<16} {'VALUE':<20} NEXT"
    lines.append(header)
    results = {r.name: r for r in status.metric_results} if status else {}
    for metric in run.spec.metrics:
        result = results.get(metric.name)
        if result is None:
            lines.append(f"  {metric.name:<24} {'Pending':<13}")
            continue
        counts = f"{result.successful}/{result.failed}/{result.inconclusive}/{result.error}"
        last = result.measurements[-1] if result.measurements else None
        value = (last.value if last else "")[:20]
        nxt = ""
        if status and not assess.completed(result.phase):
            if last is not None and last.finished_at is None:
                nxt = "measuring"
            else:
                due = lifecycle.metric_next_due(metric, status)
                if due is not None:
                    nxt = f"in {max(0.0, (due - now).total_seconds()):.1f}s"
        lines.append(f"  {metric.name:<24} {result.phase:<13} {counts:<16} {value:<20} {nxt}")
    return lines

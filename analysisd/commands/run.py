"""`analysisd run TEMPLATE.yaml [--arg k=v]... [--secrets-dir DIR] [-o yaml|json|none]`.

Runs one analysis in the foreground with the real providers and prints the final
AnalysisRun (status as Argo writes it) on stdout. Progress goes to the terminal:
a table redrawn in place when stdout is a terminal, otherwise one line per
measurement on stderr. Exit code: 0 Successful, 1 Failed, 2 Error, 3 Inconclusive.
Interrupted is not a pass: SIGINT (Ctrl-C) or SIGTERM terminates the run
gracefully (a second signal aborts), prints the status so far and exits 130
(SIGINT) or 143 (SIGTERM), whatever the phase. A reader that goes away
(`| head -1`) costs the output, never the exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import difflib
import json
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import yaml

from analysisd.commands.run_view import LiveView, ProgressLines, RunView, discard

# Re-exported: `analysisd client` and the tests import them from here.
from analysisd.commands.run_view import MetricInfo as MetricInfo
from analysisd.commands.run_view import metric_infos as metric_infos
from analysisd.commands.run_view import render_table as render_table
from analysisd.spec import (
    AnalysisRun,
    AnalysisTemplate,
    Argument,
    ClusterAnalysisTemplate,
    ObjectMeta,
)

if TYPE_CHECKING:
    from analysisd.config import Settings

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
        "--arg",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="value of one of the template's arguments (repeatable); every argument "
        "without a value in the template must be given",
    )
    parser.add_argument(
        "--secrets-dir",
        metavar="DIR",
        help="files DIR/<secret>/<key> back valueFrom.secretKeyRef arguments; "
        "ANALYSISD_SECRET_<SECRET>_<KEY> environment variables are read too",
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=("yaml", "json", "none"),
        default="yaml",
        help="format of the final AnalysisRun on stdout; none prints nothing "
        "(the exit code still tells the verdict) (default: %(default)s)",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_const",
        const="none",
        dest="output",
        help="same as -o none",
    )
    parser.add_argument("--name", help="name of the AnalysisRun (default: the template's)")
    parser.add_argument(
        "--namespace",
        default="default",
        help="namespace of the AnalysisRun, as Argo would create it (default: %(default)s)",
    )
    parser.add_argument(
        "--measurement-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="a measurement taking longer is an Error; without it, --config's "
        "measurementTimeout (default: 60.0)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="the daemon's YAML settings file, as `analysisd serve --config` reads it: "
        "provider limits, maxConcurrency, measurementTimeout",
    )
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    try:
        run = build_run(Path(args.file), args.arg, args.name, args.namespace)
    except RunCommandError as exc:
        for line in str(exc).splitlines():
            print(f"analysisd run: {line}", file=sys.stderr)
        return 2
    missing = missing_secrets(run, args.secrets_dir)
    if missing:
        for problem in missing:
            print(f"{args.file}: {problem}", file=sys.stderr)
        return 2
    refused = door_problems(run, args.secrets_dir)
    if refused:  # refused as the daemon would refuse it: nothing is measured
        for problem in refused:
            print(f"{args.file}: {problem}", file=sys.stderr)
        return 2
    from analysisd.config import ConfigError, load_settings

    try:
        settings = load_settings({"config": args.config})
    except ConfigError as exc:
        print(f"analysisd run: {exc}", file=sys.stderr)
        return 2
    view: RunView = LiveView(sys.stdout) if sys.stdout.isatty() else ProgressLines(sys.stderr)
    signals: list[signal.Signals] = []
    try:
        final = asyncio.run(
            execute(
                run,
                args.secrets_dir,
                view,
                args.measurement_timeout,
                signals=signals,
                settings=settings,
            )
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
        discard(sys.stdout)
    return code


def _say(text: str) -> None:
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except BrokenPipeError:
        discard(sys.stderr)


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
        check_args(run.spec.args, cli_args)
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
    from analysisd.args import (
        ArgsError,
        build_run_spec,
        expand_template_refs,
        flatten_templates,
    )

    try:
        # The template plus every template it references, recursively, from the pool.
        templates, clusters = expand_template_refs([primary], pool)
        check_args(flatten_templates(templates, clusters).args, cli_args)
        return build_run_spec(templates, clusters, cli_args)
    except ArgsError as exc:
        raise RunCommandError(str(exc)) from exc


def check_args(declared: Sequence[Argument], given: Sequence[Argument]) -> None:
    """Refuse `--arg`s the template does not declare and name every argument still missing.

    (Argo's merge silently drops undeclared values; on a command line that is a typo.)
    """
    names = [a.name for a in declared]
    problems: list[str] = []
    for arg in given:
        if arg.name not in names:
            close = difflib.get_close_matches(arg.name, names, n=1)
            hint = f"did you mean {close[0]}?" if close else f"it declares: {', '.join(names)}"
            if not names:
                hint = "it declares no arguments"
            problems.append(f"--arg {arg.name}: the template has no such argument ({hint})")
    supplied = {a.name for a in given}
    missing = [
        a.name
        for a in declared
        if a.value is None and a.value_from is None and a.name not in supplied
    ]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        give = " ".join(f"--arg {name}=VALUE" for name in missing)
        problems.append(f"missing argument{plural} {', '.join(missing)}: give {give}")
    if problems:
        raise RunCommandError("\n".join(problems))


async def execute(
    run: AnalysisRun,
    secrets_dir: str | None,
    view: RunView,
    measurement_timeout: float | None,
    *,
    signals: list[signal.Signals] | None = None,
    settings: Settings | None = None,
) -> AnalysisRun:
    """Run to completion with the real providers; SIGINT or SIGTERM terminates the run
    (each one received before the run ended is appended to `signals`), a second aborts.

    Providers and scheduler are the daemon's (analysisd.daemon.start_engine), built
    from `settings` (`--config`, ANALYSISD_* variables) as `serve` builds them."""
    from analysisd.config import Settings
    from analysisd.daemon import start_engine
    from analysisd.engine.scheduler import SchedulerClosed

    base = settings if settings is not None else Settings()
    limits = dict(base.providers.get("limits") or {})
    # One run has nothing to share: no result reuse between its own measurements
    # (a sub-second interval would otherwise see the previous answer again).
    limits["coalesceWindowSeconds"] = 0
    settings = replace(
        base,
        providers={**base.providers, "limits": limits},
        measurement_timeout=measurement_timeout or base.measurement_timeout,
    )
    secrets = _secret_source(secrets_dir)
    namespace, name = run.metadata.namespace or "default", run.metadata.name
    loop = asyncio.get_running_loop()
    async with contextlib.AsyncExitStack() as stack:
        _, scheduler = await start_engine(stack, settings, view, secrets=secrets)
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

    return errors(admission_problems(run.spec, run.metadata, _secret_source(secrets_dir)))


def _secret_source(secrets_dir: str | None) -> Any:
    """--secrets-dir first, then ANALYSISD_SECRET_* variables (one user, one namespace)."""
    from analysisd.secrets import ChainSecretSource, DirectorySecretSource, EnvSecretSource

    if secrets_dir is None:
        return EnvSecretSource()
    return ChainSecretSource(DirectorySecretSource(Path(secrets_dir)), EnvSecretSource())


def missing_secrets(run: AnalysisRun, secrets_dir: str | None) -> list[str]:
    """One message per secretKeyRef argument that no source holds, saying where to put it."""
    from analysisd.secrets import env_variable

    source = _secret_source(secrets_dir)
    problems: list[str] = []
    for arg in run.spec.args:
        ref = arg.value_from.secret_key_ref if arg.value_from else None
        if ref is None or source.get(ref.name, ref.key) is not None:
            continue
        where = (
            f"--secrets-dir {secrets_dir} has no file {Path(secrets_dir) / ref.name / ref.key}"
            if secrets_dir
            else f"give --secrets-dir DIR with a file DIR/{ref.name}/{ref.key}"
        )
        problems.append(
            f"spec.args: argument {arg.name!r} needs key {ref.key!r} of secret {ref.name!r}: "
            f"{where}, or set {env_variable(ref.name, ref.key)}"
        )
    return problems


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (queries) as `|` blocks, line for line as written."""


def _str_representer(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_BlockDumper.add_representer(str, _str_representer)


def write_output(run: AnalysisRun, fmt: str, out: TextIO) -> None:
    if fmt == "none":
        return
    data = run.model_dump(mode="json", by_alias=True, exclude_none=True)
    if fmt == "json":
        out.write(json.dumps(data, indent=2) + "\n")
    else:
        out.write(yaml.dump(data, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True))
    out.flush()

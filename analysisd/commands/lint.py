"""`analysisd lint FILE...`: load, validate, resolve and compile every template or run.

Prints one `file: field: problem` line per problem and exits 1 if there was any,
0 when every file is clean. Arguments without a value are fine in a template (the
Rollout supplies them); what can be checked without them is checked, and the
conditions are compiled with their unresolved placeholders stood in for by 0.
A `*.fragment.yaml` file is a spec body cut from a larger example, so references
to arguments it does not declare are allowed there.

Beyond Argo's own validation, lint applies the checks the daemon applies at its
door (analysisd.admission): each provider parses its block, conditions compile
(not those of `plugin` metrics or of other kinds analysisd does not run: they are
never evaluated here), intervals are positive, names are DNS-1123. A provider
kind Argo knows but analysisd does not run is a problem; with --allow-unsupported
it is printed as a warning and does not change the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from analysisd import AnalysisdError
from analysisd.admission import metric_problems as door_problems
from analysisd.admission import name_problem, namespace_problem
from analysisd.args import (
    ArgsError,
    expand_template_refs,
    flatten_templates,
    placeholders,
    substitute,
)
from analysisd.loader import DEFAULT_MAX_BYTES, LoadError, is_fragment, load_file
from analysisd.rules import check_unique_rules, dry_run_metrics, retention_limits
from analysisd.spec import (
    AnalysisRun,
    AnalysisTemplate,
    AnyObject,
    Argument,
    ClusterAnalysisTemplate,
    Metric,
    SpecError,
    metric_problems,
)

_SUFFIXES = (".yaml", ".yml", ".json")
Compile = Callable[[str], object]


@dataclass(frozen=True)
class Problem:
    source: str
    field: str
    message: str
    warning: bool = False  # printed, but lint still passes (--allow-unsupported)

    def __str__(self) -> str:
        # Loader problems arrive already formatted, in `source` alone.
        message = f"warning: {self.message}" if self.warning else self.message
        parts = [p for p in (self.source, self.field, message) if p]
        return ": ".join(parts)


def _compiler() -> Compile | None:
    # Imported by name: lint works (without the condition check) where it is absent.
    try:
        module = importlib.import_module("analysisd.expr")
    except ImportError:
        return None
    compile_expr: Compile = module.compile_expr
    return compile_expr


def _known_values(args: Sequence[Argument]) -> dict[str, str]:
    return {a.name: a.value for a in args if a.value is not None}


class _ObjectLint:
    """The problems of one loaded object."""

    def __init__(
        self,
        source: str,
        obj: AnyObject,
        pool: Sequence[AnyObject],
        fragment: bool,
        allow_unsupported: bool = False,
    ):
        self.source = source
        self.obj = obj
        self.pool = pool
        self.fragment = fragment
        self.allow_unsupported = allow_unsupported
        self.problems: list[Problem] = []

    def add(self, field: str, message: str, warning: bool = False) -> None:
        self.problems.append(Problem(self.source, field, message, warning))

    def run(self, compile_expr: Compile | None) -> list[Problem]:
        self._metadata()
        spec = self.obj.spec
        declared = {a.name for a in spec.args}
        values = _known_values(spec.args)
        if isinstance(self.obj, AnalysisRun):
            for i, arg in enumerate(spec.args):
                if arg.value is None and arg.value_from is None:
                    self.add(f"spec.args[{i}]", f'argument "{arg.name}" was not supplied')
        resolved = [
            (i, m)
            for i, metric in enumerate(spec.metrics)
            if (m := self._resolve(i, metric, declared, values)) is not None
        ]
        metrics = [m for _, m in resolved]
        has_refs = not isinstance(self.obj, AnalysisRun) and bool(self.obj.spec.templates)
        if len(metrics) == len(spec.metrics) and (metrics or not has_refs):
            self._validate(metrics)
        self._rules(metrics)
        if has_refs:
            self._refs()
        for i, metric in resolved:
            # The daemon's door checks (analysisd.admission), on the file's own indexes.
            for problem in door_problems(
                metric,
                i,
                allow_unsupported=self.allow_unsupported,
                allow_placeholders=True,
                compile_conditions=compile_expr is not None,
            ):
                self.add(problem.field, problem.message, problem.warning)
        return self.problems

    def _metadata(self) -> None:
        """Names as Kubernetes has them (a fragment is named after its file, unchecked)."""
        meta = self.obj.metadata
        if meta.name and not self.fragment and (why := name_problem(meta.name)):
            self.add("metadata.name", why)
        if meta.namespace and (why := namespace_problem(meta.namespace)):
            self.add("metadata.namespace", why)

    def _resolve(
        self, index: int, metric: Metric, declared: set[str], values: dict[str, str]
    ) -> Metric | None:
        """The metric with every known argument substituted; others left as placeholders."""
        field = f"spec.metrics[{index}]"
        text = json.dumps(metric.model_dump(mode="json", by_alias=True, exclude_none=True))
        mapping: dict[str, str] = {}
        for tag in placeholders(text):
            name = tag.removeprefix("args.")
            if not tag.startswith("args."):
                self.add(field, f"{{{{{tag}}}}} is not an argument reference ({{{{args.NAME}}}})")
            elif name not in declared and not self.fragment:
                self.add(field, f"{{{{{tag}}}}} refers to an undeclared argument")
            if name in values:
                mapping[tag] = json.dumps(values[name])[1:-1]
            else:
                mapping[tag] = "{{" + tag + "}}"
        try:
            return Metric.model_validate(json.loads(substitute(text, mapping)))
        except ArgsError as exc:
            self.add(field, str(exc))
        except ValueError as exc:
            self.add(field, f"invalid after argument substitution: {exc}")
        return None

    def _validate(self, metrics: Sequence[Metric]) -> None:
        if not metrics:
            self.add("spec.metrics", "no metrics specified")
            return
        seen: set[str] = set()
        for i, metric in enumerate(metrics):
            if metric.name in seen:
                self.add(f"spec.metrics[{i}].name", f"duplicate name '{metric.name}'")
            seen.add(metric.name)
            for exc in metric_problems(metric, allow_placeholders=True):
                field = f"spec.metrics[{i}].{exc.field}" if exc.field else f"spec.metrics[{i}]"
                self.add(field, str(exc))

    def _rules(self, metrics: Sequence[Metric]) -> None:
        spec = self.obj.spec
        checks: list[Callable[[], object]] = [
            lambda: check_unique_rules(spec.dry_run, spec.measurement_retention),
            lambda: dry_run_metrics(spec.dry_run, metrics),
            lambda: retention_limits(spec.measurement_retention, metrics),
        ]
        for check in checks:
            try:
                check()
            except SpecError as exc:
                self.add(f"spec.{exc.field}", str(exc))

    def _refs(self) -> None:
        assert isinstance(self.obj, AnalysisTemplate | ClusterAnalysisTemplate)
        try:
            templates, clusters = expand_template_refs([self.obj], self.pool)
        except ArgsError:
            return  # referenced templates may live in the cluster, not in these files
        try:
            flatten_templates(templates, clusters)
        except ArgsError as exc:
            self.add("spec.templates", str(exc))


def lint_objects(
    source: str,
    objects: Sequence[AnyObject],
    *,
    pool: Sequence[AnyObject] = (),
    fragment: bool = False,
    compile_expr: Compile | None = None,
    allow_unsupported: bool = False,
) -> list[Problem]:
    """Every problem in the objects loaded from one source."""
    problems: list[Problem] = []
    many = len(objects) > 1
    for obj in objects:
        where = f"{source} ({obj.kind}/{obj.metadata.name})" if many else source
        linter = _ObjectLint(where, obj, [*pool, *objects], fragment, allow_unsupported)
        problems.extend(linter.run(compile_expr))
    return problems


def _expand(paths: Iterable[str]) -> list[Path]:
    out: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES and p.is_file()))
        else:
            out.append(path)
    return out


def lint_paths(
    paths: Iterable[str], *, max_bytes: int = DEFAULT_MAX_BYTES, allow_unsupported: bool = False
) -> list[Problem]:
    """Problems in every file (directories: their .yaml/.yml/.json files)."""
    loaded: list[tuple[Path, list[AnyObject]]] = []
    problems: list[Problem] = []
    for path in _expand(paths):
        try:
            loaded.append((path, load_file(path, max_bytes=max_bytes)))
        except LoadError as exc:
            # One line per problem, each already reading `file: field: problem`.
            problems.extend(Problem(line, "", "") for line in str(exc).splitlines())
    pool = [obj for _, objects in loaded for obj in objects]
    compile_expr = _compiler()
    for path, objects in loaded:
        problems.extend(
            lint_objects(
                str(path),
                objects,
                pool=pool,
                fragment=is_fragment(path),
                compile_expr=compile_expr,
                allow_unsupported=allow_unsupported,
            )
        )
    return problems


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    allow_unsupported = bool(getattr(args, "allow_unsupported", False))
    try:
        problems = lint_paths(
            args.files, max_bytes=args.max_bytes, allow_unsupported=allow_unsupported
        )
    except AnalysisdError as exc:  # a bug here must not look like a clean lint
        out.write(f"analysisd lint: {exc}\n")
        return 1
    for problem in problems:
        out.write(f"{problem}\n")
    return 1 if any(not p.warning for p in problems) else 0


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "lint",
        help="check AnalysisTemplate / ClusterAnalysisTemplate / AnalysisRun files",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="files or directories")
    parser.add_argument(
        "--max-bytes",
        type=int,
        default=DEFAULT_MAX_BYTES,
        help=f"refuse files larger than this (default {DEFAULT_MAX_BYTES})",
    )
    parser.add_argument(
        "--allow-unsupported",
        action="store_true",
        help="report provider kinds analysisd does not run (job, plugin, kayenta, ...) as "
        "warnings, not problems (for templates shared with Argo Rollouts)",
    )
    parser.set_defaults(func=run)

"""Admission: what a run or template must pass at the door, before anything is stored or run.

The doors are the API (creating runs and templates), `analysisd run` (before it
submits) and `analysisd lint`. `spec.validate_metrics` stays Argo's ValidateMetrics,
message for message (the vectors hold it to that, and it never looks inside a
provider block). Admission adds what Argo accepts but what can only fail later, or
never end:

- every condition compiles (not for `plugin` metrics or kinds analysisd does not
  run: Argo never evaluates those conditions here either);
- each provider parses its block as its measurements will (providers.registry.
  check_block: required fields, URL forms, methods, headers, jsonPath; the block's
  checks, templates' stand-ins included, are in admission_blocks.py);
- `interval` is positive, `initialDelay` and `count` are not negative (Argo parses
  them, then measures without pause, or never);
- a provider kind analysisd does not run is a problem (a warning where allowed);
- names are DNS-1123 subdomains and namespaces DNS-1123 labels, as Kubernetes has them;
- every secret a run names (secretKeyRef arguments, `analysisd.io/callback-secret`)
  exists in its own namespace (DESIGN.md §7.1); the refusal says so without telling
  whether some other namespace holds a secret of that name.

Every problem names its field (`spec.metrics[0].provider.web.url`). Pure: no I/O.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from analysisd.admission_blocks import (
    PLACEHOLDER_TAG,
    block_problems,
    judge_problems,
    single_block,
    unsupported_message,
)
from analysisd.durations import DurationError, parse_duration_ns
from analysisd.engine.measure import (
    PreparedRun,
    RunSetupError,
    SecretLookupSource,
    prepare_run,
    run_identity,
)

# Re-exported: the API, the Kayenta door and `lint` import them from here.
from analysisd.names import name_problem as name_problem
from analysisd.names import namespace_problem as namespace_problem
from analysisd.spec import (
    KNOWN_PROVIDER_KINDS,
    RUN_PROVIDER_KINDS,
    AnalysisRunSpec,
    Metric,
    ObjectMeta,
    SpecError,
    int_value,
    is_placeholder,
)

if TYPE_CHECKING:
    from analysisd.expr import Conditions


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a spec is refused: the field path and what is wrong there."""

    field: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        text = f"{self.field}: {self.message}" if self.field else self.message
        return f"warning: {text}" if self.warning else text


def metadata_problems(meta: ObjectMeta) -> list[Problem]:
    problems: list[Problem] = []
    if (why := name_problem(meta.name)) is not None:
        problems.append(Problem("metadata.name", why))
    if meta.namespace and (why := namespace_problem(meta.namespace)) is not None:
        problems.append(Problem("metadata.namespace", why))
    return problems


# ---- one metric ----


def metric_problems(
    metric: Metric,
    index: int,
    *,
    kinds_supported: frozenset[str] = RUN_PROVIDER_KINDS,
    allow_unsupported: bool = False,
    allow_placeholders: bool = False,
    compile_conditions: bool = True,
    compiled: Conditions | None = None,
) -> list[Problem]:
    """What Argo's ValidateMetric lets through but the metric cannot run with.

    allow_placeholders: a template before its arguments are known; a field still
    holding `{{...}}` is not judged, and conditions compile with 0 for each tag.
    compiled: the metric's conditions already compiled (a prepared run's): their errors
    are reported instead of compiling them again.
    """
    prefix = f"spec.metrics[{index}]"
    problems = [
        Problem(f"{prefix}.{field}", message)
        for field, message in _timing_problems(metric, allow_placeholders)
    ]
    block = single_block(metric)
    if block is None:
        return problems  # no provider, several, or not a mapping: Argo's check says so
    kind, config = block
    if kind not in KNOWN_PROVIDER_KINDS:
        return problems  # an unknown kind: Argo's check names it
    if kind not in kinds_supported:
        message = unsupported_message(kind, config, kinds_supported)
        problems.append(Problem(f"{prefix}.provider.{kind}", message, warning=allow_unsupported))
        return problems  # its conditions are never evaluated by analysisd
    where = f"{prefix}.provider.{kind}"
    if kind == "judge":
        found = judge_problems(where, config)
    else:
        found = block_problems(where, kind, config, allow_placeholders)
    problems.extend(Problem(field, message) for field, message in found)
    if compiled is not None:
        problems.extend(_compile_errors(prefix, compiled))
    elif compile_conditions:
        problems.extend(_condition_problems(prefix, metric, allow_placeholders))
    return problems


def _timing_problems(metric: Metric, lenient: bool) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for field, text in (("interval", metric.interval), ("initialDelay", metric.initial_delay)):
        if not text or (lenient and is_placeholder(text)):
            continue
        try:
            nanoseconds = parse_duration_ns(text)
        except DurationError:
            continue  # Argo's own check reports it
        if field == "interval" and nanoseconds <= 0:
            found.append(
                (field, f"must be positive, got {text!r} (it would measure without pause)")
            )
        elif nanoseconds < 0:
            found.append((field, f"must not be negative, got {text!r}"))
    count = metric.count
    if count is not None and not (lenient and is_placeholder(count)):
        try:
            number = int_value(count, "count")
        except SpecError:
            number = 0  # Argo's own check reports it
        if number < 0:
            found.append(("count", f"must be >= 0, got {number}"))
    return found


def _condition_problems(prefix: str, metric: Metric, lenient: bool) -> list[Problem]:
    from analysisd.expr import compile_conditions

    success, failure = metric.success_condition, metric.failure_condition
    if lenient:
        success, failure = PLACEHOLDER_TAG.sub("0", success), PLACEHOLDER_TAG.sub("0", failure)
    try:
        compiled = compile_conditions(success, failure)
    except RecursionError:
        return [Problem(f"{prefix}.successCondition", "does not compile: nested too deeply")]
    return _compile_errors(prefix, compiled)


def _compile_errors(prefix: str, compiled: Conditions) -> list[Problem]:
    return [
        Problem(f"{prefix}.{field}", f"does not compile: {exc}") for field, exc in compiled.errors
    ]


# ---- a whole run ----


def admission_problems(
    spec: AnalysisRunSpec,
    metadata: ObjectMeta | None,
    secrets: SecretLookupSource,
    *,
    kinds_supported: frozenset[str] = RUN_PROVIDER_KINDS,
    allow_unsupported: bool = False,
) -> list[Problem]:
    """Every reason this run cannot start and run to an honest verdict (empty: admit it).

    Arguments are resolved as the run will resolve them (engine.measure.prepare_run,
    Argo's validation included); the problems of the resolved metrics follow.
    """
    problems, _ = admit_run(
        spec,
        metadata,
        secrets,
        kinds_supported=kinds_supported,
        allow_unsupported=allow_unsupported,
    )
    return problems


def admit_run(
    spec: AnalysisRunSpec,
    metadata: ObjectMeta | None,
    secrets: SecretLookupSource,
    *,
    kinds_supported: frozenset[str] = RUN_PROVIDER_KINDS,
    allow_unsupported: bool = False,
) -> tuple[list[Problem], PreparedRun | None]:
    """admission_problems, and the run prepared on the way (arguments resolved, conditions
    compiled: once, here) for the scheduler to start it with; None if it could not be.

    The metadata must be final (uid and creation time included): fieldRef arguments read
    it, and the prepared run is only valid for the run as it will be stored.
    """
    problems = metadata_problems(metadata) if metadata is not None else []
    if metadata is not None:
        problems.extend(callback_secret_problems(metadata, secrets))
    key = _spec_key(spec, kinds_supported, allow_unsupported)
    found = _ADMITTED.get(key) if key is not None else None
    if found is not None and key is not None:
        _ADMITTED.move_to_end(key)
        known, template = found
        return [*problems, *known], _for_run(template, metadata)
    try:
        prepared = prepare_run(spec, secrets, metadata)
    except RunSetupError as exc:
        return [*problems, _setup_problem(exc, spec, metadata)], None
    spec_problems: list[Problem] = []
    for index, metric in enumerate(prepared.metrics):
        spec_problems.extend(
            _resolved_metric_problems(
                metric,
                index,
                kinds_supported,
                allow_unsupported,
                prepared.conditions.get(metric.name),
            )
        )
    if key is not None:
        _ADMITTED[key] = (tuple(spec_problems), _for_run(prepared, None))
        if len(_ADMITTED) > _ADMITTED_MAX:
            _ADMITTED.popitem(last=False)
    return [*problems, *spec_problems], prepared


# Spec (by digest) -> its problems and its run prepared, for specs whose preparation
# depends on nothing but the spec: no argument takes its value from a secret or from
# the run's metadata. Runs created from one template with the same arguments repeat
# their spec; resolving, validating and checking it again cost about 25 us a create.
# A digest, not the text, is kept; a failed preparation is not kept (its message names
# the run's namespace). What the run adds (namespace, name, uid) is filled in per run,
# and the prepared run's own tables (bindings, contexts) are each run's own.
_ADMITTED: OrderedDict[bytes, tuple[tuple[Problem, ...], PreparedRun]] = OrderedDict()
_ADMITTED_MAX = 1024


def _spec_key(
    spec: AnalysisRunSpec, kinds_supported: frozenset[str], allow_unsupported: bool
) -> bytes | None:
    """The memo's key for `spec`, or None if its preparation reads secrets or metadata."""
    if spec.args and any(arg.value_from is not None for arg in spec.args):
        return None
    prefix = _KEY_PREFIXES.get((kinds_supported, allow_unsupported))
    if prefix is None:
        prefix = f"{sorted(kinds_supported)}|{allow_unsupported}|".encode()
        _KEY_PREFIXES[(kinds_supported, allow_unsupported)] = prefix
    import hashlib  # here, not at module level: ~2 ms of `analysisd lint` start-up

    digest = hashlib.blake2b(prefix, digest_size=16)
    digest.update(spec.__pydantic_serializer__.to_json(spec, by_alias=True, exclude_none=True))
    return digest.digest()


# (kinds run, unsupported allowed) -> the start of a spec's key (a handful in a process).
_KEY_PREFIXES: dict[tuple[frozenset[str], bool], bytes] = {}


def _for_run(prepared: PreparedRun, metadata: ObjectMeta | None) -> PreparedRun:
    """`prepared` as prepare_run makes it for a run of `metadata` (None: for no run): the
    shared parts shared, every table copied (bindings and contexts are filled per run)."""
    identity: Mapping[str, object] = run_identity(metadata)
    values: list[Any] = []  # in field order (positional: no keyword matching, 4.7 -> 2.5 us)
    for name in _PREPARED_FIELDS:
        value = identity[name] if name in identity else getattr(prepared, name)
        values.append(type(value)(value) if isinstance(value, _TABLES) else value)
    return PreparedRun(*values)


_PREPARED_FIELDS = tuple(f.name for f in fields(PreparedRun) if f.init)
_TABLES = (dict, list, set)


# Resolved metric (by digest) -> its problems, for metrics as runs hold them (arguments
# resolved): runs made from one template with the same arguments repeat their metrics,
# and checking a provider block (URLs, jsonPath) costs tens of microseconds. A digest,
# not the text, is kept: a resolved block may hold a secret's value.
_CHECKED: OrderedDict[bytes, tuple[Problem, ...]] = OrderedDict()
_CHECKED_MAX = 4096


def _resolved_metric_problems(
    metric: Metric,
    index: int,
    kinds_supported: frozenset[str],
    allow_unsupported: bool,
    compiled: Conditions | None,
) -> list[Problem]:
    """metric_problems of a resolved metric, through a small cache: they depend on nothing
    but the metric (a provider's check is pure), the kinds run and where it sits."""
    import hashlib  # here, not at module level (see _spec_key)

    text = metric.model_dump_json(by_alias=True, exclude_none=True)
    key = hashlib.blake2b(
        f"{index}|{sorted(kinds_supported)}|{allow_unsupported}|{text}".encode(), digest_size=16
    ).digest()
    found = _CHECKED.get(key)
    if found is None:
        found = tuple(
            metric_problems(
                metric,
                index,
                kinds_supported=kinds_supported,
                allow_unsupported=allow_unsupported,
                compiled=compiled,
            )
        )
        _CHECKED[key] = found
        if len(_CHECKED) > _CHECKED_MAX:
            _CHECKED.popitem(last=False)
    return list(found)


def template_problems(
    metrics: Sequence[Metric],
    *,
    kinds_supported: frozenset[str] = RUN_PROVIDER_KINDS,
    allow_unsupported: bool = False,
) -> list[Problem]:
    """A template's metrics before its arguments are known (placeholders left alone)."""
    problems: list[Problem] = []
    for index, metric in enumerate(metrics):
        problems.extend(
            metric_problems(
                metric,
                index,
                kinds_supported=kinds_supported,
                allow_unsupported=allow_unsupported,
                allow_placeholders=True,
            )
        )
    return problems


def errors(problems: Sequence[Problem]) -> list[Problem]:
    """The problems that refuse admission (warnings do not)."""
    return [p for p in problems if not p.warning]


def _own_namespace_rule(metadata: ObjectMeta | None) -> str:
    namespace = (metadata.namespace if metadata is not None else None) or ""
    where = f"namespace {namespace!r}" if namespace else "its own namespace"
    return f"a run reads only the secrets of {where}"


def callback_secret_problems(meta: ObjectMeta, secrets: SecretLookupSource) -> list[Problem]:
    """The callback's signing secret must be the run's namespace's own."""
    if not meta.annotations:
        return []  # no callback (its URL and secret are annotations)
    from analysisd.outbox import CALLBACK_SECRET, CALLBACK_URL, HMAC_KEY
    from analysisd.secrets import scoped

    name = meta.annotations.get(CALLBACK_SECRET)
    if not name or not meta.annotations.get(CALLBACK_URL):
        return []
    if scoped(secrets, meta.namespace).get(name, HMAC_KEY) is None:
        return [
            Problem(
                f'metadata.annotations["{CALLBACK_SECRET}"]',
                f'secret "{name}" with key "{HMAC_KEY}" not found; {_own_namespace_rule(meta)}',
            )
        ]
    return []


def _setup_problem(
    exc: RunSetupError, spec: AnalysisRunSpec, metadata: ObjectMeta | None
) -> Problem:
    field = _setup_field(exc)
    message = str(exc)
    if field == "spec.args" and ("secret" in message):
        # Say which argument, and the rule; the same words whether or not any other
        # namespace has a secret of that name.
        for index, arg in enumerate(spec.args or ()):
            ref = arg.value_from.secret_key_ref if arg.value_from is not None else None
            if ref is not None and (f'"{ref.name}"' in message or f"'{ref.name}'" in message):
                field = f"spec.args[{index}].valueFrom.secretKeyRef"
                break
        message = f"{message} ({_own_namespace_rule(metadata)})"
    return Problem(field, message)


def _setup_field(exc: RunSetupError) -> str:
    cause = exc.__cause__
    if isinstance(cause, SpecError) and cause.field:
        return f"spec.{cause.field}"
    if isinstance(cause, SpecError):
        return "spec.metrics"
    return "spec.args"

"""Arguments: merging, flattening templates, `{{args.x}}` substitution, secrets, redaction.

Follows Argo Rollouts (utils/analysis, utils/template, the analysis controller):

- Every `{{...}}` is a placeholder; whitespace inside is trimmed; only `args.<name>`
  tags resolve, anything else fails with "failed to resolve {{tag}}" (the last
  unresolved tag in the text is the one named, as in Argo).
- A metric is resolved by substituting into its JSON form with each value
  JSON-string-escaped, so quotes and newlines in a value stay inside the field.
- An argument without a value fails resolution even when nothing references it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analysisd import AnalysisdError
from analysisd.rules import check_unique_rules
from analysisd.secrets import SecretSource, all_forms, has_secret, scoped
from analysisd.spec import (
    AnalysisRunSpec,
    AnalysisTemplate,
    AnalysisTemplateSpec,
    Argument,
    ClusterAnalysisTemplate,
    DryRun,
    MeasurementRetention,
    Metric,
    ObjectMeta,
    TemplateRef,
)
from providers.gocompat import go_quote

REDACTED = "*****"
OPEN_TAG, CLOSE_TAG = "{{", "}}"


class ArgsError(AnalysisdError, ValueError):
    """An argument problem; str() is Argo's message."""


@dataclass(frozen=True)
class ResolvedMetrics:
    metrics: list[Metric]
    secret_values: frozenset[str]
    values: Mapping[str, str]


# ---- substitution ----


def substitute(template: str, values: Mapping[str, str]) -> str:
    """Replace `{{ args.x }}` tags from values ("args.x" -> text), as fasttemplate does."""
    out: list[str] = []
    unresolved: str | None = None
    pos = 0
    while True:
        start = template.find(OPEN_TAG, pos)
        if start < 0:
            out.append(template[pos:])
            break
        out.append(template[pos:start])
        end = template.find(CLOSE_TAG, start + len(OPEN_TAG))
        if end < 0:
            rest = template[start + len(OPEN_TAG) :]
            raise ArgsError(
                f"Cannot find end tag={go_quote(CLOSE_TAG)} in the template="
                f"{go_quote(template)} starting from {go_quote(rest)}"
            )
        tag = template[start + len(OPEN_TAG) : end]
        replacement = values.get(tag.strip())
        if replacement is None:
            unresolved = tag
        else:
            out.append(replacement)
        pos = end + len(CLOSE_TAG)
    if unresolved is not None:
        raise ArgsError(f"failed to resolve {{{{{unresolved}}}}}")
    return "".join(out)


def placeholders(template: str) -> list[str]:
    """The trimmed tags of every complete `{{...}}` in the text."""
    return [m.group(1).strip() for m in re.finditer(r"\{\{(.*?)\}\}", template, re.S)]


def _values(args: Sequence[Argument] | None, quoted: bool) -> dict[str, str]:
    values: dict[str, str] = {}
    for arg in args or ():
        if arg.value is None:
            raise ArgsError(f'argument "{arg.name}" was not supplied')
        values[f"args.{arg.name}"] = json.dumps(arg.value)[1:-1] if quoted else arg.value
    return values


def resolve_args(template: str, args: Sequence[Argument] | None) -> str:
    """Argo's ResolveArgs: substitute plain values into a text."""
    return substitute(template, _values(args, quoted=False))


def resolve_metric(metric: Metric, args: Sequence[Argument] | None) -> Metric:
    """Argo's ResolveMetricArgs: substitute JSON-escaped values into the metric's JSON."""
    return _resolve_quoted(metric, _values(args, quoted=True))


def _resolve_quoted(metric: Metric, quoted: Mapping[str, str]) -> Metric:
    text = json.dumps(metric.model_dump(mode="json", by_alias=True, exclude_none=True))
    if OPEN_TAG not in text:
        # Nothing to substitute: the metric itself (resolved metrics are never mutated,
        # and a copy per run of every metric is memory a daemon holding thousands of
        # runs does not need).
        return metric
    resolved = substitute(text, quoted)
    try:
        return Metric.model_validate(json.loads(resolved))
    except ValueError as exc:
        raise ArgsError(f"metric {metric.name!r}: resolved spec is invalid: {exc}") from exc


# ---- values from secrets and fields ----


def _secret_value(arg: Argument, secrets: SecretSource | None) -> str:
    assert arg.value_from is not None and arg.value_from.secret_key_ref is not None
    ref = arg.value_from.secret_key_ref
    value = secrets.get(ref.name, ref.key) if secrets is not None else None
    if value is not None:
        return value
    known = has_secret(secrets, ref.name) if secrets is not None else False
    # A source that cannot tell: an empty key can only mean the secret itself is missing.
    if known is False or (known is None and not ref.key):
        raise ArgsError(f'secrets "{ref.name}" not found')
    raise ArgsError(f"key '{ref.key}' does not exist in secret '{ref.name}'")


_PATH_TOKEN = re.compile(
    r"""\.?([A-Za-z0-9_-]+)|\[(\d+)\]|\[\s*'([^']*)'\s*\]|\[\s*"([^"]*)"\s*\]"""
)


def field_value(obj: Any, path: str) -> str:
    """A fieldRef path (`metadata.labels['app']`, `status.items[0].reason`) in a mapping."""
    current = obj
    pos = 0
    while pos < len(path):
        match = _PATH_TOKEN.match(path, pos)
        if match is None:
            raise ArgsError(f"fieldRef {path!r}: cannot parse at {path[pos:]!r}")
        name, index, quoted1, quoted2 = match.groups()
        key: str | int = int(index) if index is not None else (name or quoted1 or quoted2 or "")
        try:
            current = current[key]
        except (KeyError, IndexError, TypeError):
            raise ArgsError(f"fieldRef {path!r}: field not found") from None
        pos = match.end()
    if isinstance(current, Mapping | list) or current is None:
        raise ArgsError(f"fieldRef {path!r}: not a single value")
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


def resolve_values(
    args: Sequence[Argument] | None,
    secrets: SecretSource | None,
    meta: ObjectMeta | None = None,
) -> tuple[list[Argument], frozenset[str]]:
    """Arguments with secretKeyRef (and, given the run's metadata, fieldRef) filled in.

    Secrets are looked up in the run's namespace only (secrets.scoped); the values
    returned for redaction include each secret's escaped forms (secrets.secret_forms).
    """
    if secrets is not None:
        secrets = scoped(secrets, meta.namespace if meta is not None else None)
    out: list[Argument] = []
    secret_values: set[str] = set()
    meta_doc = {"metadata": meta.model_dump(mode="json", by_alias=True)} if meta else None
    for arg in args or ():
        source = arg.value_from
        if source is not None and source.secret_key_ref is not None:
            value = _secret_value(arg, secrets)
            secret_values.add(value)
            arg = arg.model_copy(update={"value": value})
        elif source is not None and source.field_ref is not None and meta_doc is not None:
            value = field_value(meta_doc, source.field_ref.field_path)
            arg = arg.model_copy(update={"value": value})
        out.append(arg)
    return out, all_forms(secret_values)


def resolve_metrics(
    spec: AnalysisRunSpec, secrets: SecretSource | None, *, meta: ObjectMeta | None = None
) -> ResolvedMetrics:
    """Every metric of a run with its arguments substituted (Argo's resolveArgs)."""
    args, secret_values = resolve_values(spec.args, secrets, meta)
    quoted = _values(args, quoted=True)  # once per run, not per metric
    metrics = [_resolve_quoted(metric, quoted) for metric in spec.metrics]
    values = {a.name: a.value for a in args if a.value is not None}
    return ResolvedMetrics(metrics, secret_values, values)


def redact(text: str, secret_values: Iterable[str]) -> str:
    """Every secret value in the text replaced by *****, longest first."""
    for secret in sorted((s for s in secret_values if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def rollout_arg_values(
    args: Sequence[Argument],
    *,
    stable_hash: str,
    latest_hash: str,
    rollout: Mapping[str, Any],
) -> dict[str, str]:
    """Argument values as the Rollout controller fills them (podTemplateHashValue, fieldRef)."""
    values: dict[str, str] = {}
    for arg in args:
        source = arg.value_from
        if arg.value is not None:
            values[arg.name] = arg.value
        elif source is not None and source.pod_template_hash_value is not None:
            which = source.pod_template_hash_value
            if which not in ("Stable", "Latest"):
                raise ArgsError(
                    f"args.{arg.name}: podTemplateHashValue {which!r} is not Stable or Latest"
                )
            values[arg.name] = stable_hash if which == "Stable" else latest_hash
        elif source is not None and source.field_ref is not None:
            values[arg.name] = field_value(rollout, source.field_ref.field_path)
    return values


# ---- merging and flattening (what a Rollout step does before creating a run) ----


def merge_args(
    incoming: Sequence[Argument] | None, template: Sequence[Argument] | None
) -> list[Argument] | None:
    """Argo's MergeArgs: incoming values override declared ones; undeclared ones are dropped."""
    if template is None:
        return None
    merged = [a.model_copy() for a in template]
    for arg in incoming or ():
        for i, declared in enumerate(merged):
            if declared.name != arg.name:
                continue
            if arg.value is not None:
                merged[i] = declared.model_copy(update={"value": arg.value})
            elif arg.value_from is not None:
                merged[i] = declared.model_copy(update={"value_from": arg.value_from})
    for arg in merged:
        if arg.value is None and arg.value_from is None:
            raise ArgsError(f"args.{arg.name} was not resolved")
    return merged


TemplateLike = AnalysisTemplateSpec | AnalysisTemplate | ClusterAnalysisTemplate


def _spec(template: TemplateLike) -> AnalysisTemplateSpec:
    return template if isinstance(template, AnalysisTemplateSpec) else template.spec


def _flatten_args(specs: Sequence[AnalysisTemplateSpec]) -> list[Argument]:
    combined: list[Argument] = []
    for spec in specs:
        for arg in spec.args:
            for i, previous in enumerate(combined):
                if previous.name != arg.name:
                    continue
                if previous.value is not None and arg.value not in (None, previous.value):
                    raise ArgsError(
                        f"Argument `{arg.name}` specified multiple times with different "
                        f"values: '{previous.value}', '{arg.value}'"
                    )
                if previous.value is None:
                    combined[i] = arg
                break
            else:
                combined.append(arg)
    return combined


def flatten_templates(
    templates: Sequence[TemplateLike], cluster_templates: Sequence[TemplateLike] = ()
) -> AnalysisTemplateSpec:
    """Argo's FlattenTemplates: namespaced templates first, then cluster templates."""
    specs = [_spec(t) for t in templates] + [_spec(t) for t in cluster_templates]
    metrics = [m for spec in specs for m in spec.metrics]
    names: set[str] = set()
    for metric in metrics:
        if metric.name in names:
            raise ArgsError(f"two metrics have the same name '{metric.name}'")
        names.add(metric.name)
    dry_run = [r for spec in specs for r in spec.dry_run]
    retention = [r for spec in specs for r in spec.measurement_retention]
    _check_rules(dry_run, retention)
    return AnalysisTemplateSpec(
        metrics=metrics,
        args=_flatten_args(specs),
        dryRun=dry_run,
        measurementRetention=retention,
    )


def _check_rules(dry_run: Sequence[DryRun], retention: Sequence[MeasurementRetention]) -> None:
    try:
        check_unique_rules(dry_run, retention)
    except AnalysisdError as exc:
        raise ArgsError(str(exc)) from None


def _unique_by_name(templates: Sequence[TemplateLike]) -> list[TemplateLike]:
    # Argo's FilterUniqueTemplates: the same template reached twice counts once.
    out: list[TemplateLike] = []
    seen: set[str] = set()
    for template in templates:
        name = "" if isinstance(template, AnalysisTemplateSpec) else template.metadata.name
        if name and name in seen:
            continue
        seen.add(name)
        out.append(template)
    return out


def build_run_spec(
    templates: Sequence[TemplateLike],
    cluster_templates: Sequence[TemplateLike],
    args: Sequence[Argument] | None,
    *,
    dry_run: Sequence[DryRun] = (),
    measurement_retention: Sequence[MeasurementRetention] = (),
) -> AnalysisRunSpec:
    """Argo's NewAnalysisRunFromTemplates: the spec of a run built from templates."""
    flat = flatten_templates(_unique_by_name(templates), _unique_by_name(cluster_templates))
    merged = merge_args(args, flat.args) or []
    rules_dry = [*dry_run, *flat.dry_run]
    rules_keep = [*measurement_retention, *flat.measurement_retention]
    _check_rules(rules_dry, rules_keep)
    return AnalysisRunSpec(
        metrics=flat.metrics,
        args=merged,
        dryRun=rules_dry,
        measurementRetention=rules_keep,
    )


def expand_template_refs(
    roots: Sequence[AnalysisTemplate | ClusterAnalysisTemplate],
    available: Iterable[Any],
) -> tuple[list[AnalysisTemplate], list[ClusterAnalysisTemplate]]:
    """The roots plus every template they reference, recursively (each once)."""
    pool = [d for d in available if isinstance(d, AnalysisTemplate | ClusterAnalysisTemplate)]
    templates: list[AnalysisTemplate] = []
    clusters: list[ClusterAnalysisTemplate] = []
    seen: set[tuple[str, str]] = set()
    pending: list[AnalysisTemplate | ClusterAnalysisTemplate | TemplateRef] = list(roots)
    while pending:
        item = pending.pop(0)
        if isinstance(item, TemplateRef):
            kind = ClusterAnalysisTemplate if item.cluster_scope else AnalysisTemplate
            found = [
                d for d in pool if isinstance(d, kind) and d.metadata.name == item.template_name
            ]
            if not found:
                raise ArgsError(f'{kind.__name__} "{item.template_name}" not found')
            item = found[0]
        key = (item.kind, item.metadata.name)
        if key in seen:
            continue
        seen.add(key)
        if isinstance(item, ClusterAnalysisTemplate):
            clusters.append(item)
        else:
            templates.append(item)
        pending.extend(item.spec.templates)
    return templates, clusters

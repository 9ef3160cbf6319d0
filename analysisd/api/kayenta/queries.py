"""Kayenta canary-config metric queries -> our providers' range queries (pure).

Each Kayenta metrics service builds its query from the metric's `query` block and one
side's scope (`scope`, `location`, `extendedScopeParams`); this module does what they
do, per side:

- templates (every type): `customInlineTemplate`, else `customFilterTemplate` (a name
  in the config's `templates`), expanded FreeMarker-style: `${name}` takes the scope's
  `scope`, `location`, `project`, `resourceType` (those the scope has), the query's
  own `project`/`resourceType`, then `extendedScopeParams`; an unknown name is an
  error naming it.
- prometheus (PrometheusMetricsService): an expanded template starting `PromQL:` is the
  whole query. Otherwise `avg(metricName{filters})` + ` by (groupByFields)`, where
  filters are the expanded custom filter's comma-separated parts followed by
  `labelBindings`; without a custom filter, `resourceType` `gce_instance` or
  `aws_ec2_instance` gives Kayenta's scope/zone filters, any other is an error.
- datadog (DatadogMetricsService): `metricName{scope[,tags]}`; `metricType: count`
  becomes `sum:...{...}.as_count()`. Kayenta's service reads no templates; here an
  inline template, expanded, is the whole query.
- cloudwatch (not in Kayenta; our convention): an inline template is the
  `metricDataQueries` JSON; otherwise `metricName` in `namespace` with `stat`
  (default Average), dimensions from the scope written `Name=Value,Name2=Value2`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_BASE_ATTRIBUTES = ("project", "resourceType", "scope", "location")


class QueryError(ValueError):
    """A metric's query cannot be built; the message names the metric and the reason."""


def _text(query: Mapping[str, Any], key: str, metric: str) -> str:
    """query[key] as a string ("" when absent); anything else is an error naming it."""
    value = query.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise QueryError(f"metric {metric!r}: query.{key}: expected a string, got {value!r}")
    return value


def _texts(query: Mapping[str, Any], key: str, metric: str) -> list[str]:
    """query[key] as a list of strings ([] when absent)."""
    value = query.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise QueryError(f"metric {metric!r}: query.{key}: expected a list of strings")
    return list(value)


@dataclass(frozen=True)
class Scope:
    """One side of a Kayenta scope pair (control or experiment)."""

    scope: str = ""
    location: str = ""
    extended: Mapping[str, str] = field(default_factory=dict)

    @property
    def project(self) -> str:
        return self.extended.get("project", "")

    @property
    def resource_type(self) -> str:
        return self.extended.get("resourceType", "")


def expand(template: str, bindings: Mapping[str, str], metric: str) -> str:
    """FreeMarker's `${name}` interpolation over string bindings (Kayenta escapes
    stored templates as `$\\{`, which it unescapes first)."""
    text = template.replace("$\\{", "${")

    def one(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name not in bindings:
            known = ", ".join(sorted(bindings)) or "none"
            raise QueryError(
                f"metric {metric!r}: problem evaluating custom filter template: "
                f"${{{name}}} is undefined (bound: {known})"
            )
        return bindings[name]

    return _PLACEHOLDER.sub(one, text)


def _bindings(query: Mapping[str, Any], scope: Scope) -> dict[str, str]:
    bindings: dict[str, str] = {}
    own = {
        "project": scope.project,
        "resourceType": scope.resource_type,
        "scope": scope.scope,
        "location": scope.location,
    }
    # Kayenta binds the scope's attributes that are set; scope and location always are
    # here (a request that leaves them out gives "").
    for name in _BASE_ATTRIBUTES:
        if own[name] or name in ("scope", "location"):
            bindings[name] = own[name]
    for name in ("project", "resourceType"):
        value = query.get(name)
        if isinstance(value, str) and value:
            bindings[name] = value
    bindings.update({str(k): str(v) for k, v in scope.extended.items()})
    return bindings


def custom_filter(
    config: Mapping[str, Any], query: Mapping[str, Any], scope: Scope, metric: str
) -> str | None:
    """QueryConfigUtils.expandCustomFilter: the expanded inline or named template, or None."""
    if query.get("customFilter") is not None:
        raise QueryError(
            f"metric {metric!r}: customFilter is deprecated, use customInlineTemplate instead"
        )
    inline = _text(query, "customInlineTemplate", metric)
    named = _text(query, "customFilterTemplate", metric)
    if inline:
        template = inline
    elif named:
        templates = config.get("templates") or {}
        if not isinstance(templates, Mapping):
            raise QueryError(f"metric {metric!r}: templates: expected name -> template text")
        if not templates:
            raise QueryError(
                f"metric {metric!r}: custom filter template {named!r} was referenced, "
                "but no templates were defined"
            )
        if named not in templates:
            raise QueryError(f"metric {metric!r}: custom filter template {named!r} was not found")
        if not isinstance(templates[named], str):
            raise QueryError(f"metric {metric!r}: templates.{named}: expected a string")
        template = templates[named]
    else:
        return None
    return expand(template, _bindings(query, scope), metric)


def prometheus_query(
    config: Mapping[str, Any], query: Mapping[str, Any], scope: Scope, metric: str
) -> str:
    expanded = custom_filter(config, query, scope, metric)
    if expanded and expanded.startswith("PromQL:"):
        return expanded[len("PromQL:") :]
    name = _text(query, "metricName", metric)
    if not name:
        raise QueryError(f"metric {metric!r}: a prometheus query needs metricName or PromQL:")
    filters = _texts(query, "labelBindings", metric)
    if expanded:
        filters = [*expanded.split(","), *filters]
    else:
        resource = _text(query, "resourceType", metric) or scope.resource_type
        if resource == "gce_instance":
            if not scope.location:
                raise QueryError(
                    f"metric {metric!r}: location (i.e. region) is required when "
                    "resourceType is 'gce_instance'"
                )
            if scope.scope:
                filters.append(f'instance=~"{scope.scope}-.{{4}}"')
            zone = ".+/" + (f"projects/{scope.project}/" if scope.project else "")
            filters.append(f'zone=~"{zone}zones/{scope.location}-.{{1}}"')
        elif resource == "aws_ec2_instance":
            if not scope.location:
                raise QueryError(
                    f"metric {metric!r}: location (i.e. region) is required when "
                    "resourceType is 'aws_ec2_instance'"
                )
            if scope.scope:
                filters.append(f'asg_groupName="{scope.scope}"')
            filters.append(f'zone=~"{scope.location}.{{1}}"')
        elif resource:
            raise QueryError(
                f"metric {metric!r}: there is no explicit support for resourceType "
                f"{resource!r}; build the query with label bindings and a custom filter template"
            )
        else:
            raise QueryError(
                f"metric {metric!r}: either a resource type or a custom filter is required"
            )
    text = str(name) + ("{" + ",".join(filters) + "}" if filters else "")
    text = f"avg({text})"
    group_by = _texts(query, "groupByFields", metric)
    if group_by:
        text += " by (" + ",".join(group_by) + ")"
    return text


def datadog_query(
    config: Mapping[str, Any], query: Mapping[str, Any], scope: Scope, metric: str
) -> str:
    inline = _text(query, "customInlineTemplate", metric)
    if inline:  # ours: Kayenta's datadog service reads no templates
        return expand(inline, _bindings(query, scope), metric)
    name = _text(query, "metricName", metric)
    if not name:
        raise QueryError(f"metric {metric!r}: a datadog query needs metricName")
    tags = ",".join([scope.scope, *_texts(query, "tags", metric)])
    gauge = f"{name}{{{tags}}}"
    if _text(query, "metricType", metric).upper() == "COUNT":
        return f"sum:{gauge}.as_count()"
    return gauge


def cloudwatch_query(
    config: Mapping[str, Any], query: Mapping[str, Any], scope: Scope, metric: str, step: int
) -> str:
    expanded = custom_filter(config, query, scope, metric)
    if expanded:
        return expanded
    name, namespace = _text(query, "metricName", metric), _text(query, "namespace", metric)
    if not name or not namespace:
        raise QueryError(
            f"metric {metric!r}: a cloudwatch query needs customInlineTemplate "
            "(metricDataQueries JSON) or metricName and namespace"
        )
    dimensions = []
    for part in filter(None, (p.strip() for p in scope.scope.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise QueryError(
                f"metric {metric!r}: a cloudwatch scope is Name=Value[,Name=Value], got {part!r}"
            )
        dimensions.append({"name": key.strip(), "value": value.strip()})
    return json.dumps(
        [
            {
                "id": "m",
                "metricStat": {
                    "metric": {
                        "namespace": namespace,
                        "metricName": name,
                        "dimensions": dimensions,
                    },
                    "period": max(1, step),
                    "stat": _text(query, "stat", metric) or "Average",
                },
            }
        ]
    )


def build_query(
    kind: str,
    config: Mapping[str, Any],
    metric: Mapping[str, Any],
    scope: Scope,
    step: int,
) -> str:
    """One side's range query for `metric` of a Kayenta canary config, for provider `kind`."""
    name = str(metric.get("name", ""))
    query = metric.get("query")
    if not isinstance(query, Mapping):
        raise QueryError(f"metric {name!r}: query: expected an object")
    declared = str(query.get("type") or query.get("serviceType") or kind)
    if declared.lower() != kind:
        raise QueryError(
            f"metric {name!r}: query type {declared!r} cannot be fetched from a {kind} account"
        )
    if kind == "prometheus":
        return prometheus_query(config, query, scope, name)
    if kind == "datadog":
        return datadog_query(config, query, scope, name)
    if kind == "cloudwatch":
        return cloudwatch_query(config, query, scope, name, step)
    raise QueryError(f"metric {name!r}: no {kind} metrics service")

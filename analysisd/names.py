"""Kubernetes object names: IsDNS1123Label (namespaces) and IsDNS1123Subdomain (names),
with the reason a name is refused, as the API, `analysisd lint` and admission say it."""

from __future__ import annotations

import re

__all__ = ["LABEL_MAX", "SUBDOMAIN_MAX", "name_problem", "namespace_problem"]

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL = re.compile(rf"^{_LABEL}$")
DNS1123_SUBDOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
LABEL_MAX = 63
SUBDOMAIN_MAX = 253


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:60] + "...")


def namespace_problem(namespace: str) -> str | None:
    """Why `namespace` is not a Kubernetes namespace name (a DNS-1123 label), or None."""
    if not namespace:
        return "required"
    if len(namespace) > LABEL_MAX:
        return f"must be no more than {LABEL_MAX} characters (got {len(namespace)})"
    if not DNS1123_LABEL.match(namespace):
        return (
            f"{_shown(namespace)} must be a lowercase RFC 1123 label "
            "(a-z, 0-9 and '-', starting and ending with a letter or digit)"
        )
    return None


def name_problem(name: str) -> str | None:
    """Why `name` is not a Kubernetes object name (a DNS-1123 subdomain), or None."""
    if not name:
        return "required"
    if len(name) > SUBDOMAIN_MAX:
        return f"must be no more than {SUBDOMAIN_MAX} characters (got {len(name)})"
    if not DNS1123_SUBDOMAIN.match(name):
        return (
            f"{_shown(name)} must be a lowercase RFC 1123 subdomain "
            "(a-z, 0-9, '-' and '.', starting and ending with a letter or digit)"
        )
    return None

"""Kubernetes label selectors (equality- and set-based subset): parse once, match many."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_SET = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


class SelectorError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: frozenset[str] = frozenset()


def _split(text: str) -> list[str]:
    # Commas inside "in (a, b)" do not separate requirements.
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def parse_selector(text: str) -> list[Requirement]:
    out = []
    for part in _split(text):
        match = _SET.match(part)
        if match:
            values = frozenset(v.strip() for v in match.group(3).split(",") if v.strip())
            out.append(Requirement(match.group(1), match.group(2), values))
        elif "!=" in part:
            key, value = part.split("!=", 1)
            out.append(Requirement(key.strip(), "!=", frozenset({value.strip()})))
        elif "=" in part:
            key, value = part.replace("==", "=").split("=", 1)
            out.append(Requirement(key.strip(), "=", frozenset({value.strip()})))
        elif part.startswith("!"):
            out.append(Requirement(part[1:].strip(), "!exists"))
        elif re.fullmatch(r"[A-Za-z0-9_./-]+", part):
            out.append(Requirement(part, "exists"))
        else:
            raise SelectorError(f"cannot parse {part!r}")
        if not out[-1].key:
            raise SelectorError(f"empty key in {part!r}")
    return out


def matches(selector: list[Requirement], labels: Mapping[str, str]) -> bool:
    for req in selector:
        value = labels.get(req.key)
        if req.op in ("=", "in") and value not in req.values:
            return False
        if req.op in ("!=", "notin") and value in req.values:
            return False
        if req.op == "exists" and value is None:
            return False
        if req.op == "!exists" and value is not None:
            return False
    return True

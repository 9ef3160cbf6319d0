"""Loading the conformance vectors and Argo's doc templates.

Both live in the repository (tests/data/vectors, tests/data/argo-templates), copied
from the shared reference folder by scripts/refresh-vectors.sh, so a fresh clone's
tests run. $ANALYSISD_VECTORS and $ANALYSISD_ARGO_TEMPLATES point at other folders
(same file names and formats, other cases) without changing any test.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"


def vectors_dir() -> Path:
    """The conformance vectors: $ANALYSISD_VECTORS, else the in-repository copy."""
    env = os.environ.get("ANALYSISD_VECTORS")
    if env:
        return Path(env)
    return DATA / "vectors"


def argo_templates_dir() -> Path:
    """Argo's documented templates: $ANALYSISD_ARGO_TEMPLATES, else the in-repository copy."""
    env = os.environ.get("ANALYSISD_ARGO_TEMPLATES")
    if env:
        return Path(env)
    return DATA / "argo-templates"


_FLOATS = {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf, "Inf": math.inf}


def _decode_argo(obj: dict[str, Any]) -> Any:
    if set(obj) == {"$float"}:
        return _FLOATS[obj["$float"]]
    return obj


def load_argo(name: str) -> Any:
    """An argo-*.json file with {"$float": "NaN"} decoded to floats."""
    with open(vectors_dir() / name, encoding="utf-8") as fh:
        return json.load(fh, object_hook=_decode_argo)


def load_plain(name: str) -> Any:
    """A kayenta-*/mannwhitney-* file as stored (NaN stays the string "NaN")."""
    with open(vectors_dir() / name, encoding="utf-8") as fh:
        return json.load(fh)


def case_id(file: str, section: str, case: dict[str, Any]) -> str:
    """pytest id: file (without .json), section and the case's id."""
    return f"{file.removesuffix('.json')}::{section}::{case.get('id', '?')}"

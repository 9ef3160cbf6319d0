"""A real peer a test needs (PostgreSQL, Prometheus, moto_server) is missing: skip or fail.

Locally a missing peer skips the test with the reason. Under CI (the environment
variable ``CI`` set, as `.ci/run` and CI services do) it fails instead: a suite whose
peers vanish must go red, not quietly smaller.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NoReturn

import pytest

_NOT_CI = frozenset({"", "0", "false", "no", "off"})


def in_ci(environ: Mapping[str, str] = os.environ) -> bool:
    """True when ``CI`` is set to anything but an explicit no (CI=true, CI=1, ...)."""
    return environ.get("CI", "").strip().lower() not in _NOT_CI


def peer_missing(reason: str) -> NoReturn:
    """Fail the test under CI, skip it otherwise; `reason` says which peer and why."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set: a missing peer fails the run)", pytrace=False)
    pytest.skip(reason)

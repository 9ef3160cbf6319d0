"""api.audit.audit: a line the logger would drop is not built; one it keeps is complete."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog
from structlog.testing import capture_logs

from analysisd.api import audit


@pytest.fixture
def restore_structlog() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.mark.usefixtures("restore_structlog")
@pytest.mark.parametrize("level,kept", [(logging.INFO, True), (logging.WARNING, False)])
def test_audit_line_follows_the_level(level: int, kept: bool) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))
    with capture_logs() as lines:
        audit.audit("create", "AnalysisRun", "team-a", "run-1")
    if not kept:
        assert lines == []
        return
    (line,) = lines
    assert line["event"] == "audit"
    assert (line["who"], line["action"], line["kind"], line["namespace"], line["name"]) == (
        audit.ANONYMOUS,
        "create",
        "AnalysisRun",
        "team-a",
        "run-1",
    )
    assert line["at"].endswith("Z") and "T" in line["at"]

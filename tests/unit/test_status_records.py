"""Status records share one fields-set per class; copying, dumping and comparing still work."""

from __future__ import annotations

from datetime import UTC, datetime

from analysisd.spec import AnalysisRunStatus, Measurement, MetricResult

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_measurements_share_one_fields_set_and_keep_their_values() -> None:
    a = Measurement(phase="Successful", startedAt=T0, finishedAt=T0, value="1")
    b = Measurement(phase="Failed", message="boom", value="0")
    # One set per class, not one per record (728 bytes each with five or more names).
    assert a.__pydantic_fields_set__ is b.__pydantic_fields_set__
    assert (a.phase, a.value, b.phase, b.message) == ("Successful", "1", "Failed", "boom")
    assert a.model_dump(by_alias=True, exclude_none=True, mode="json") == {
        "phase": "Successful",
        "message": "",
        "startedAt": "2026-01-01T00:00:00Z",
        "finishedAt": "2026-01-01T00:00:00Z",
        "value": "1",
        "metadata": {},
    }


def test_assignment_copy_and_equality_are_unaffected() -> None:
    result = MetricResult(name="m", phase="Running")
    result.count += 1
    result.phase = "Successful"
    copied = result.model_copy(update={"message": "done"}, deep=True)
    assert (copied.count, copied.phase, copied.message) == (1, "Successful", "done")
    assert result.message == ""  # the original is untouched
    assert MetricResult(name="m", phase="Running") == MetricResult(name="m", phase="Running")
    status = AnalysisRunStatus(metricResults=[result])
    again = AnalysisRunStatus.model_validate_json(status.model_dump_json(by_alias=True))
    assert again == status

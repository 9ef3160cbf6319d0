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


def test_trusted_measurements_equal_validated_ones_field_for_field() -> None:
    later = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    cases = [
        {"phase": "Running", "started_at": T0},
        {"phase": "Successful", "started_at": T0, "finished_at": later, "value": "1"},
        {"phase": "Error", "message": "web: 503", "started_at": T0, "finished_at": later},
        {"phase": "Failed", "value": '"down"', "metadata": {"analysisd.io/phase": "Failed"}},
    ]
    aliases = {"started_at": "startedAt", "finished_at": "finishedAt"}
    for case in cases:
        trusted = Measurement.trusted(**case)  # type: ignore[arg-type]
        validated = Measurement(**{aliases.get(k, k): v for k, v in case.items()})
        assert trusted == validated
        assert trusted.__dict__ == validated.__dict__
        assert list(trusted.__dict__) == list(Measurement.model_fields)
        assert trusted.__pydantic_fields_set__ is validated.__pydantic_fields_set__
        assert trusted.model_dump_json(by_alias=True) == validated.model_dump_json(by_alias=True)
        assert trusted.model_copy(deep=True) == validated
        assert Measurement.model_validate_json(trusted.model_dump_json(by_alias=True)) == trusted
    # Each gets its own metadata dict, as the default factory gives.
    first, second = Measurement.trusted("Running"), Measurement.trusted("Running")
    assert first.metadata is not second.metadata


def test_trusted_metric_results_equal_validated_ones_field_for_field() -> None:
    for dry in (False, True):
        trusted = MetricResult.trusted("m", "Running", dry_run=dry)
        validated = MetricResult(name="m", phase="Running", dryRun=dry)
        assert trusted == validated
        assert trusted.__dict__ == validated.__dict__
        assert list(trusted.__dict__) == list(MetricResult.model_fields)
        assert trusted.model_dump_json(by_alias=True) == validated.model_dump_json(by_alias=True)
        trusted.measurements.append(Measurement.trusted("Running"))
        trusted.count += 1
        assert MetricResult.model_validate_json(trusted.model_dump_json(by_alias=True)) == trusted
    a, b = MetricResult.trusted("a", "Running"), MetricResult.trusted("b", "Running")
    assert a.measurements is not b.measurements and a.metadata is not b.metadata

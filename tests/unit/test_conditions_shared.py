"""compile_conditions shares one Conditions (and its checker results) per pair of texts."""

from __future__ import annotations

from typing import Any

import pytest

from analysisd.engine.measure import NoSecrets, prepare_run
from analysisd.expr import compile_conditions, decide
from analysisd.expr import conditions as expr_conditions
from analysisd.spec import AnalysisRunSpec


def spec(success: str, failure: str = "") -> AnalysisRunSpec:
    metric: dict[str, Any] = {
        "name": "m",
        "interval": "5s",
        "provider": {"web": {"url": "http://127.0.0.1:1/x", "jsonPath": "{$.value}"}},
        "successCondition": success,
    }
    if failure:
        metric["failureCondition"] = failure
    return AnalysisRunSpec.model_validate({"metrics": [metric]})


def test_runs_with_the_same_condition_texts_run_the_checker_once_per_go_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked: list[tuple[str, Any]] = []
    real = expr_conditions.check_tree

    def counting(tree: Any, result_type: Any) -> None:
        checked.append((str(tree), result_type))
        real(tree, result_type)

    monkeypatch.setattr(expr_conditions, "check_tree", counting)
    # Nothing cached from earlier tests (or an earlier run of this one in the process).
    expr_conditions._shared_conditions.cache_clear()
    expr_conditions._compile_shared.cache_clear()
    success, failure = "result >= 0.25 + 0.5", "result < 0.125"
    runs = [prepare_run(spec(success, failure), NoSecrets()) for _ in range(3)]
    shared = runs[0].conditions["m"]
    assert all(run.conditions["m"] is shared for run in runs)
    verdicts = [
        run.conditions["m"].decide(value, "float64") for run in runs for value in (0.9, 0.5, 0.1)
    ]
    assert [v.phase for v in verdicts] == ["Successful", "Inconclusive", "Failed"] * 3
    assert len(checked) == 2  # success and failure, once for float64 across the three runs
    # Another Go type is checked once more, for every run at once.
    assert [run.conditions["m"].decide(1, "int").phase for run in runs] == ["Successful"] * 3
    assert len(checked) == 4
    # The same answers as deciding from the texts alone.
    for value, go_type in ((0.9, "float64"), (0.1, "float64"), (1, "int")):
        assert shared.decide(value, go_type) == decide(success, failure, value, go_type)


def test_different_texts_get_different_conditions() -> None:
    a = compile_conditions("result == 1", "")
    b = compile_conditions("result == 2", "")
    c = compile_conditions("result == 1", "result == 2")
    assert len({id(a), id(b), id(c)}) == 3
    assert a.decide(1.0, "float64").phase == "Successful"
    assert b.decide(1.0, "float64").phase == "Failed"  # no failureCondition: not success
    assert c.decide(2.0, "float64").phase == "Failed"


def test_a_condition_that_does_not_compile_is_not_shared_and_stays_an_error() -> None:
    first = compile_conditions("result >", "")
    second = compile_conditions("result >", "")
    assert first is not second
    assert [field for field, _ in first.errors] == ["successCondition"]
    verdict = first.decide(1.0, "float64")
    assert verdict.phase == "Error"
    assert verdict.message.startswith('could not evaluate successCondition "result >": ')
    assert verdict == decide("result >", "", 1.0, "float64")


@pytest.mark.parametrize(
    ("success", "failure", "field"),
    [
        ("result >", "", "successCondition"),  # does not compile
        ("len(result) > 0", "", "successCondition"),  # the checker refuses it for float64
        ("", "len(result) > 0", "failureCondition"),
    ],
)
def test_a_kept_error_is_reported_without_being_raised_again(
    success: str, failure: str, field: str
) -> None:
    # A kept error object raised per measurement would chain a traceback entry onto
    # itself each time (and a shared one would do so for every run).
    conditions = compile_conditions(success, failure)
    first = conditions.decide(1.0, "float64")
    kept = [
        program
        for pair in conditions._checked.values()
        for program in pair
        if isinstance(program, Exception)
    ]
    assert len(kept) == 1
    depth = traceback_depth(kept[0])
    verdicts = {conditions.decide(1.0, "float64") for _ in range(50)}
    assert verdicts == {first}
    assert first.phase == "Error"
    assert first.message.startswith(f"could not evaluate {field} ")
    assert first == decide(success, failure, 1.0, "float64")
    assert traceback_depth(kept[0]) == depth


def traceback_depth(error: BaseException) -> int:
    depth, tb = 0, error.__traceback__
    while tb is not None:
        depth, tb = depth + 1, tb.tb_next
    return depth


def _counting_checker(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    checked: list[Any] = []
    real = expr_conditions.check_tree

    def counting(tree: Any, result_type: Any) -> None:
        checked.append(result_type)
        real(tree, result_type)

    monkeypatch.setattr(expr_conditions, "check_tree", counting)
    expr_conditions._shared_conditions.cache_clear()
    expr_conditions._compile_shared.cache_clear()
    return checked


def test_float64_results_are_checked_when_the_run_is_prepared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked = _counting_checker(monkeypatch)
    run = prepare_run(spec("result >= 0.75", "result < 0.125"), NoSecrets())
    assert len(checked) == 2  # success and failure, for float64, before any reading
    conditions = run.conditions["m"]
    assert [conditions.decide(v, "float64").phase for v in (0.9, 0.5, 0.1)] == [
        "Successful",
        "Inconclusive",
        "Failed",
    ]
    assert len(checked) == 2  # the first float64 reading ran no checker
    assert conditions.decide(1, "int").phase == "Successful"
    assert len(checked) == 4  # another Go type is still checked at its first reading


def test_a_type_error_found_ahead_is_the_reading_s_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _counting_checker(monkeypatch)
    run = prepare_run(spec("len(result) > 0"), NoSecrets())
    verdict = run.conditions["m"].decide(1.0, "float64")
    assert verdict.phase == "Error"
    assert verdict == decide("len(result) > 0", "", 1.0, "float64")


def test_a_checker_failure_ahead_is_left_to_the_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    expr_conditions._shared_conditions.cache_clear()
    expr_conditions._compile_shared.cache_clear()

    def broken(tree: Any, result_type: Any) -> None:
        raise RuntimeError("checker bug")

    monkeypatch.setattr(expr_conditions, "check_tree", broken)
    run = prepare_run(spec("result > 0"), NoSecrets())  # preparing does not fail on it
    with pytest.raises(RuntimeError, match="checker bug"):
        run.conditions["m"].decide(1.0, "float64")  # the reading does, as before


def test_a_float_reading_that_names_no_go_type_uses_the_entry_checked_ahead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked = _counting_checker(monkeypatch)
    run = prepare_run(spec("result >= 0.75", "result < 0.125"), NoSecrets())
    assert len(checked) == 2
    conditions = run.conditions["m"]
    # A provider that names no type: a Python float is inferred as float64, the same type.
    assert [conditions.decide(v).phase for v in (0.9, 0.5, 0.1)] == [
        "Successful",
        "Inconclusive",
        "Failed",
    ]
    assert len(checked) == 2


def test_readings_of_alternating_go_types_each_get_their_own_verdict() -> None:
    expr_conditions._shared_conditions.cache_clear()
    expr_conditions._compile_shared.cache_clear()
    conditions = prepare_run(spec("result >= 0.75"), NoSecrets()).conditions["m"]
    readings: list[tuple[Any, str]] = [
        (0.9, "float64"),
        ("0.9", "string"),
        (0.5, "float64"),
        ([0.9], "[]float64"),
        (0.9, ""),
        ("0.9", ""),
        (1, "int"),
    ]
    # The same verdict as compiling afresh for each reading, whatever type came before.
    for _ in range(2):
        for result, go_type in readings:
            verdict = conditions.decide(result, go_type)
            assert verdict == decide("result >= 0.75", "", result, go_type), (result, go_type)
    assert conditions.decide("0.9", "string").phase == "Error"
    assert conditions.decide(0.9, "float64").phase == "Successful"

"""Argo's measurement verdict from successCondition / failureCondition, and the value string."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from analysisd.expr.checker import check_tree
from analysisd.expr.compiler import Program, compile_expr, compile_expr_uncached
from analysisd.expr.errors import ExprError, ExprEvalError, ExprTypeError
from analysisd.expr.go_types import go_type_key, type_of_go_name
from analysisd.expr.values import go_type, is_array
from providers.gocompat import format_f, format_float, json_marshal

Phase = Literal["Successful", "Failed", "Inconclusive", "Error"]


@dataclass(frozen=True, slots=True)
class MeasurementVerdict:
    phase: Phase
    message: str = ""


def evaluate_condition(program: Program, result: Any) -> bool:
    """Evaluate against ``result``; a non-bool outcome is an error, as in Argo."""
    outcome = program.evaluate({"result": result})
    if outcome is True or outcome is False:
        return outcome
    raise ExprEvalError(f"expected bool, but got {go_type(outcome)}")


def result_type(result: Any, go_type: str = "") -> Any:
    """The checker's type of ``result``: the Go type the provider named, else inferred."""
    return type_of_go_name(go_type) if go_type else go_type_key(result)


def check(program: Program, result: Any, go_type: str = "") -> None:
    """Type-check ``program`` against the Go type of ``result`` (``go_type`` when the provider
    named it), as Argo's expr.Compile does (ExprTypeError); cached per (program, Go type)."""
    failure = _checked(program, result_type(result, go_type))
    if failure is not None:
        raise failure


@lru_cache(maxsize=4096)
def _checked(program: Program, result_type: Any) -> ExprTypeError | None:
    try:
        check_tree(program.tree, result_type)
    except ExprTypeError as exc:
        return exc
    return None


def _nil_or_empty(result: Any) -> bool:
    return result is None or (is_array(result) and len(result) == 0)


def _explain(result: Any, which: str, condition: str, error: ExprError) -> str:
    # Argo's formatEvalError: with no data the cause is the data, not the expression.
    if _nil_or_empty(result):
        return (
            f'could not evaluate {which} "{condition}": metric result is nil or empty: '
            "no data returned from the metric provider"
        )
    return f'could not evaluate {which} "{condition}": {error}'


# The verdicts without a message, made once: decide runs for every measurement.
_SUCCESSFUL = MeasurementVerdict("Successful")
_FAILED = MeasurementVerdict("Failed")
_INCONCLUSIVE = MeasurementVerdict("Inconclusive")


def _compiled(source: str) -> Program | ExprError | None:
    if not source:
        return None
    try:
        return _compile_shared(source)
    except ExprError as exc:
        return exc


@lru_cache(maxsize=4096)
def _compile_shared(source: str) -> Program:
    """Compile once per text across runs (a template's conditions repeat in every run made
    from it; a Program is immutable, and each Conditions keeps its own checker results).
    Errors are not kept: each run gets its own."""
    return compile_expr_uncached(source)


class Conditions:
    """A metric's successCondition and failureCondition, compiled once (when its run is
    prepared); `decide` is Argo's EvaluateResult for one reading. A condition that does
    not compile is kept as its error: every measurement of it is an Error, as in Argo.
    """

    __slots__ = (
        "_checked",
        "_last_failure",
        "_last_key",
        "_last_success",
        "failure",
        "failure_source",
        "success",
        "success_source",
    )

    def __init__(self, success_condition: str, failure_condition: str) -> None:
        self._set(
            success_condition,
            failure_condition,
            _compiled(success_condition),
            _compiled(failure_condition),
        )

    def _set(
        self,
        success_condition: str,
        failure_condition: str,
        success: Program | ExprError | None,
        failure: Program | ExprError | None,
    ) -> None:
        self.success_source = success_condition
        self.failure_source = failure_condition
        self.success = success
        self.failure = failure
        # Go type of the result -> (success, failure) after the checker: the checker runs
        # once per type for the life of this object (shared by every run with the same
        # condition texts, see compile_conditions), as Argo's compile does per measurement.
        self._checked: dict[Any, tuple[Program | ExprError | None, Program | ExprError | None]]
        self._checked = {}
        # The last type's entry, held in this object itself: a metric's readings are
        # nearly always of one type, and `decide` then touches no dict or tuple (with
        # thousands of distinct conditions, each object touched is a likely cache miss).
        # Written by `decide` only, which runs on the event loop's thread.
        self._last_key: Any = None
        self._last_success: Program | ExprError | None = None
        self._last_failure: Program | ExprError | None = None

    @classmethod
    def _of(
        cls,
        success_condition: str,
        failure_condition: str,
        success: Program | ExprError | None,
        failure: Program | ExprError | None,
    ) -> Conditions:
        conditions = cls.__new__(cls)
        conditions._set(success_condition, failure_condition, success, failure)
        return conditions

    def _for_type(
        self, result: Any, go_type: str
    ) -> tuple[Program | ExprError | None, Program | ExprError | None]:
        # Keyed by the provider's Go type name as given (no parsing on the hot path), else
        # by the type inferred from the value; names and inferred keys that coincide
        # ("bool", "int", "string") stand for the same type.
        key = go_type or go_type_key(result)
        pair = self._checked.get(key)
        if pair is None:
            kind = type_of_go_name(go_type) if go_type else key
            pair = (_typed(self.success, kind), _typed(self.failure, kind))
            self._checked[key] = pair
        return pair

    def check_ahead(self, go_type: str) -> None:
        """Run the checker for results of `go_type` now, when the run is prepared, instead
        of at the first reading of that type (about 4 us per condition pair): the same
        entry the reading would make. Anything the checker raises beyond its type errors
        is left for that reading to raise, as an Error measurement."""
        if go_type not in self._checked:
            with contextlib.suppress(Exception):
                self._for_type(None, go_type)
        # A reading that names no Go type is keyed by the type inferred from its value
        # ("float" for a Python float): the same type, so the same entry.
        pair = self._checked.get(go_type)
        if pair is not None:
            self._checked.setdefault(type_of_go_name(go_type), pair)

    @property
    def errors(self) -> list[tuple[str, ExprError]]:
        """(field, error) of each condition that does not compile."""
        found: list[tuple[str, ExprError]] = []
        if isinstance(self.success, ExprError):
            found.append(("successCondition", self.success))
        if isinstance(self.failure, ExprError):
            found.append(("failureCondition", self.failure))
        return found

    def decide(self, result: Any, go_type: str = "") -> MeasurementVerdict:
        """Argo's EvaluateResult for one reading; ``go_type`` is ``Reading.go_type``."""
        key = go_type or go_type_key(result)
        if key == self._last_key:
            success, failure = self._last_success, self._last_failure
        else:
            success, failure = self._for_type(result, go_type)
            self._last_key, self._last_success, self._last_failure = key, success, failure
        return _decide(self.success_source, success, self.failure_source, failure, result)


def _typed(program: Program | ExprError | None, result_type: Any) -> Program | ExprError | None:
    """The program, or the checker's error for this result type."""
    if not isinstance(program, Program):
        return program
    try:
        check_tree(program.tree, result_type)
    except ExprTypeError as exc:
        return exc
    return program


def compile_conditions(success_condition: str, failure_condition: str) -> Conditions:
    """A metric's Conditions: one shared object per pair of compiled programs.

    Runs made from one template repeat the same condition texts; sharing their
    Conditions (and with it the checker's results per Go type) means the checker runs
    once per (texts, Go type) in the process, not once per run. Immutable apart from
    that cache, whose entries depend only on the programs and the type. A condition
    that does not compile gets an object of its own (its error is not kept).
    """
    success = _compiled(success_condition)
    failure = _compiled(failure_condition)
    if isinstance(success, ExprError) or isinstance(failure, ExprError):
        return Conditions._of(success_condition, failure_condition, success, failure)
    return _shared_conditions(success_condition, failure_condition, success, failure)


@lru_cache(maxsize=4096)
def _shared_conditions(
    success_condition: str,
    failure_condition: str,
    success: Program | None,
    failure: Program | None,
) -> Conditions:
    # Keyed by the programs too (identity): texts compiled anew (after _compile_shared's
    # LRU let them go) get a Conditions of their own.
    return Conditions._of(success_condition, failure_condition, success, failure)


def decide(
    success_condition: str, failure_condition: str, result: Any, go_type: str = ""
) -> MeasurementVerdict:
    """Argo's EvaluateResult: failure wins, neither is Inconclusive, no conditions succeed.

    Compiles both conditions (through a small cache); the engine compiles once per run
    instead (Conditions). ``go_type`` names the result's Go type; "" infers it.
    """
    key = result_type(result, go_type)
    return _decide(
        success_condition,
        _cached_typed(success_condition, key),
        failure_condition,
        _cached_typed(failure_condition, key),
        result,
    )


@lru_cache(maxsize=4096)
def _cached_typed(source: str, result_type: Any) -> Program | ExprError | None:
    return _typed(_cached(source), result_type)


def _cached(source: str) -> Program | ExprError | None:
    if not source:
        return None
    try:
        return compile_expr(source)
    except ExprError as exc:
        return exc


def _decide(
    success_condition: str,
    success_program: Program | ExprError | None,
    failure_condition: str,
    failure_program: Program | ExprError | None,
    result: Any,
) -> MeasurementVerdict:
    success: bool | None = None
    failure: bool | None = None
    # A kept error (compile or checker) is reported, never raised: raising one object
    # again and again would chain a traceback entry onto it per measurement.
    if success_program is not None:
        if isinstance(success_program, ExprError):
            return MeasurementVerdict(
                "Error", _explain(result, "successCondition", success_condition, success_program)
            )
        try:
            success = evaluate_condition(success_program, result)
        except ExprError as exc:
            return MeasurementVerdict(
                "Error", _explain(result, "successCondition", success_condition, exc)
            )
    if failure_program is not None:
        if isinstance(failure_program, ExprError):
            return MeasurementVerdict(
                "Error", _explain(result, "failureCondition", failure_condition, failure_program)
            )
        try:
            failure = evaluate_condition(failure_program, result)
        except ExprError as exc:
            return MeasurementVerdict(
                "Error", _explain(result, "failureCondition", failure_condition, exc)
            )
    if success is None:
        if failure is None:
            return _SUCCESSFUL  # no conditions
        success = not failure
    if failure is None:
        failure = not success
    if failure:
        return _FAILED
    if not success:
        return _INCONCLUSIVE
    return _SUCCESSFUL


def _plain_float(value: float) -> str:
    # Prometheus prints sample values with strconv 'f', -1: shortest digits, no exponent.
    return format_f(value)


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _plain_float(value)
    return None


def _go_json(value: Any) -> str:
    """Go's encoding/json text; what Go would refuse (NaN) is printed readably instead."""
    return json_marshal(value, strict=False)


def _go_v(value: Any) -> str:
    """fmt %v of nested float slices (the CloudWatch value shape)."""
    if is_array(value):
        return "[" + " ".join(_go_v(item) for item in value) + "]"
    if isinstance(value, float):
        return format_float(value)
    return _scalar(value) or str(value)


def _looks_like_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def format_value(result: Any) -> str:
    """The measurement's ``value`` string, in the shape Argo's providers print.

    nil -> "[]" (Datadog's empty series); numbers -> Prometheus' plain format; a list of
    numbers -> "[a,b]"; a list of CloudWatch results -> "[[v v]]"; maps and lists of
    anything else -> Go JSON; strings verbatim, except a string that is itself valid JSON
    (it can only have come from a JSON string body) which is printed JSON-quoted.
    """
    if result is None:
        return "[]"
    scalar = _scalar(result)
    if scalar is not None:
        return scalar
    if isinstance(result, str):
        return _go_json(result) if _looks_like_json(result) else result
    if is_array(result):
        if all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in result):
            return "[" + ",".join(_scalar(item) or "" for item in result) + "]"
        if result and all(isinstance(item, Mapping) and "Values" in item for item in result):
            return _go_v([item["Values"] for item in result])
    return _go_json(result)

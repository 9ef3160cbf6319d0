"""Condition evaluation speed: compiled `result[0] >= 0.95 && result[0] < 1` vs a Python lambda.

Run: python bench/bench_expr.py [iterations]. Prints both timings and the ratio (target <= 10x).
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from typing import Any

from analysisd.expr import compile_conditions, compile_expr, evaluate_condition
from analysisd.expr.checker import check_tree
from analysisd.expr.go_types import go_type_key

SOURCE = "result[0] >= 0.95 && result[0] < 1"
REPEATS = 9
RESULTS: list[list[float]] = [[0.97], [0.5], [1.0], [0.95]]


def best_of(repeats: int, candidates: list[Callable[[], None]]) -> list[float]:
    """Best time of each candidate; rounds interleave them so load on a shared machine
    hits every candidate alike instead of skewing the ratio."""
    best = [float("inf")] * len(candidates)
    for _ in range(repeats):
        for position, fn in enumerate(candidates):
            start = time.perf_counter()
            fn()
            best[position] = min(best[position], time.perf_counter() - start)
    return best


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    program = compile_expr(SOURCE)
    baseline: Callable[[Any], bool] = lambda result: result[0] >= 0.95 and result[0] < 1  # noqa: E731
    envs = [{"result": result} for result in RESULTS]
    for env in envs:  # both sides agree before we time them
        assert program.evaluate(env) == baseline(env["result"])

    def run_lambda() -> None:
        for i in range(iterations):
            baseline(envs[i & 3]["result"])

    def run_program() -> None:
        evaluate = program.evaluate
        for i in range(iterations):
            evaluate(envs[i & 3])

    def run_condition() -> None:
        for i in range(iterations):
            evaluate_condition(program, RESULTS[i & 3])

    conditions = compile_conditions(SOURCE, "")

    def run_conditions() -> None:
        decide = conditions.decide
        for i in range(iterations):
            decide(RESULTS[i & 3])

    def run_conditions_typed() -> None:
        # as the engine calls it: the provider names the Go type (Reading.go_type)
        decide = conditions.decide
        for i in range(iterations):
            decide(RESULTS[i & 3], "[]float64")

    def run_compile_cached() -> None:
        for _ in range(iterations):
            compile_expr(SOURCE)

    lam, prog, cond, verdict, typed, cached = best_of(
        REPEATS,
        [
            run_lambda,
            run_program,
            run_condition,
            run_conditions,
            run_conditions_typed,
            run_compile_cached,
        ],
    )
    # The checker runs once per (condition, Go type of the result) and is then cached in
    # Conditions: its cost, paid once, timed here without the cache.
    checks = 2_000
    result_type = go_type_key(RESULTS[0])
    start = time.perf_counter()
    for _ in range(checks):
        check_tree(program.tree, result_type)
    checker = (time.perf_counter() - start) / checks
    start = time.perf_counter()
    compile_expr.cache_clear()
    compile_expr(SOURCE)
    cold = time.perf_counter() - start

    print(
        f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    print(f"iterations: {iterations} (best of {REPEATS}, interleaved)")
    print(f"python lambda:      {lam * 1e9 / iterations:8.0f} ns/eval")
    print(f"Program.evaluate:   {prog * 1e9 / iterations:8.0f} ns/eval  ratio {prog / lam:5.2f}x")
    print(f"evaluate_condition: {cond * 1e9 / iterations:8.0f} ns/eval  ratio {cond / lam:5.2f}x")
    print(
        f"Conditions.decide:  {verdict * 1e9 / iterations:8.0f} ns/eval  ratio "
        f"{verdict / lam:5.2f}x (verdict, checker outcome cached per Go type)"
    )
    print(
        f"Conditions.decide, go_type given: {typed * 1e9 / iterations:8.0f} ns/eval  ratio "
        f"{typed / lam:5.2f}x (as the engine calls it with Reading.go_type)"
    )
    print(f"checker, once per (condition, type): {checker * 1e6:8.1f} us")
    print(f"compile_expr cached: {cached * 1e9 / iterations:8.0f} ns/call")
    print(f"compile_expr cold:   {cold * 1e3:8.2f} ms (lex + parse + compile)")


if __name__ == "__main__":
    main()

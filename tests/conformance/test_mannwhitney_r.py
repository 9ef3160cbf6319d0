"""Every case of vectors/mannwhitney-r.json: R's interval, Kayenta's estimate, labels."""

from __future__ import annotations

from typing import Any

import pytest

from analysisd.judge.classifier import classify
from analysisd.judge.errors import MannWhitneyError
from analysisd.judge.mannwhitney import WilcoxonDiff, mann_whitney, p_value
from tests.conformance.test_kayenta_judge import tolerances, within
from tests.vectors import case_id, load_plain

FILE = "mannwhitney-r.json"
VECTORS = load_plain(FILE)
META = VECTORS.get("meta", {})


def near(case: dict[str, Any], key: str, actual: float | None, expected: Any) -> bool:
    """Within the case's abs_tol/rel_tol, else meta.tolerances (ci and estimate: abs 1e-9)."""
    return within(actual, expected, *tolerances(case, key, META, 1e-9))


def cases() -> list[Any]:
    return [pytest.param(c, id=case_id(FILE, "cases", c)) for c in VECTORS["cases"]]


def num(value: Any) -> float:
    return float(value) if not isinstance(value, str) else float(value.replace("Inf", "inf"))


def sample(case: dict[str, Any], key: str) -> list[float]:
    return [num(v) for v in case["inputs"][key]]


@pytest.mark.parametrize("case", cases())
def test_interval_and_estimate_match_kayenta_variant(case: dict[str, Any]) -> None:
    x, y = sample(case, "x_experiment"), sample(case, "y_control")
    conf = case["inputs"]["conf_level"]
    target = case["r"]["kayenta_variant"]
    if "error" in target:
        with pytest.raises(MannWhitneyError) as err:
            mann_whitney(x, y, conf)
        assert target["error"] in str(err.value)
        return
    result = mann_whitney(x, y, conf)
    assert near(case, "ci", result.lower, target["conf_int"][0])
    assert near(case, "ci", result.upper, target["conf_int"][1])
    assert near(case, "estimate", result.estimate, target["estimate"])


@pytest.mark.parametrize("case", cases())
def test_p_value_matches_r_normal_approximation(case: dict[str, Any]) -> None:
    r = case["r"]["normal_approx_correct"]
    if "p_value" not in r:
        assert "error" in r, "a case without an R p-value must record R's error"
        return
    w = WilcoxonDiff(sample(case, "x_experiment"), sample(case, "y_control"))
    abs_tol, rel_tol = tolerances(case, "p_value", META, 0.0)
    assert within(p_value(w), r["p_value"], abs_tol, rel_tol or 1e-10)


@pytest.mark.parametrize("case", cases())
def test_default_judge_label(case: dict[str, Any]) -> None:
    expected = case.get("kayenta_judge_default_label")
    if not expected:
        pytest.fail("case has no kayenta_judge_default_label")
    result = classify(sample(case, "y_control"), sample(case, "x_experiment"))
    assert result.classification == expected["classification"]
    if "stage" in expected:
        assert result.stage == expected["stage"]
    if expected.get("noise_added"):
        assert result.noise_added
        return
    if "ci_0.98" in expected:
        assert near(case, "ci", result.ci_lower, expected["ci_0.98"][0])
        assert near(case, "ci", result.ci_upper, expected["ci_0.98"][1])
    if "estimate" in expected:
        assert near(case, "estimate", result.estimate, expected["estimate"])
    if "bound" in expected:
        assert near(case, "estimate", result.upper_bound, expected["bound"])

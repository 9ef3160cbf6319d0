"""Every case of vectors/mannwhitney-r.json: R's interval, Kayenta's estimate, labels."""

from __future__ import annotations

import math
from typing import Any

import pytest

from analysisd.judge.classifier import classify
from analysisd.judge.errors import MannWhitneyError
from analysisd.judge.mannwhitney import WilcoxonDiff, mann_whitney, p_value
from tests.vectors import case_id, load_plain

FILE = "mannwhitney-r.json"
VECTORS = load_plain(FILE)
CI_TOL = 1e-9  # meta.tolerances.ci: "use abs 1e-9"
ESTIMATE_TOL = 1e-9  # meta.tolerances.estimate: "kayenta_variant: abs 1e-9"
P_REL_TOL = 1e-10  # meta.tolerances.p_value: "rel 1e-10"


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
    assert result.lower == pytest.approx(target["conf_int"][0], abs=CI_TOL, rel=0)
    assert result.upper == pytest.approx(target["conf_int"][1], abs=CI_TOL, rel=0)
    assert result.estimate == pytest.approx(target["estimate"], abs=ESTIMATE_TOL, rel=0)


@pytest.mark.parametrize("case", cases())
def test_p_value_matches_r_normal_approximation(case: dict[str, Any]) -> None:
    r = case["r"]["normal_approx_correct"]
    if "p_value" not in r:
        assert "error" in r, "a case without an R p-value must record R's error"
        return
    w = WilcoxonDiff(sample(case, "x_experiment"), sample(case, "y_control"))
    assert math.isclose(p_value(w), r["p_value"], rel_tol=P_REL_TOL)


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
        assert result.ci_lower == pytest.approx(expected["ci_0.98"][0], abs=CI_TOL, rel=0)
        assert result.ci_upper == pytest.approx(expected["ci_0.98"][1], abs=CI_TOL, rel=0)
    if "estimate" in expected:
        assert result.estimate == pytest.approx(expected["estimate"], abs=ESTIMATE_TOL, rel=0)
    if "bound" in expected:
        assert result.upper_bound == pytest.approx(expected["bound"], abs=ESTIMATE_TOL, rel=0)

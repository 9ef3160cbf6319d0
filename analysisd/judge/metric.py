"""A judgement as a judge metric's measurement sees it (pure).

engine/judging.py fetches the series and runs the judge; this module turns the
result into what the engine records: the verdict without conditions
(`verdict_for_score`, Argo's Kayenta mapping) and the metadata a person reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from analysisd.judge.explain import fmt
from analysisd.judge.judge import JudgeResult
from analysisd.judge.kayenta_result import kayenta_judge_result

SUCCESSFUL, INCONCLUSIVE, FAILED = "Successful", "Inconclusive", "Failed"


def verdict_for_score(result: Mapping[str, Any]) -> str:
    """A judge result without conditions -> measurement phase: >= pass Successful,
    >= marginal Inconclusive, else Failed (Argo's kayenta provider)."""
    score = float(result["score"])
    if score >= float(result["pass"]):
        return SUCCESSFUL
    if score >= float(result["marginal"]):
        return INCONCLUSIVE
    return FAILED


def judgement_metadata(result: JudgeResult) -> dict[str, str]:
    """The judgement as a measurement's metadata.

    Flat text a person reads as is (in `analysisd run`, the REST
    API and the dashboard): per metric `<name>.why`, `.baseline`, `.canary`,
    `.interval`, `.effect`, `.direction` and `.classification`.
    """
    metadata = {
        "score": f"{result.score:g}",
        "classification": result.classification.value,
        "pass": f"{result.pass_threshold:g}",
        "marginal": f"{result.marginal_threshold:g}",
    }
    for metric in result.metrics:
        e = metric.explanation
        interval = "-"
        if e.interval is not None:
            interval = f"[{fmt(e.interval[0])}, {fmt(e.interval[1])}] at {e.conf_level * 100:g}%"
        label = metric.classification.value + (", critical" if metric.outcome.critical else "")
        metadata.update(
            {
                f"{metric.name}.classification": label,
                f"{metric.name}.why": e.why,
                f"{metric.name}.baseline": e.baseline.text(),
                f"{metric.name}.canary": e.canary.text(),
                f"{metric.name}.interval": interval,
                f"{metric.name}.effect": e.effect.text(),
                f"{metric.name}.direction": e.direction.value,
            }
        )
    if result.reason:
        metadata["reason"] = result.reason
    # The whole judgement in Kayenta's shape, for the Kayenta API and the pages.
    metadata["judgeResult"] = json.dumps(
        kayenta_judge_result(result.as_dict()), separators=(",", ":")
    )
    if result.warnings:
        metadata["warnings"] = "; ".join(result.warnings)
    return metadata

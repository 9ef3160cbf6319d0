"""A judgement in Kayenta's own shape (`CanaryJudgeResult`), for Kayenta's clients (pure).

NetflixACAJudge answers `{judgeName, results[], groupScores[], score}`: per metric
`{name, id, tags, classification, classificationReason, groups, experimentMetadata,
controlMetadata, resultMetadata, critical, muted}` with each side's summary
statistics under `stats` and the mean ratio under `resultMetadata.ratio`; per group
`{name, score, classification, classificationReason}` (the judge leaves the group's
classification empty); the summary `{score, classification, classificationReason}`.
Our explanation of each metric rides along under `explanation`, which Kayenta's
clients ignore.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

JUDGE_NAME = "NetflixACAJudge-v1.0"
_STAT_KEYS = ("count", "mean", "min", "max", "median")


def _stats(stats: Mapping[str, Any] | None) -> dict[str, Any]:
    stats = stats or {}
    return {"stats": {key: stats.get(key) for key in _STAT_KEYS if key in stats}}


def kayenta_judge_result(result: Mapping[str, Any]) -> dict[str, Any]:
    """`result` is JudgeResult.as_dict() (what conditions see); the answer is Kayenta's."""
    metrics: list[dict[str, Any]] = []
    for name, metric in (result.get("metrics") or {}).items():
        explanation = {
            key: metric.get(key)
            for key in ("why", "baseline", "canary", "effect", "direction", "confLevel")
            if key in metric
        }
        explanation["interval"] = metric.get("interval")
        metrics.append(
            {
                "name": name,
                "id": name,
                "tags": {},
                "classification": metric.get("classification"),
                "classificationReason": metric.get("reason") or "",
                "groups": list(metric.get("groups") or []),
                "experimentMetadata": _stats(metric.get("canaryStats")),
                "controlMetadata": _stats(metric.get("baselineStats")),
                "resultMetadata": {"ratio": metric.get("deviation")},
                "critical": bool(metric.get("critical")),
                "muted": bool(metric.get("muted")),
                "explanation": explanation,
            }
        )
    groups = [
        {"name": name, "score": score, "classification": "", "classificationReason": ""}
        for name, score in (result.get("groups") or {}).items()
    ]
    return {
        "judgeName": JUDGE_NAME,
        "results": metrics,
        "groupScores": groups,
        "score": {
            "score": result.get("score"),
            "classification": result.get("classification"),
            "classificationReason": result.get("reason") or "",
        },
    }

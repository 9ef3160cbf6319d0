"""The judge block's fixed windows (start/end), the baseline offset, and the judgement
kept in Kayenta's shape in the measurement's metadata."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from analysisd.engine.judge_block import parse_judge_block
from analysisd.engine.judging import JudgeMetric
from analysisd.judge.errors import ConfigError
from tests.unit.test_judge_metric import NOW, STABLE, block, source_with

START = "2026-11-29T01:00:00Z"
END = "2026-11-29T02:00:00+00:00"


def fixed(**overrides: Any) -> dict[str, Any]:
    base = block(start=START, end=END)
    del base["lookback"]
    base.update(overrides)
    return base


async def test_a_fixed_window_is_fetched_whatever_the_clock() -> None:
    source = source_with(STABLE)
    await JudgeMetric(source, clock=lambda: NOW).measure(fixed())
    windows = {(call[3], call[4]) for call in source.calls}
    assert windows == {
        (datetime(2026, 11, 29, 1, tzinfo=UTC), datetime(2026, 11, 29, 2, tzinfo=UTC))
    }


async def test_start_alone_grows_to_the_measurement_time() -> None:
    source = source_with(STABLE)
    spec = fixed()
    del spec["end"]
    await JudgeMetric(source, clock=lambda: NOW).measure(spec)
    assert {(c[3], c[4]) for c in source.calls} == {(datetime(2026, 11, 29, 1, tzinfo=UTC), NOW)}


async def test_the_baseline_window_can_be_earlier() -> None:
    source = source_with(STABLE)
    await JudgeMetric(source, clock=lambda: NOW).measure(block(baselineOffset="1h"))
    by_side = {("stable" in c[2]): (c[3], c[4]) for c in source.calls}
    hour = timedelta(hours=1)
    assert by_side[False] == (NOW - timedelta(minutes=10), NOW)
    assert by_side[True] == (NOW - timedelta(minutes=10) - hour, NOW - hour)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"start": "yesterday"}, "judge.start: 'yesterday' is not an RFC 3339 time"),
        ({"start": "2026-11-29T01:00:00"}, "judge.start: .* has no time zone"),
        ({"end": "2026-11-29T00:00:00Z"}, "judge.end: must be after judge.start"),
        ({"lookback": "10m"}, "judge.lookback: give lookback or start, not both"),
        ({"step": "2h"}, "judge.step \\(7200s\\) is longer than the window"),
        ({"baselineOffset": "soon"}, "judge.baselineOffset"),
    ],
)
def test_bad_windows_name_the_field(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_judge_block(fixed(**overrides))


async def test_the_judgement_is_kept_in_kayentas_shape() -> None:
    canary = [v * 3 for v in STABLE]
    reading = await JudgeMetric(source_with(canary), clock=lambda: NOW).measure(block())
    kept = json.loads(reading.metadata["judgeResult"])
    assert kept["judgeName"] == "NetflixACAJudge-v1.0"
    assert kept["score"] == {"score": 0.0, "classification": "Fail", "classificationReason": ""}
    assert kept["groupScores"] == [
        {"name": "service", "score": 0.0, "classification": "", "classificationReason": ""}
    ]
    [errors] = kept["results"]
    assert errors["name"] == "errors" and errors["classification"] == "High"
    assert errors["controlMetadata"]["stats"]["count"] == 10
    assert errors["experimentMetadata"]["stats"]["mean"] == pytest.approx(3 * sum(STABLE) / 10)
    assert errors["resultMetadata"]["ratio"] == pytest.approx(3.0)
    assert errors["explanation"]["why"].startswith("canary errors is 200% higher")

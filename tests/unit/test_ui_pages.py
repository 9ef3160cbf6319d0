"""The pure parts of the /ui/ pages: thresholds, markers, masking, where the token form
leads, the judge page's sides. The pages themselves run in Chromium (tests/e2e)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from analysisd.ui.access import _safe_next
from analysisd.ui.charts import Point, threshold, time_chart
from analysisd.ui.judgepage import Side, group_table, side_of
from analysisd.ui.runlist import wanted
from analysisd.ui.runpage import masked


def test_thresholds_of_simple_comparisons_only() -> None:
    assert threshold("success", "result < 10") is not None
    t = threshold("success", "0.9 <= result[0]")
    assert t is not None and (t.op, t.value) == (">=", 0.9)
    t = threshold("failure", "asFloat(result) > 2e3")
    assert t is not None and (t.op, t.value) == (">", 2000.0)
    assert threshold("success", "result < 10 && result > 1") is None
    assert threshold("success", "len(result) == 0") is None


def test_one_marker_per_measurement_valueless_ones_on_their_lane() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    points = [
        Point(at, "Successful", "3", ""),
        Point(at, "Error", "", "timeout"),
        Point(at, "Failed", "[12]", ""),
        Point(None, "Inconclusive", '{"a":1}', ""),
    ]
    svg = time_chart("latency", points, [])
    phases = re.findall(r'<g class="point" data-phase="(\w+)"', svg)
    assert phases == ["Successful", "Error", "Failed", "Inconclusive"]
    assert 'data-points="4"' in svg


def test_credentials_of_the_provider_block_are_masked() -> None:
    block = {
        "web": {
            "url": "https://x.invalid/q",
            "headers": [{"key": "Authorization", "value": "Bearer s3cr3t"}],
            "authentication": {"oauth2": {"clientSecret": "hush"}},
        },
        "prometheus": {"address": "http://p", "query": "up"},
    }
    text = json.dumps(masked(block))
    assert "s3cr3t" not in text and "hush" not in text
    assert "https://x.invalid/q" in text and '"query": "up"' in text


def test_the_token_form_leads_to_our_pages_without_a_token() -> None:
    assert _safe_next("/ui/namespaces/shop?token=oops&phase=Failed") == (
        "/ui/namespaces/shop?phase=Failed"
    )
    assert _safe_next("/ui/namespaces/shop?token=oops") == "/ui/namespaces/shop"
    assert _safe_next("https://evil.invalid/ui/") == "/ui/"
    assert _safe_next("//evil.invalid/ui/x") == "/ui/"
    assert _safe_next("/api/v1/namespaces") == "/ui/"


def test_measurements_wanted_as_argo_counts_them() -> None:
    assert wanted({"count": 5}) == "5"
    assert wanted({}) == "1"
    assert wanted({"interval": "1m"}) == "\u221e"
    assert wanted({"count": 0, "interval": "1m"}) == "\u221e"


def test_judge_sides_from_the_stored_canary_judge_result_else_the_text() -> None:
    result = {
        "controlMetadata": {
            "stats": {"count": 40, "mean": 2.5, "median": 2.0, "min": 1.0, "max": 9.0}
        }
    }
    assert side_of(result, "controlMetadata", "n=1") == Side(40, 2.5, 2.0, 1.0, 9.0)
    assert side_of({}, "experimentMetadata", "n=3 mean=1.5 median=1") == Side(3, 1.5, 1.0)
    table = group_table({"groupScores": [{"name": "speed", "score": 50.0}, {"name": "x"}]})
    assert 'data-group="speed"' in table and "<td>50</td>" in table and "<td>-</td>" in table
    assert group_table({}) == ""

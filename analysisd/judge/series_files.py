"""Baseline/canary series text for `analysisd judge`: JSON {"metric": [values]} or CSV columns.

Pure: analysisd/judge_io.py reads the files.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from analysisd.judge.errors import SeriesError


def parse_series_text(text: str, source: str) -> dict[str, list[float]]:
    """JSON object of metric -> list, or CSV whose header row names the metrics."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return _from_json(text, source)
    return _from_csv(text, source)


def _from_json(text: str, source: str) -> dict[str, list[float]]:
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SeriesError(f"{source}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SeriesError(f'{source}: expected an object {{"metric": [values...]}}')
    out: dict[str, list[float]] = {}
    for name, values in data.items():
        if not isinstance(values, list):
            raise SeriesError(f"{source}: {name}: expected a list of numbers")
        out[name] = [_number(v, f"{source}: {name}[{i}]") for i, v in enumerate(values)]
    return out


def _from_csv(text: str, source: str) -> dict[str, list[float]]:
    rows = list(csv.reader(io.StringIO(text)))
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise SeriesError(f"{source}: empty file (expected a header row of metric names)")
    header = [name.strip() for name in rows[0]]
    if any(not name for name in header) or len(set(header)) != len(header):
        raise SeriesError(f"{source}: the header row must name each column once")
    columns: dict[str, list[str]] = {name: [] for name in header}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) > len(header):
            raise SeriesError(
                f"{source}: line {line} has {len(row)} cells, header has {len(header)}"
            )
        for name, cell in zip(header, row + [""] * (len(header) - len(row)), strict=True):
            columns[name].append(cell.strip())
    out: dict[str, list[float]] = {}
    for name, cells in columns.items():
        # Trailing blanks are a shorter column; an interior blank is a missing point (NaN).
        while cells and cells[-1] == "":
            cells.pop()
        out[name] = [
            math.nan if cell == "" else _number(cell, f"{source}: {name} row {i + 2}")
            for i, cell in enumerate(cells)
        ]
    return out


def _number(value: Any, where: str) -> float:
    if value is None or value == "NaN" or value == "nan":
        return math.nan
    if isinstance(value, bool):
        raise SeriesError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise SeriesError(f"{where}: expected a number, got {value!r}")

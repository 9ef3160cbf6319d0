#!/usr/bin/env python3
"""Render helm/analysisd to stdout without a `helm` binary: `helm template`, in Python.

Uses the Helm SDK that the test extra installs (`pip install -e '.[test]'`, PyPI
`helm-python-sdk`), the same engine tests/chart renders with:

    python scripts/render-chart.py                          # default values
    python scripts/render-chart.py -f helm/analysisd/ci/ha-values.yaml
    python scripts/render-chart.py --set replicaCount=3 --namespace delivery

Exit 1 with the chart's own message when it refuses the values.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

CHART = Path(__file__).resolve().parent.parent / "helm" / "analysisd"


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-f", "--values", action="append", default=[], help="values file")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE, as helm's")
    parser.add_argument("--name", default="analysisd", help="release name (default analysisd)")
    parser.add_argument("--namespace", default="analysisd", help="namespace (default analysisd)")
    args = parser.parse_args()
    try:
        import helm_python as helm
    except ImportError:
        print("render-chart: needs the Helm SDK: pip install -e '.[test]'", file=sys.stderr)
        return 2
    values: dict[str, Any] = {}
    for path in args.values:
        values = merge(values, helm.values_from_yaml(Path(path).read_text()))
    for expression in args.set:
        values = merge(values, helm.parse_set_string(expression))
    try:
        rendered = helm.Chart.load(str(CHART)).render(
            values or None, name=args.name, namespace=args.namespace, is_install=True
        )
    except helm.HelmError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    for path, text in sorted(rendered.items()):
        if path.endswith(".yaml") and text.strip():
            print(f"---\n# Source: {path}\n{text.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

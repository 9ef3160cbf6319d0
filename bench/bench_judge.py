"""Judge benchmark: Kayenta-exact judging vs scipy.stats.mannwhitneyu on the same data.

    python bench/bench_judge.py [--n 1000] [--metrics 50] [--repeats 15]

Both sides get identical samples, generated once per shape:
- latency: lognormal, canary shifted 5% (continuous, no ties);
- errors: zero-inflated counts (most points 0, many ties).

Timed, best-of-`repeats` median style (median of repeats):
1. baseline: scipy.stats.mannwhitneyu(x, y, method="asymptotic") - a p-value only;
2. interval: analysisd.judge.mannwhitney.mann_whitney - R's interval + estimate
   (three root searches, tens of W(mu) evaluations);
3. metric: one full metric judgement (NaN strategy, classifier, effect size, stats);
4. canary: `--metrics` metrics through judge() (classify all + score, with each
   metric's explanation) against the same number of scipy calls;
5. report: rendering that judgement as the HTML report (not part of judge()).
Ratios are ours / scipy's, measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from scipy.stats import mannwhitneyu

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysisd.judge.config import MetricConfig, parse_canary_config
from analysisd.judge.judge import classify_metric, judge
from analysisd.judge.mannwhitney import mann_whitney
from analysisd.judge.report import render_report


def samples(shape: str, n: int, seed: int) -> tuple[list[float], list[float]]:
    rng = np.random.default_rng(seed)
    if shape == "latency":
        baseline = rng.lognormal(mean=-2.0, sigma=0.4, size=n)
        canary = rng.lognormal(mean=-2.0 + np.log(1.05), sigma=0.4, size=n)
    else:
        baseline = rng.poisson(0.3, size=n).astype(float)
        canary = rng.poisson(0.45, size=n).astype(float)
    return baseline.tolist(), canary.tolist()


def timed(func: Callable[[], object], repeats: int) -> float:
    func()  # warm caches and imports
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def scipy_once(baseline: list[float], canary: list[float]) -> Callable[[], object]:
    x, y = np.asarray(canary), np.asarray(baseline)
    return lambda: mannwhitneyu(x, y, alternative="two-sided", method="asymptotic")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="points per side")
    parser.add_argument("--metrics", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    print(f"n = m = {args.n}, median of {args.repeats} runs\n")
    print(f"{'case':<34}{'scipy (ms)':>12}{'judge (ms)':>12}{'ratio':>8}")
    metric = MetricConfig(name="m", groups=("g",))
    for shape in ("latency", "errors"):
        baseline, canary = samples(shape, args.n, seed=7)
        base = timed(scipy_once(baseline, canary), args.repeats)
        interval = timed(partial(mann_whitney, canary, baseline, 0.98), args.repeats)
        full = timed(partial(classify_metric, metric, baseline, canary), args.repeats)
        for label, value in (
            ("interval + estimate", interval),
            ("one metric, full judgement", full),
        ):
            print(
                f"{shape + ': ' + label:<34}{base * 1e3:>12.3f}{value * 1e3:>12.3f}"
                f"{value / base:>8.2f}"
            )

    names = [f"metric-{i}" for i in range(args.metrics)]
    config = parse_canary_config(
        {"metrics": [{"name": name, "groups": ["service"]} for name in names]}
    )
    pairs = {
        name: samples("latency" if i % 2 else "errors", args.n, seed=i)
        for i, name in enumerate(names)
    }
    scipy_calls = [scipy_once(b, c) for b, c in pairs.values()]
    base = timed(lambda: [call() for call in scipy_calls], max(3, args.repeats // 3))
    ours = timed(lambda: judge(config, pairs), max(3, args.repeats // 3))
    label = f"{args.metrics} metrics, judge() + score"
    print(f"{label:<34}{base * 1e3:>12.3f}{ours * 1e3:>12.3f}{ours / base:>8.2f}")
    result = judge(config, pairs)
    page = timed(lambda: render_report(result), max(3, args.repeats // 3))
    label = f"{args.metrics} metrics, HTML report"
    print(f"{label:<34}{base * 1e3:>12.3f}{page * 1e3:>12.3f}{page / base:>8.2f}")


if __name__ == "__main__":
    main()

"""CLI start-up: `analysisd --version` and `lint` of one template vs `import yaml, pydantic`.

    python bench/bench_cli.py [--runs 10] [--cold] [--before DIR]

Each command runs in a fresh interpreter (`python -m analysisd.cli ...`), `--runs` times,
the commands interleaved so that they share the machine's load; the median wall time of
each is reported with its ratio to the baseline `python -c "import yaml, pydantic"`
measured in the same rounds (issue 21's target for lint: at most 2x).

By default Python's bytecode cache is on, as in an installed package (one warm-up round
writes it first; the sandbox sets PYTHONDONTWRITEBYTECODE, which is lifted here).
`--cold`: every interpreter compiles every module from source (an empty pycache prefix,
nothing written), baseline included. `--before DIR`: the analysisd commands are also run
from another checkout (e.g. `git archive <commit> | tar -x -C DIR`), in the same rounds,
so a change is compared under the same load (`python -m` imports the tree it runs in).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMMANDS: dict[str, list[str]] = {
    'python -c "import yaml, pydantic" (baseline)': ["-c", "import yaml, pydantic"],
    "python -c pass": ["-c", "pass"],
    # What any pydantic model costs: `import pydantic` alone loads none of BaseModel's
    # machinery (schema generation, fields, plugin loader), so this is lint's floor.
    "python -c 'import yaml, pydantic; one BaseModel'": [
        "-c",
        "import yaml, pydantic\nclass M(pydantic.BaseModel):\n    x: int = 0",
    ],
    # `python -m analysisd.cli` calls main() without arguments, as the `analysisd` script
    # does: lint runs as a program (GC frozen after import, run-only models on first use).
    "analysisd --version": ["-m", "analysisd.cli", "--version"],
    "analysisd lint examples/argo-web-gate.yaml (web)": [
        "-m",
        "analysisd.cli",
        "lint",
        "examples/argo-web-gate.yaml",
    ],
    "analysisd lint examples/http-success-rate.yaml (prometheus)": [
        "-m",
        "analysisd.cli",
        "lint",
        "examples/http-success-rate.yaml",
    ],
}
BASELINE = next(iter(COMMANDS))


def once(argv: list[str], env: dict[str, str], prefix: list[str], cwd: Path = REPO) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *prefix, *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv} exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    return elapsed


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--cold", action="store_true", help="no bytecode cache at all")
    parser.add_argument("--before", type=Path, help="another checkout to run analysisd from")
    args = parser.parse_args()
    commands: dict[str, tuple[list[str], Path]] = {}
    for name, argv in COMMANDS.items():
        commands[name] = (argv, REPO)
        if args.before is not None and "analysisd.cli" in argv:
            # Files are read from this checkout, the code from the other one.
            paths = [str(REPO / a) if a.startswith("examples/") else a for a in argv]
            commands[f"{name} [before: {args.before}]"] = (paths, args.before.resolve())
    env = dict(os.environ)
    prefix: list[str] = []
    scratch = tempfile.TemporaryDirectory()
    load = _load()
    if args.cold:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        prefix = ["-X", f"pycache_prefix={scratch.name}"]  # empty: nothing cached is found
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for argv, cwd in commands.values():  # warm-up: write the bytecode cache
            once(argv, env, prefix, cwd)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, (argv, cwd) in commands.items():
            times[name].append(once(argv, env, prefix, cwd))
    scratch.cleanup()
    base = statistics.median(times[BASELINE])
    mode = "no bytecode cache" if args.cold else "bytecode cache on"
    print(f"{args.runs} runs each, interleaved, {mode}; median wall time and ratio to baseline")
    print(f"  load average before: {load}, after: {_load()}")
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"  {name}: {1000 * median:.0f} ms (min {1000 * min(values):.0f}, "
            f"max {1000 * max(values):.0f}) = {median / base:.2f}x"
        )


if __name__ == "__main__":
    main()

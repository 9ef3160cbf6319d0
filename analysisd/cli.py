"""Command line: `analysisd serve | run | lint | judge`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

# Each subcommand module exposes `add_parser(subparsers)`, which sets `func`
# (argparse.Namespace -> exit code) as the parser default.
_SUBCOMMANDS = (
    "analysisd.commands.lint",
    "analysisd.commands.run",
    "analysisd.commands.judge",
    "analysisd.commands.serve",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="analysisd", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in _SUBCOMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())

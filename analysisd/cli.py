"""Command line: `analysisd serve | run | lint | judge | demo`."""

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
    "analysisd.commands.demo",
    "analysisd.commands.client",  # list, get, terminate: a client of a running daemon
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    from analysisd import __version__

    version = f"analysisd {__version__}"
    parser = argparse.ArgumentParser(prog="analysisd", description=__doc__)
    parser.add_argument("--version", action="version", version=version)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in _SUBCOMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.add_parser(sub)
    # Every entry answers --version, `analysisd run --version` as well as `analysisd --version`.
    for command in sub.choices.values():
        if "--version" not in command._option_string_actions:  # a command may have its own
            command.add_argument("--version", action="version", version=version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())

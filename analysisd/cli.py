"""Command line: `analysisd serve | run | lint | judge | demo`.

Only the module of the command being run is imported: the others stand in the
parser as names with their help line, so `analysisd lint` never pays for the
judge's scipy or the daemon's web stack (`analysisd --help` lists them all, and
`build_parser()` with no command builds every one in full).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import os
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

# Each subcommand module exposes `add_parser(subparsers)`, which sets `func`
# (argparse.Namespace -> exit code) as the parser default; listed here with the
# commands it adds and their help line (tests/unit/test_cli_lazy.py holds these
# to the modules' own).
_SUBCOMMANDS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "analysisd.commands.lint",
        (("lint", "check AnalysisTemplate / ClusterAnalysisTemplate / AnalysisRun files"),),
    ),
    (
        "analysisd.commands.run",
        (("run", "run one analysis in the foreground and print the final AnalysisRun"),),
    ),
    (
        "analysisd.commands.judge",
        (("judge", "compare canary and baseline series with a Kayenta canary config"),),
    ),
    (
        "analysisd.commands.serve",
        (("serve", "run the analysis daemon (REST API, scheduler, webhooks)"),),
    ),
    (
        "analysisd.commands.demo",
        (("demo", "start a loopback Prometheus and demo service, show one pass and one fail"),),
    ),
    (
        "analysisd.commands.client",  # a client of a running daemon
        (
            ("list", "list the AnalysisRuns of a namespace on a daemon"),
            ("get", "show one AnalysisRun on a daemon (--watch: follow it)"),
            ("terminate", "terminate an AnalysisRun on a daemon"),
        ),
    ),
)


# Commands that only read files and exit: pydantic's plugin discovery (a scan of every
# installed distribution's entry points, ~5 ms of `analysisd lint`'s start-up, issue 21)
# is skipped while their modules (and analysisd.spec's models) are imported.
_NO_PYDANTIC_PLUGINS = frozenset({"lint"})
_PLUGINS_VARIABLE = "PYDANTIC_DISABLE_PLUGINS"
# pydantic's plugin loader: imported by the first model built, it imports
# importlib.metadata (and with it the `email` package, ~8 ms) at module level, even
# when the switch above makes it return no plugins without reading any metadata.
_PLUGIN_LOADER = "pydantic.plugin._loader"


class _NoPluginsLoader(types.ModuleType):
    """Stands in for pydantic's plugin loader while the switch is on.

    `get_plugins()` answers what the real one answers with PYDANTIC_DISABLE_PLUGINS=
    __all__ (no plugins) without importing importlib.metadata; any other name is read
    from the real module, imported then, so a pydantic that asks for more gets it.
    """

    def __init__(self) -> None:
        super().__init__(_PLUGIN_LOADER)

    @staticmethod
    def get_plugins() -> tuple[()]:
        return ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # the import system's probes (__path__, ...)
            raise AttributeError(name)
        if sys.modules.get(_PLUGIN_LOADER) is self:
            del sys.modules[_PLUGIN_LOADER]
        return getattr(importlib.import_module(_PLUGIN_LOADER), name)


@contextlib.contextmanager
def _pydantic_plugins_off(command: str | None) -> Iterator[None]:
    """Pydantic's own switch (PYDANTIC_DISABLE_PLUGINS=__all__), for this import only.

    A user's own setting is left as it is; the variable is unset again afterwards, so
    models built later in the process (never the daemon's: `serve` and `run` are not
    listed) discover plugins as usual. While it is set, the loader not yet imported is
    stood in for by _NoPluginsLoader (removed afterwards: a later model imports the
    real one). main() keeps it on for the whole command when the process is lint's.
    """
    if command not in _NO_PYDANTIC_PLUGINS or _PLUGINS_VARIABLE in os.environ:
        yield
        return
    os.environ[_PLUGINS_VARIABLE] = "__all__"
    stand_in = sys.modules.setdefault(_PLUGIN_LOADER, _NoPluginsLoader())
    try:
        yield
    finally:
        os.environ.pop(_PLUGINS_VARIABLE, None)
        if isinstance(stand_in, _NoPluginsLoader) and sys.modules.get(_PLUGIN_LOADER) is stand_in:
            del sys.modules[_PLUGIN_LOADER]


# Commands that run briefly and exit. When the process is theirs (main() called with no
# arguments, as the `analysisd` script and `python -m analysisd.cli` do; issue 21, ~35 ms
# of `analysisd lint`'s start-up together):
# - their import runs with the cyclic garbage collector off, and the objects it made are
#   then frozen (gc.freeze: left out of every later collection, the interpreter's last
#   one at exit included, which otherwise scans the thousands of objects pydantic's
#   models are made of); garbage made while the command runs is collected as usual;
# - analysisd.spec builds the models no AnalysisTemplate holds on first use
#   (analysisd.spec_build): lint of a template never builds a run's status models;
# - pydantic's plugins stay off for the whole command (_pydantic_plugins_off), so a model
#   built on first use is built as the others were.
_SHORT_COMMANDS = frozenset({"lint"})


@contextlib.contextmanager
def _frozen_import() -> Iterator[None]:
    from analysisd import spec_build

    spec_build.RUN_MODELS_ON_FIRST_USE = True
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.freeze()
            gc.enable()


def command_of(argv: Sequence[str]) -> str | None:
    """The subcommand argparse will pick: the first argument that is not an option.

    The top-level parser's only options (-h, --version) take no value.
    """
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg
    return None


def build_parser(command: str | None = None, *, full: bool = True) -> argparse.ArgumentParser:
    """The parser; with `full` False only `command`'s module is imported and built."""
    from analysisd import __version__

    version = f"analysisd {__version__}"
    parser = argparse.ArgumentParser(prog="analysisd", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=version)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, commands in _SUBCOMMANDS:
        if full or any(command == c for c, _ in commands):
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name != name:
                    raise
                continue
            module.add_parser(sub)
            continue
        for stand_in, text in commands:
            sub.add_parser(stand_in, help=text, add_help=False)
    # Every entry answers --version, `analysisd run --version` as well as `analysisd --version`.
    for each in sub.choices.values():
        if "--version" not in each._option_string_actions:  # a command may have its own
            each.add_argument("--version", action="version", version=version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = command_of(arguments)
    if argv is None and command in _SHORT_COMMANDS:
        with _pydantic_plugins_off(command):
            with _frozen_import():
                parser = build_parser(command, full=False)
            return _run(parser, arguments)
    with _pydantic_plugins_off(command):
        parser = build_parser(command, full=False)
    return _run(parser, arguments)


def _run(parser: argparse.ArgumentParser, arguments: list[str]) -> int:
    args = parser.parse_args(arguments)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())

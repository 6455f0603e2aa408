"""``deepsquare SUBCOMMAND``: the one command, and the table of its subcommands.

Each subcommand lives beside the code it drives, as a module with ``add_arguments(parser)`` and
``run(args) -> int``, and the same as a Python function (``deepsquare.train``, ``deepsquare.export``,
``deepsquare.bench``, ``deepsquare.load``). Only the chosen subcommand's module is imported: ``deepsquare
--help`` and a bad flag answer without importing torch. Adding a subcommand = one row in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import import_module

from deepsquare.runtime.options import UsageError
from deepsquare.runtime.processes import Stopped, stopping_on_signals

PROG = "deepsquare"


@dataclass(frozen=True)
class Command:
    name: str
    module: str  # defines add_arguments(parser) and run(args) -> int, under the names below
    summary: str  # the line in `deepsquare --help`
    adder: str = "add_arguments"
    runner: str = "run"
    children: tuple[Command, ...] = ()  # sub-subcommands, chosen by the next word
    children_required: bool = False  # False: without a child word, this command's own parser runs


def _child(name: str, module: str, summary: str) -> Command:
    return Command(name=name, module=module, summary=summary, adder=f"add_{name}_arguments", runner=f"run_{name}")


COMMANDS: tuple[Command, ...] = (
    Command(name="train", module="deepsquare.train.cli", summary="train a classifier, write a checkpoint"),
    Command(
        name="ablate",
        module="deepsquare.train.ablate_cli",
        summary="every variant x seed, one recipe; paired differences",
    ),
    Command(
        name="export",
        module="deepsquare.export.cli",
        summary="checkpoint -> ONNX/Core ML/TFLite/ExecuTorch, parity-gated",
    ),
    Command(
        name="bench",
        module="deepsquare.export.bench_cli",
        summary="latency against GAP, per runtime (+ bench isqrt, bench dsop)",
        children=(
            _child("isqrt", "deepsquare.export.bench_cli", "iSQRT-COV vs an eigendecomposition square root"),
            _child("dsop", "deepsquare.export.bench_cli", "the training-time cost of DSoP branches"),
        ),
    ),
    Command(name="predict", module="deepsquare.runtime.predict", summary="top-k labels of images from a bundle"),
    Command(
        name="profile",
        module="deepsquare.export.profile_cli",
        summary="per-module time in each runtime (+ android, ios, parse)",
        children=(
            _child("android", "deepsquare.runtime.profile", "TFLite's benchmark_model on an attached Android device"),
            _child("ios", "deepsquare.runtime.profile", "a .mlpackage through Core ML (macOS)"),
            _child("parse", "deepsquare.runtime.profile", "a saved benchmark_model output -> a record"),
        ),
    ),
    Command(
        name="serve",
        module="deepsquare.runtime.serve",
        summary="the web app with bundles (--headless-bench: time in Chromium)",
    ),
    Command(
        name="demo",
        module="deepsquare.export.demo_cli",
        summary="the main job: train, export, benchmark; one report",
    ),
    Command(
        name="schema",
        module="deepsquare.runtime.schema_cli",
        summary="the JSON Schema of model.json (every bundle has a copy)",
    ),
)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' layout and shows every default (once: a help that already says it is left alone)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        hidden = default is None or default is False or default == argparse.SUPPRESS or default in ("", [], ())
        if "default" in text or hidden or not action.option_strings:
            return text
        if isinstance(default, (list, tuple)):
            default = ",".join(map(str, default))
        return f"{text} (default {str(default).replace('%', '%%')})"


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("deepsquare")
    except PackageNotFoundError:
        return "0+unknown"


def top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train DeepSquare / DSoP image classifiers and take them to phones.",
        epilog="Run 'deepsquare SUBCOMMAND --help' for its flags and examples. "
        "Python: import deepsquare as ds; ds.train(...), ds.export(...), ds.bench(...), ds.load(...).",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {version()}")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", title="subcommands", help="one of:")
    for command in COMMANDS:
        sub.add_parser(command.name, help=command.summary, add_help=False)
    return parser


def command_parser(command: Command, prog: str) -> argparse.ArgumentParser:
    """The full parser of one (sub-)subcommand; imports its module (not torch: modules import it late)."""
    module = import_module(command.module)
    # A module's docstring describes its command; a child sharing a module has its own <NAME>_DOC there.
    own = command.adder == "add_arguments"
    description = module.__doc__ if own else getattr(module, f"{command.name.upper()}_DOC", command.summary)
    epilog = None
    if command.children:
        width = max(len(c.name) for c in command.children)
        lines = [f"  {prog} {c.name:<{width}}  {c.summary}" for c in command.children]
        epilog = "sub-subcommands (each has its own --help):\n" + "\n".join(lines)
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog, formatter_class=HelpFormatter)
    getattr(module, command.adder)(parser)
    return parser


def resolve(argv: list[str]) -> tuple[Command, str, list[str]]:
    """(command, its prog, its own arguments) for ``argv`` after ``deepsquare``; SystemExit on a bad word."""
    by_name = {c.name: c for c in COMMANDS}
    if not argv or argv[0] not in by_name:
        top_parser().parse_args(argv or ["--help"])  # prints help, --version, or "invalid choice" and exits
        raise AssertionError("unreachable: argparse exits above")
    command, prog, rest = by_name[argv[0]], f"{PROG} {argv[0]}", argv[1:]
    children = {c.name: c for c in command.children}
    if rest and rest[0] in children:
        return children[rest[0]], f"{prog} {rest[0]}", rest[1:]
    if command.children_required:
        parser = command_parser(command, prog)
        if rest and rest[0] in ("-h", "--help"):
            parser.print_help()
            raise SystemExit(0)
        parser.error(f"choose one of: {', '.join(children)}")
    return command, prog, rest


def run_command(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command, prog, rest = resolve(argv)
    parser = command_parser(command, prog)
    args = parser.parse_args(rest)
    args.given = rest  # the words as typed: a command may need to know which flags were explicit
    # SIGTERM and Ctrl+C raise Stopped (a KeyboardInterrupt) here: clean-ups run, children are stopped, one line.
    with stopping_on_signals() as stop:
        try:
            code = int(getattr(import_module(command.module), command.runner)(args) or 0)
        except UsageError as exc:
            parser.error(str(exc))  # exits 2 with the usage line, as a flag argparse refused itself
        except KeyboardInterrupt as exc:
            signum = exc.signum if isinstance(exc, Stopped) else signal.SIGINT
            print(f"{prog}: interrupted ({signal.Signals(signum).name})", file=sys.stderr)
            return 128 + signum
    return stop.exit_status(code)  # a command that printed its own line for the stop returned 130


def main(argv: list[str] | None = None) -> int:
    from deepsquare.runtime import quiet

    quiet.SILENCE_NATIVE_EXIT = True  # the command owns its process; a library caller's stderr is never touched
    return run_command(argv)


def iter_parsers() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """``(command line, parser)`` of ``deepsquare`` and of every (sub-)subcommand: the CLI reference and the
    spelling test read these, so neither can drift from what runs."""
    yield PROG, top_parser()
    for command in COMMANDS:
        prog = f"{PROG} {command.name}"
        yield prog, command_parser(command, prog)
        for child in command.children:
            yield f"{prog} {child.name}", command_parser(child, f"{prog} {child.name}")


if __name__ == "__main__":
    sys.exit(main())

"""The command-line options that several ``deepsquare`` subcommands share, each defined once.

One spelling per concept, with the same type and default wherever it appears (Ultralytics' ``format=``,
timm's shared script arguments): the formats chosen (``--to``), precision(s), threads, timed rounds and
warm-up, the output folder, ``-q/--quiet`` and ``-v/--verbose``. ``tests/test_cli.py`` walks every
subcommand's parser and fails on a second spelling or a different default. No torch here.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from .formats import FORMATS, all_precisions, parse_format_names

RUNS = 30  # timed rounds per model, every timing command
WARMUP = 5  # untimed rounds per block of new sessions
THREADS = (1,)  # runtime threads: one thread is the reproducible baseline on every machine
MAX_THREADS = 4 * (os.cpu_count() or 1)


def comma_list(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [part.strip() for part in text.split(",") if part.strip()]


def format_list(text: str) -> list[str]:
    """``--to``: format names, a comma list, or ``all``; refused here, before any slow work."""
    try:
        return parse_format_names(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def precision_list(text: str) -> list[str]:
    known = all_precisions()
    names = comma_list(text)
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"{', '.join(repr(u) for u in unknown) or 'nothing'} is not a precision; choose from {', '.join(known)}"
        )
    return list(dict.fromkeys(names))


def int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in comma_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma list of whole numbers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


def add_formats(parser: argparse.ArgumentParser, *, default: str, help: str) -> None:
    parser.add_argument(
        "--to",
        type=format_list,
        default=format_list(default),
        metavar="FORMATS",
        help=f"{help}: {', '.join(FORMATS)}, a comma list, or all (default {default})",
    )


def add_precision(parser: argparse.ArgumentParser, *, help: str) -> None:
    offered = "; ".join(f"{name}: {', '.join(fmt.precisions)}" for name, fmt in FORMATS.items())
    parser.add_argument(
        "--precision",
        type=precision_list,
        default=None,
        metavar="PRECISIONS",
        help=f"{help} ({offered}; default: each format's first, its own default)",
    )


def add_threads(parser: argparse.ArgumentParser, *, help: str) -> None:
    parser.add_argument(
        "--threads",
        type=int_list,
        default=list(THREADS),
        metavar="N[,N...]",
        help=f"{help} (default {','.join(map(str, THREADS))})",
    )


def add_rounds(parser: argparse.ArgumentParser, *, what: str = "timed rounds per model") -> None:
    parser.add_argument("--runs", type=int, default=RUNS, help=f"{what} (default {RUNS})")
    parser.add_argument(
        "--warmup", type=int, default=WARMUP, help=f"untimed rounds before timing each block (default {WARMUP})"
    )


def add_out(parser: argparse.ArgumentParser, *, default: str | None, help: str) -> None:
    suffix = f" (default {default})" if default else ""
    parser.add_argument(
        "--out", type=Path, default=Path(default) if default else None, metavar="DIR", help=help + suffix
    )


def add_jobs(parser: argparse.ArgumentParser, *, help: str) -> None:
    parser.add_argument("--jobs", type=int, default=0, help=f"{help} (default 0: one per CPU core; 1: one at a time)")


def add_verbosity(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, only results and errors")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the tools' own output, and the traceback of an error"
    )


DEFAULT_ARCH = "shufflenetv2_x0_5"  # the backbone of random-weight models (bench, profile) when none is named


class UsageError(ValueError):
    """A bad flag value found after parsing; ``deepsquare`` reports it like argparse does (usage, exit 2)."""


def one_value(flag: str, values: Sequence | None) -> object:
    """The single value of a list option in a command that takes one (``--threads 1,2`` in predict)."""
    if values is None:
        return None
    if len(values) != 1:
        raise UsageError(f"{flag} takes one value here, got {','.join(map(str, values))}")
    return values[0]


def jobs_or_cores(jobs: int) -> int:
    """``--jobs 0`` -> the CPU count."""
    return jobs if jobs > 0 else (os.cpu_count() or 1)


def check_rounds(args: argparse.Namespace, *, least_runs: int = 2) -> None:
    if args.runs < least_runs or args.warmup < 0:
        raise UsageError(f"--runs must be >= {least_runs} and --warmup >= 0, got {args.runs} and {args.warmup}")


def check_threads(threads: Sequence[int], *, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    bad = [t for t in threads if not low <= t <= MAX_THREADS]
    if bad:
        zero = "0: the runtime's choice; " if allow_zero else ""
        raise UsageError(
            f"--threads must be between {low} and {MAX_THREADS} ({zero}4 x this machine's {os.cpu_count()} CPUs), "
            f"got {bad[0]}"
        )

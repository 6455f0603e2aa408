"""``deepsquare bench`` from its arguments to the report: export or load the models, time them, measure each
file of a checkpoint or bundle (accuracy, cold start, memory), through the result cache, then write it all.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deepsquare.runtime.bench_cache import FILE_NAME, BenchCache
from deepsquare.runtime.bench_plan import check_precisions
from deepsquare.runtime.bench_report import load_records, write_outputs
from deepsquare.runtime.bench_table import busy_summary
from deepsquare.runtime.formats import by_runtime
from deepsquare.runtime.latency import time_models

from .bench import plan_from_args, prepare_models, split_models
from .bench_files import file_rows
from .pipeline import prepare_out

COLD_STARTS = 3  # fresh processes per load / first-inference figure (the median is reported)


def note_to_stderr(message: str) -> None:
    print(f"deepsquare bench: note: {message}", file=sys.stderr)


def run_bench(
    args: argparse.Namespace,
    progress: bool = True,
    note: Callable[[str], None] = note_to_stderr,
    cache: BenchCache | None = None,
) -> dict[str, Any]:
    """Time the models of ``args``; with checkpoints or bundles among them, one row per file (``files``)."""
    plan = plan_from_args(args)
    notes = check_precisions(list(plan.runtimes), list(plan.precisions))
    if split_models(args.models)[1] and plan.precisions != ("fp32",):
        notes.append(
            "--precision applies to --arch models and checkpoints; a bundle is timed at the precision "
            "it was exported at (its model.json says which)"
        )
    for message in notes:
        note(message)
    elsewhere = load_records([Path(p) for p in getattr(args, "add_records", None) or []])
    formats = {by_runtime(r).name for r in plan.runtimes}
    with tempfile.TemporaryDirectory(prefix="deepsquare-bench-") as workdir:
        models = prepare_models(args, formats, Path(workdir), progress, plan.precisions)
        result = time_models(models, plan, progress, cache)
        if args.models:
            settings = {
                "data": getattr(args, "data", None),
                "images": getattr(args, "images", None),
                "starts": getattr(args, "cold_starts", COLD_STARTS),
                "threads": plan.threads[0],
            }
            files_cache = cache or BenchCache(Path(workdir) / FILE_NAME, enabled=False)
            result["files"] = file_rows(models, result, settings, files_cache, note)
    for s in result["skipped"]:
        note(
            f"{s['arch']} {s['name']} ({s['precision']}) could not run in {s['runtime']} at {s['threads']} "
            f"thread(s), not timed: {s['reason']}"
        )
    result["busy"] = busy_summary(result)
    result["records_elsewhere"] = elsewhere
    return result


def run_bench_and_write(args: argparse.Namespace) -> dict[str, Any]:
    """Check, time, write bench.json / bench.md / bench.png (and pareto.png, bench-cache.json) into ``args.out``;
    the result (``deepsquare.bench``)."""
    plan_from_args(args)  # a bad name is refused before the report folder is made
    split_models(args.models)
    prepare_out(args.out)
    cache = BenchCache(args.out / FILE_NAME, enabled=not getattr(args, "no_cache", False))
    result = run_bench(args, progress=not args.quiet, cache=cache)
    result["cache"] = {"file": str(cache.path), "reused": cache.hits, "measured": cache.misses}
    write_outputs(result, args.out)
    cache.save()
    return result

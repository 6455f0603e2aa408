"""Latency of exported models, side by side, through the runners of ``deepsquare.runtime``.

``time_models`` takes models already on disk (exported files, with their cost figures) and
times each (arch, input size) group in every runtime and thread count with the one protocol
of ``deepsquare.runtime.timing``; every record is in the one schema of
``deepsquare.runtime.records`` and every model gets its ratio to the group's baseline (``gap``
when present, else the first model) at the same precision. The files of each precision (fp32,
int8) of one model are timed in the same interleaved group, and a quantized file also gets its
paired ratio to the same model's fp32 file. No torch here: the browser and device paths use it too.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .bench_cache import BenchCache
from .bundle import BundleMeta
from .files import size_on_disk
from .formats import FORMATS, by_runtime
from .machine import cache_identity, cpu, load_snapshot, runtime_version, versions
from .pixels import pixel_levels, pixels_of
from .probe import crash_reason
from .quiet import quiet
from .records import BenchRecord, record_from_times, this_machine
from .runners import open_model
from .timing import Opener, Timing, TimingPlan, progress_total, ratio_interval, time_interleaved

BAR_FORMAT = "{l_bar}{bar}| {n:.0f}/{total:.0f} {unit} [{elapsed}<{remaining}]{postfix}"


# What the runners set that changes a measurement (recorded with every record).
RUNTIME_SETTINGS = {"onnxruntime": {"intra_op_spinning": False}}


@dataclass
class BenchModel:
    """One model to time: its exported files and what it costs."""

    name: str  # the table's label: the variant, or a run's name
    arch: str
    variant: str
    input_size: int
    files: dict[str, Path]  # format -> file
    source: str
    params: int | None = None
    macs: int | None = None
    elementwise: int | None = None
    meta: BundleMeta | None = None  # what a runner that normalizes inside (Core ML) needs
    precision: str = "fp32"  # of the files exported here; a bundle's own entries say theirs
    extra: dict[str, Any] = field(default_factory=dict)  # joins each record's extra (e.g. calibration)
    apis: dict[str, str] = field(default_factory=dict)  # runtime -> the API its runner used (BenchRecord.api)

    def size_kb(self, fmt: str) -> int:
        return round(size_on_disk(self.files[fmt]) / 1024)

    def input_dtype(self, fmt: str) -> str:
        """``uint8`` for a bundle entry whose graph takes raw pixels, else ``float32``."""
        entry = self.meta.formats.get(fmt) if self.meta is not None else None
        return str(getattr(entry, "input_dtype", None) or "float32")

    def precision_of(self, fmt: str) -> str:
        entry = self.meta.formats.get(fmt) if self.meta is not None else None
        return entry.precision if entry is not None else self.precision


@dataclass
class LatencyPlan(TimingPlan):
    runtimes: tuple[str, ...] = ("onnxruntime", "litert")
    threads: tuple[int, ...] = (1,)
    precisions: tuple[str, ...] = ("fp32",)


def group_models(models: list[BenchModel]) -> dict[tuple[str, int], list[BenchModel]]:
    groups: dict[tuple[str, int], list[BenchModel]] = {}
    for m in models:
        groups.setdefault((m.arch, m.input_size), []).append(m)
    return groups


def baseline_index(group: list[BenchModel], precisions: list[str] | None = None, precision: str = "fp32") -> int:
    """``gap`` when present, else the first model; among the models at ``precision`` when ``precisions`` (one per
    model of the group) are given."""
    picked = [i for i in range(len(group)) if precisions is None or precisions[i] == precision]
    return next((i for i in picked if group[i].variant == "gap"), picked[0])


def fp32_index(group: list[BenchModel], precisions: list[str], i: int) -> int | None:
    """The same model's fp32 file in the group, for a file at another precision."""
    if precisions[i] == "fp32":
        return None
    return next(
        (
            j
            for j, m in enumerate(group)
            if precisions[j] == "fp32" and (m.arch, m.name, m.source) == (group[i].arch, group[i].name, group[i].source)
        ),
        None,
    )


def runner_opener(model: BenchModel, runtime: str, threads: int, x: np.ndarray) -> Opener:
    fmt = by_runtime(runtime)

    def open_session():
        with quiet():  # session creation prints delegate and CPU notes from C++
            runner = open_model(fmt, model.files[fmt.name], model.meta, threads)
        model.apis[runtime] = getattr(runner, "api", None)  # LiteRT: CompiledModel or Interpreter
        if model.input_dtype(fmt.name) == "uint8" and hasattr(runner, "run_pixels"):  # raw RGB pixels in
            pixels = pixels_of(x, model.meta)  # the very image the float graphs of its cell get (measure_cell)
            return (lambda: runner.run_pixels(pixels)), runner.init_s
        return (lambda: runner.run(x)), runner.init_s

    return open_session


# Probe each file in a child process (a delegate's segfault must not end the benchmark). Tests that inject
# runners in-process through FORMATS turn it off: a child would not see them.
PROBE_IN_CHILD = True


def openable(
    group: list[BenchModel], runtime: str, threads: int, x: np.ndarray
) -> tuple[list[BenchModel], list[dict[str, Any]]]:
    """The models whose file the runtime opens and runs once, in a child process, and a reason for each one it
    refuses or crashes on (runtime/probe.py): one such file is skipped, not the whole table."""
    fmt = by_runtime(runtime).name
    kept, skipped = [], []
    for model in group:
        if not PROBE_IN_CHILD:
            try:
                run, _ = runner_opener(model, runtime, threads, x)()
                run()
                reason = None
            except Exception as exc:  # whatever the runtime raises: the reason goes into the report
                reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        else:
            meta = asdict(model.meta) if model.meta is not None else None
            reason = crash_reason(fmt, model.files[fmt], meta, threads, x.shape[-1])
        if reason is None:
            kept.append(model)
        else:
            skipped.append(
                {
                    "arch": model.arch,
                    "name": model.name,
                    "runtime": runtime,
                    "threads": threads,
                    "precision": model.precision_of(fmt),
                    "reason": reason,
                }
            )
    return kept, skipped


def cell_results(
    group: list[BenchModel],
    timing: Timing,
    arch: str,
    size: int,
    runtime: str,
    threads: int,
    plan: LatencyPlan,
    machine: dict[str, Any],
) -> tuple[list[BenchRecord], list[dict[str, Any]]]:
    """The records and the ratio rows of one timed cell (an arch and input size, in one runtime and thread count):
    each model against the group's baseline at its precision, and a quantized file against its own fp32 file."""
    fmt = by_runtime(runtime).name
    precisions = [m.precision_of(fmt) for m in group]
    records: list[BenchRecord] = []
    ratios: list[dict[str, Any]] = []
    for i, m in enumerate(group):
        size_kb = m.size_kb(fmt)
        extra = {
            "batch": 1,
            "input_size": size,
            "format": fmt,
            "precision": precisions[i],
            "size_kb": size_kb,
            "params": m.params,
            "macs": m.macs,
            "elementwise": m.elementwise,
            "source": m.source,
            "name": m.name,
            "order": "interleaved, rotating every round, sessions re-created per block",
            **RUNTIME_SETTINGS.get(runtime, {}),
            "cpu": cpu(),
            "versions": {"runtime": runtime_version(runtime), **versions()},
            **({"cached_at": timing.cached_at} if timing.cached_at else {}),
            **m.extra,
        }
        record = record_from_times(
            timing.times_ms[i],
            model=arch,
            variant=m.variant,
            runtime=runtime,
            threads=threads,
            warmup=plan.warmup,
            init_ms=timing.init_ms[i],
            machine=machine,
            extra=extra,
        )
        record.api = m.apis.get(runtime)
        records.append(record)
        base = baseline_index(group, precisions, precisions[i])
        ratio, low, high = ratio_interval(timing.times_ms[i], timing.times_ms[base])
        fp32 = fp32_index(group, precisions, i)
        vs_fp32 = list(ratio_interval(timing.times_ms[i], timing.times_ms[fp32])) if fp32 is not None else None
        ratios.append(
            {
                "arch": arch,
                "input_size": size,
                "name": m.name,
                "variant": m.variant,
                "runtime": runtime,
                "threads": threads,
                "runs": timing.rounds,
                "p50_ms": record.p50_ms,
                "ratio": ratio,
                "ci95": [low, high],
                "baseline": group[base].name,
                "params": m.params,
                "macs": m.macs,
                "elementwise": m.elementwise,
                "size_kb": size_kb,
                "source": m.source,
                "precision": precisions[i],
                "vs_fp32": vs_fp32,
                "cached_at": timing.cached_at,
            }
        )
    return records, ratios


def measure_cell(
    cell: list[BenchModel],
    runtime: str,
    threads: int,
    size: int,
    plan: LatencyPlan,
    cache: BenchCache | None,
    advance: Any,
) -> tuple[list[BenchModel], Timing | None, list[dict[str, Any]]]:
    """The models of one cell that ran, their timing (None when none ran) and the refused ones: from the cache
    when every file, the runtime version, the machine and the protocol are unchanged, else measured."""
    fmt = by_runtime(runtime).name
    key = None
    if cache is not None:
        key = cache.key(
            "cell",
            files=[cache.sha256(m.files[fmt]) for m in cell],
            precisions=[m.precision_of(fmt) for m in cell],
            runtime=runtime_version(runtime),
            settings=RUNTIME_SETTINGS.get(runtime, {}),
            threads=threads,
            machine=cache_identity(),
            protocol=[plan.runs, plan.warmup, plan.time_budget_s, size, 1],
        )
        hit = cache.get(key)
        if hit is not None:
            value = hit["value"]
            advance(progress_total(len(cell), plan))
            group = [cell[i] for i in value["kept"]]
            timing = Timing(value["times_ms"], value["init_ms"], value["rounds"], hit["measured_at"]) if group else None
            return group, timing, value["skipped"]
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    x = pixel_levels(x, next((m.meta for m in cell if m.input_dtype(fmt) == "uint8"), None))  # one image for all
    group, refused = openable(cell, runtime, threads, x)
    timing = time_interleaved([runner_opener(m, runtime, threads, x) for m in group], plan, advance) if group else None
    if cache is not None and key is not None:
        kept = [cell.index(m) for m in group]
        times = timing.__dict__ if timing is not None else {"times_ms": [], "init_ms": [], "rounds": 0}
        cache.put(key, {"kept": kept, "skipped": refused, **{k: times[k] for k in ("times_ms", "init_ms", "rounds")}})
    return group, timing, refused


def time_models(
    models: list[BenchModel], plan: LatencyPlan, progress: bool = True, cache: BenchCache | None = None
) -> dict[str, Any]:
    """Time every model in every runtime and thread count, interleaved within each (arch, size); a file the
    runtime cannot open is left out with its reason (``skipped``). With a ``cache``, a cell whose files, runtime,
    machine and protocol are unchanged is read from it (its rows say when they were measured)."""
    from tqdm import tqdm

    machine = this_machine()
    load_start = load_snapshot()
    groups = group_models(models)
    cells = {
        (key, runtime): [m for m in group if by_runtime(runtime).name in m.files]  # a precision the format
        for key, group in groups.items()
        for runtime in plan.runtimes
    }  # lacks has no file: skipped
    grid = [(key, runtime, t) for (key, runtime), group in cells.items() if group for t in plan.threads]
    total = sum(progress_total(len(cells[(key, runtime)]), plan) for key, runtime, _ in grid)
    bar = tqdm(
        total=total,
        desc="timing",
        unit="s" if plan.time_budget_s else "round",
        disable=not progress,
        file=sys.stderr,
        bar_format=BAR_FORMAT,
    )
    records: list[BenchRecord] = []
    ratios: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for (arch, size), runtime, t in grid:
        bar.set_postfix_str(f"{arch} {runtime} {t}t")
        group, timing, refused = measure_cell(cells[((arch, size), runtime)], runtime, t, size, plan, cache, bar.update)
        skipped += refused
        if timing is None:
            continue
        cell_records, cell_ratios = cell_results(group, timing, arch, size, runtime, t, plan, machine)
        records += cell_records
        ratios += cell_ratios
    bar.close()
    budget = plan.time_budget_s
    return {
        "machine": machine,
        "cpu": cpu(),
        "versions": versions(),
        "load": {"start": load_start, "end": load_snapshot()},
        "runs": plan.runs if not budget else None,
        "time_budget_s": budget,
        "warmup": plan.warmup,
        "precisions": list(plan.precisions),
        "records": [r.to_dict() for r in records],
        "ratios": ratios,
        "skipped": skipped,
        "models": [
            {
                "name": m.name,
                "arch": m.arch,
                "variant": m.variant,
                "input_size": m.input_size,
                "precision": m.precision,
                "source": m.source,
            }
            for m in models
        ],
    }


def timeable_runtimes() -> list[str]:
    """Runtimes whose format runs on this machine."""
    return [fmt.runtime for fmt in FORMATS.values() if fmt.runs_here()]

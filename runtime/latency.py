"""Latency of exported models, side by side, through the runners of ``deepsquare.runtime``.

``time_models`` takes models already on disk (exported files, with their cost figures) and
times each (arch, input size) group in every runtime and thread count with the one protocol
of ``deepsquare.runtime.timing``; every record is in the one schema of
``deepsquare.runtime.records`` and every model gets its ratio to the group's baseline (``gap``
when present, else the first model). No torch here: the browser and device paths use it too.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .bundle import BundleMeta
from .files import size_on_disk
from .formats import FORMATS, by_runtime
from .quiet import quiet
from .records import BenchRecord, record_from_times, this_machine
from .timing import Opener, TimingPlan, progress_total, ratio_interval, time_interleaved

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

    def size_kb(self, fmt: str) -> int:
        return round(size_on_disk(self.files[fmt]) / 1024)


@dataclass
class LatencyPlan(TimingPlan):
    runtimes: tuple[str, ...] = ("onnxruntime", "litert")
    threads: tuple[int, ...] = (1,)


def group_models(models: list[BenchModel]) -> dict[tuple[str, int], list[BenchModel]]:
    groups: dict[tuple[str, int], list[BenchModel]] = {}
    for m in models:
        groups.setdefault((m.arch, m.input_size), []).append(m)
    return groups


def baseline_index(group: list[BenchModel]) -> int:
    return next((i for i, m in enumerate(group) if m.variant == "gap"), 0)


def runner_opener(model: BenchModel, runtime: str, threads: int, x: np.ndarray) -> Opener:
    fmt = by_runtime(runtime)

    def open_session():
        with quiet():  # session creation prints delegate and CPU notes from C++
            runner = fmt.open(model.files[fmt.name], model.meta, threads)
        return (lambda: runner.run(x)), runner.init_s

    return open_session


def time_models(models: list[BenchModel], plan: LatencyPlan, progress: bool = True) -> dict[str, Any]:
    """Time every model in every runtime and thread count, interleaved within each (arch, size)."""
    from tqdm import tqdm

    machine = this_machine()
    groups = group_models(models)
    grid = [(key, runtime, t) for key in groups for runtime in plan.runtimes for t in plan.threads]
    total = sum(progress_total(len(groups[key]), plan) for key, _, _ in grid)
    bar = tqdm(total=total, desc="timing", unit="s" if plan.time_budget_s else "round", disable=not progress,
               file=sys.stderr, bar_format=BAR_FORMAT)  # fmt: skip
    records: list[BenchRecord] = []
    ratios: list[dict[str, Any]] = []
    for (arch, size), runtime, t in grid:
        group = groups[(arch, size)]
        bar.set_postfix_str(f"{arch} {runtime} {t}t")
        fmt = by_runtime(runtime).name
        x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
        timing = time_interleaved([runner_opener(m, runtime, t, x) for m in group], plan, bar.update)
        base = baseline_index(group)
        for i, m in enumerate(group):
            size_kb = m.size_kb(fmt)
            extra = {"batch": 1, "input_size": size, "format": fmt, "size_kb": size_kb, "params": m.params,
                     "macs": m.macs, "elementwise": m.elementwise, "source": m.source, "name": m.name,
                     "order": "interleaved, rotating every round, sessions re-created per block",
                     **RUNTIME_SETTINGS.get(runtime, {})}  # fmt: skip
            record = record_from_times(timing.times_ms[i], model=arch, variant=m.variant, runtime=runtime, threads=t,
                                       warmup=plan.warmup, init_ms=timing.init_ms[i], machine=machine,
                                       extra=extra)  # fmt: skip
            records.append(record)
            ratio, low, high = ratio_interval(timing.times_ms[i], timing.times_ms[base])
            ratios.append({"arch": arch, "input_size": size, "name": m.name, "variant": m.variant,
                           "runtime": runtime, "threads": t, "runs": timing.rounds, "p50_ms": record.p50_ms,
                           "ratio": ratio, "ci95": [low, high], "baseline": group[base].name, "params": m.params,
                           "macs": m.macs, "elementwise": m.elementwise, "size_kb": size_kb,
                           "source": m.source})  # fmt: skip
    bar.close()
    budget = plan.time_budget_s
    return {"machine": machine, "runs": plan.runs if not budget else None, "time_budget_s": budget,
            "warmup": plan.warmup, "records": [r.to_dict() for r in records], "ratios": ratios,
            "models": [{"name": m.name, "arch": m.arch, "variant": m.variant, "input_size": m.input_size,
                        "source": m.source} for m in models]}  # fmt: skip


def timeable_runtimes() -> list[str]:
    """Runtimes whose format runs on this machine."""
    return [fmt.runtime for fmt in FORMATS.values() if fmt.runs_here()]

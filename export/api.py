"""``deepsquare.export(...)`` and ``deepsquare.bench(...)``: the export and the benchmark from Python.

The ``deepsquare export`` and ``deepsquare bench`` subcommands are thin wrappers of these. Torch and the
converters are imported by the call, not by ``import deepsquare``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepsquare.runtime.files import size_on_disk
from deepsquare.runtime.formats import FORMATS, parse_format_names
from deepsquare.runtime.options import RUNS, THREADS, WARMUP


@dataclass
class ExportResult:
    """One bundle: its files (every format passed their parity gate), parity figures and sizes, the full report."""

    out: Path  # the bundle folder (model files, model.json, export_report.json)
    files: dict[str, Path] = field(default_factory=dict)  # format -> file in the bundle; {} when the export failed
    parity: dict[str, dict[str, Any]] = field(default_factory=dict)  # format -> max_abs_diff, top1_agreement, ...
    sizes: dict[str, int] = field(default_factory=dict)  # format -> bytes on disk
    report: dict[str, Any] = field(default_factory=dict)  # export_report.json
    report_file: Path | None = None  # where the report was written (beside ``out`` when a failed export left it)

    @property
    def ok(self) -> bool:
        """Every format asked for passed its gate."""
        return not self.failed

    @property
    def failed(self) -> list[str]:
        return [name for name, record in self.report.get("formats", {}).items() if not record.get("passed")]


class ExportFailed(RuntimeError):
    """A format failed its conversion or parity gate: nothing was published, ``out`` is as it was; ``.result`` holds
    the report (each format's parity figures) and where it was written (``.result.report_file``)."""

    def __init__(self, result: ExportResult) -> None:
        reasons = "; ".join(f"{n}: {result.report['formats'][n].get('reason', '?')}" for n in result.failed)
        super().__init__(
            f"export failed for {', '.join(result.failed)} ({reasons}); the previous content of {result.out} is "
            f"untouched, report: {result.report_file}"
        )
        self.result = result


def _names(to: str | Sequence[str]) -> list[str]:
    return parse_format_names(to if isinstance(to, str) else ",".join(to))


def export(
    checkpoint: str | Path,
    *,
    to: str | Sequence[str] = "all",
    out: str | Path | None = None,
    precision: str | None = None,
    calib: str | None = None,
    samples: int = 32,
    jobs: int = 0,
    input: str = "float",
    require_delegated: bool = False,
    parity_report: bool = False,
    keep_float: str = "auto",
    sensitivity: bool = False,
    verbose: bool = False,
    log: Callable[[str], None] | None = print,
) -> ExportResult:
    """Deploy a checkpoint and export it to each format behind the parity gate.

    Args:
        checkpoint: a ``model.ckpt`` written by ``deepsquare train``.
        to: formats, a list or a comma string (``onnx``, ``coreml``, ``tflite``, ``executorch``), or ``"all"``.
        out: the bundle folder (default: ``CHECKPOINT_DIR/export``); replaced whole once every format passed, left
            as it was otherwise. A link to a folder: the bundle goes into that folder. One export at a time per folder.
        precision: ``fp32``, ``fp16`` or ``int8``, applied to each format that offers it (others: their default).
        calib: a ``--data`` spec of the int8 calibration images (default: the checkpoint's data).
        samples: real images of the checkpoint's data in the parity check (beside a fixed random batch).
        jobs: formats converted at once, each in its own process (0: one per CPU core; 1: in this process).
        input: ``"float"`` (the graphs take normalized float, as the model was trained) or ``"uint8"`` (the ONNX,
            TFLite and ExecuTorch graphs take RGB pixels ``[N, H, W, 3]`` at the input size, converted, scaled,
            normalized and transposed inside the graph; Core ML keeps its ImageType).
        require_delegated: fail a TFLite or ExecuTorch graph that leaves an op outside the XNNPACK delegate (the
            export's report names each op and its module either way).
        parity_report: compare every module's output with the PyTorch deploy model in each format that exposes
            intermediate tensors (``parity_layers.json`` / ``.md``; done anyway for a format whose gate fails).
        keep_float: int8 only: what stays float, ``"auto"`` (each format's measured default), ``"none"``, or
            comma-separated unit kinds and/or module paths (``"se,classifier"``; the kinds:
            `UNIT_KINDS` in `deepsquare.export.int8_units`).
        sensitivity: int8 only: quantize one unit kind at a time and keep the sensitive ones float, per format
            (instead of ``keep_float``).
        verbose: show the converters' own output.
        log: where progress lines go (``None``: nowhere).

    Returns:
        The bundle's files, parity figures and sizes ([ExportResult][deepsquare.export.api.ExportResult]).

    Raises:
        ExportFailed: a format failed its gate (``out`` is left as it was; ``.result`` has the report).
        ExportError, CheckpointError, ConverterMissing: a bad request, refused before any conversion; another export
            writing ``out``; a disk error (``out`` is left as it was).

    Examples:
        >>> import deepsquare as ds
        >>> result = ds.export("runs/sq/model.ckpt", to=["onnx"], out="runs/sq/bundle")
        >>> result.parity["onnx"]["top1_agreement"], result.sizes["onnx"]
    """
    from .pipeline import ExportRequest, export_bundle  # torch and the converters: imported by the call

    checkpoint = Path(checkpoint)
    bundle = Path(out) if out is not None else checkpoint.parent / "export"
    request = ExportRequest(
        checkpoint=checkpoint,
        formats=_names(to),
        out=bundle,
        precision=precision,
        calib=calib,
        samples=samples,
        verbose=verbose,
        jobs=jobs,
        input=input,
        require_delegated=require_delegated,
        parity_report=parity_report,
        keep_float=keep_float,
        sensitivity=sensitivity,
    )
    result = export_result(export_bundle(request, log=log or (lambda line: None)), bundle)
    if not result.ok:
        raise ExportFailed(result)
    return result


def export_result(done: Any, bundle: Path) -> ExportResult:
    """What :func:`export` returns for the pipeline's ``Exported`` ``done`` of the bundle folder ``bundle``."""
    result = ExportResult(out=bundle, report=done.report, report_file=done.report_file)
    for name, record in done.report["formats"].items():
        result.parity[name] = dict(record.get("parity") or {})
        path = bundle / FORMATS[name].file
        if done.ok and path.exists():  # a failed export published nothing: files in --out are the previous bundle's
            result.files[name] = path
            result.sizes[name] = size_on_disk(path)
    return result


@dataclass
class BenchResult:
    """A latency benchmark: the records (one per model x runtime x precision x threads) and the report files."""

    out: Path  # bench.md, bench.json, bench.png
    records: list[dict[str, Any]]  # the benchmark records (model, variant, runtime, p50_ms, ...)
    ratios: list[dict[str, Any]]  # each variant's p50 ratio to the baseline with its 95% interval
    files: list[dict[str, Any]] = field(default_factory=list)  # per file: size, top-1, cold start, memory, p50/p90
    raw: dict[str, Any] = field(repr=False, default_factory=dict)  # everything written to bench.json


def bench(
    models: Sequence[str | Path] = (),
    *,
    arch: str | Sequence[str] | None = None,
    variant: str | Sequence[str] | None = None,
    to: str | Sequence[str] = ("onnx", "tflite"),
    precision: str | Sequence[str] | None = None,
    threads: Sequence[int] = THREADS,
    runs: int = RUNS,
    warmup: int = WARMUP,
    time_budget: float | None = None,
    input_size: int = 224,
    num_classes: int = 1000,
    add_records: Sequence[str | Path] = (),
    out: str | Path = "runs/bench",
    progress: bool = True,
    data: str | None = None,
    images: int | None = None,
    cold_starts: int = 3,
    cache: bool = True,
) -> BenchResult:
    """Time models side by side (interleaved rounds, fresh sessions per block) and their ratio to GAP.

    Args:
        models: checkpoints (files) and bundles (folders with ``model.json``); none: the variants of ``arch`` with
            random weights.
        arch: the archs of the random-weight models (a list or a comma string).
        variant: their variants (a list or a comma string; ``gap`` is always added).
        to: the formats to time, one runtime each (``onnx``: ONNX Runtime, ``tflite``: LiteRT, ``executorch``).
        precision: precisions exported and timed side by side (default: each format's own default).
        threads: runtime thread counts, each its own cell.
        runs: timed rounds per model.
        warmup: untimed rounds per block of new sessions.
        time_budget: instead of ``runs``, seconds of rounds per (arch, runtime, threads) cell.
        add_records: JSON record files measured elsewhere (``deepsquare profile --out``), shown beside.
        out: the report folder.
        data: held-out images of the per-file rows of checkpoints and bundles (a ``--data`` spec; default: the
            data each model was trained on, its test split).
        images: use the first ``images`` held-out images (default: all).
        cold_starts: fresh processes per load / first-inference / memory figure.
        cache: reuse the measurements in ``out/bench-cache.json`` whose files, runtime, machine and protocol are
            unchanged (``False``: measure everything again).

    Returns:
        The records and ratios ([BenchResult][deepsquare.export.api.BenchResult]), also written to ``out``.
    """
    from .bench_run import run_bench_and_write  # torch: imported by the call

    def joined(value: str | Sequence[str] | None) -> str | None:
        return value if value is None or isinstance(value, str) else ",".join(value)

    args = argparse.Namespace(
        models=[str(m) for m in models],
        arch=joined(arch),
        variants=joined(variant),
        to=_names(to),
        precision=None if precision is None else joined(precision).split(","),
        threads=list(threads),
        runs=runs,
        warmup=warmup,
        time_budget=time_budget,
        input_size=input_size,
        num_classes=num_classes,
        add_records=[str(r) for r in add_records],
        out=Path(out),
        quiet=not progress,
        data=data,
        images=images,
        cold_starts=cold_starts,
        no_cache=not cache,
    )
    result = run_bench_and_write(args)
    return BenchResult(
        out=Path(out), records=result["records"], ratios=result["ratios"], files=result.get("files", []), raw=result
    )

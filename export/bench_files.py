"""The per-file rows of ``deepsquare bench``: for every file of a checkpoint or bundle (and its PyTorch model),
size, held-out top-1 and its paired difference to PyTorch, cold start, peak memory, steady p50 / p90 and the
ratio to gap. The steady latencies come from the interleaved timing (``deepsquare.runtime.latency``); the rest
is measured here, each figure through the result cache (``deepsquare.runtime.bench_cache``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from deepsquare.runtime.bench_cache import BenchCache
from deepsquare.runtime.cold_start import cold_start
from deepsquare.runtime.files import size_on_disk
from deepsquare.runtime.formats import FORMATS
from deepsquare.runtime.latency import BenchModel
from deepsquare.runtime.machine import cache_identity, runtime_version
from deepsquare.train.checkpoint import Checkpoint, CheckpointError
from deepsquare.train.data import DataError
from deepsquare.train.stats import paired_difference

from .bench_accuracy import HeldOut, cached_predictions, file_predictions, held_out, torch_cold_start, torch_predictions

Note = Callable[[str], None]


def reference_of(model: BenchModel) -> tuple[Path | None, str]:
    """The PyTorch model's checkpoint and the data it was trained on: the checkpoint benched, or the one a
    bundle's model.json names (None when it is no longer there)."""
    source = Path(model.source)
    if source.is_file():
        return source, Checkpoint.load(source).data
    provenance = model.meta.provenance if model.meta is not None else {}
    checkpoint = Path(str(provenance.get("checkpoint", "")))
    return (checkpoint if provenance.get("checkpoint") and checkpoint.is_file() else None), str(
        provenance.get("data") or ""
    )


def cached_cold(cache: BenchCache, key_parts: dict[str, Any], measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Cold-start figures from the cache, or measured (a failure is kept as ``cold_error``, not cached)."""
    key = cache.key("cold", machine=cache_identity(), **key_parts)
    hit = cache.get(key)
    if hit is not None:
        return {**hit["value"], "cold_cached_at": hit["measured_at"]}
    try:
        value = measure()
    except (RuntimeError, OSError) as exc:
        return {"cold_error": str(exc)[:300]}
    cache.put(key, value)
    return value


def accuracy_cells(predicted: list[int], reference: list[int] | None, data: HeldOut) -> dict[str, Any]:
    """Top-1, and against the PyTorch model's top-1s on the same images: the paired difference of accuracy
    (points, 95% interval) and the agreement (share of images with the same top-1 class)."""
    correct = [int(p == label) for p, label in zip(predicted, data.labels.tolist(), strict=True)]
    cells: dict[str, Any] = {"top1": 100.0 * sum(correct) / len(correct), "vs_pytorch": None, "agreement": None}
    if reference is not None:
        ref_correct = [int(p == label) for p, label in zip(reference, data.labels.tolist(), strict=True)]
        cells["vs_pytorch"] = paired_difference(correct, ref_correct)
        cells["agreement"] = 100.0 * sum(a == b for a, b in zip(predicted, reference, strict=True)) / len(predicted)
    return {**cells, "images": len(correct), "data": data.describe()}


def torch_row(checkpoint: Path, model: BenchModel, data: HeldOut | None, cache: BenchCache, settings: dict) -> dict:
    """The PyTorch reference row; its per-image list under ``_correct`` (dropped before writing)."""
    sha = cache.sha256(checkpoint)
    row: dict[str, Any] = {
        "name": model.name,
        "arch": model.arch,
        "source": model.source,
        "format": "pytorch",
        "runtime": "pytorch",
        "precision": "fp32",
        "size_kb": round(size_on_disk(checkpoint) / 1024),
        "sha256": sha,
        "file": str(checkpoint),
        "threads": settings["threads"],
        "cached": {},
    }
    if data is not None:
        predicted, when = cached_predictions(
            cache, sha, "pytorch", "fp32", data, lambda: torch_predictions(checkpoint, data)
        )
        row.update(accuracy_cells(predicted, None, data), _predicted=predicted)
        row["cached"]["accuracy"] = when
    parts = {"sha": sha, "runtime": f"torch {torch.__version__}", "threads": settings["threads"]}
    parts["starts"] = settings["starts"]
    cold = cached_cold(
        cache, parts, lambda: torch_cold_start(checkpoint, settings["threads"], model.input_size, settings["starts"])
    )
    row["cached"]["cold"] = cold.pop("cold_cached_at", None)
    return {**row, **cold}


def file_row(
    model: BenchModel,
    fmt: str,
    data: HeldOut | None,
    reference: list[int] | None,
    cache: BenchCache,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """One exported file's row: size, accuracy, cold start (timing joined later by ``join_timing``)."""
    path, runtime = model.files[fmt], FORMATS[fmt].runtime
    sha, precision, dtype = cache.sha256(path), model.precision_of(fmt), model.input_dtype(fmt)
    row: dict[str, Any] = {
        "name": model.name,
        "arch": model.arch,
        "source": model.source,
        "format": fmt,
        "runtime": runtime,
        "precision": precision,
        "input_dtype": dtype,
        "size_kb": model.size_kb(fmt),
        "sha256": sha,
        "file": str(path),
        "threads": settings["threads"],
        "cached": {},
    }
    if data is not None:
        try:
            predicted, when = cached_predictions(
                cache, sha, runtime, precision, data, lambda: file_predictions(model, fmt, data, settings["threads"])
            )
            row.update(accuracy_cells(predicted, reference, data))
            row["cached"]["accuracy"] = when
        except Exception as exc:  # whatever the runtime raises on this file: the row says it
            row["accuracy_error"] = " ".join(str(exc).split())[:300] or type(exc).__name__
    meta = asdict(model.meta) if model.meta is not None else None
    parts = {"sha": sha, "runtime": runtime_version(runtime), "threads": settings["threads"]}
    parts.update(starts=settings["starts"], dtype=dtype)
    cold = cached_cold(
        cache,
        parts,
        lambda: cold_start(fmt, runtime, path, meta, settings["threads"], model.input_size, dtype, settings["starts"]),
    )
    row["cached"]["cold"] = cold.pop("cold_cached_at", None)
    return {**row, **cold}


def join_timing(row: dict[str, Any], result: dict[str, Any]) -> None:
    """The steady p50 / p90 (with intervals) and the ratio to gap of the row's file, from the timing records."""
    for record in result["records"]:
        extra = record["extra"]
        if (extra.get("source"), extra.get("name"), extra.get("format"), extra.get("precision"), record["threads"]) == (
            row["source"],
            row["name"],
            row["format"],
            row["precision"],
            row["threads"],
        ):
            row.update(p50_ms=record["p50_ms"], p90_ms=record["p90_ms"], runs=record["runs"])
            row.update(p50_ci95=extra.get("p50_ci95"), p90_ci95=extra.get("p90_ci95"))
            row["cached"]["timing"] = extra.get("cached_at")
            extra.update({k: row.get(k) for k in FIGURES if row.get(k) is not None})
    for ratio in result["ratios"]:
        if (ratio["source"], ratio["name"], ratio["runtime"], ratio["precision"], ratio["threads"]) == (
            row["source"],
            row["name"],
            row["runtime"],
            row["precision"],
            row["threads"],
        ):
            row.update(ratio=ratio["ratio"], ci95=ratio["ci95"], baseline=ratio["baseline"], vs_fp32=ratio["vs_fp32"])


# What a file row adds to its timing record's extra (bench.json's records carry every figure of the table).
FIGURES = (
    "top1",
    "vs_pytorch",
    "agreement",
    "images",
    "data",
    "load_ms",
    "first_ms",
    "import_ms",
    "peak_rss_mb",
    "base_rss_mb",
)


def load_held_out(spec: str, size: int, images: int | None, note: Note) -> HeldOut | None:
    if not spec:
        note("no --data given and the model does not name the data it was trained on: no accuracy column")
        return None
    try:
        return held_out(spec, size, images)
    except (DataError, OSError, ValueError) as exc:
        note(f"held-out accuracy not measured: {exc}")
        return None


def file_rows(
    models: list[BenchModel], result: dict[str, Any], settings: dict[str, Any], cache: BenchCache, note: Note
) -> list[dict[str, Any]]:
    """Rows for the models of checkpoints and bundles (random-weight models have no data: no rows).

    ``settings``: ``data`` (a spec or None: the model's own), ``images`` (a limit or None), ``starts`` (child
    processes per cold-start figure), ``threads`` (of the cold starts and the rows' timing)."""
    rows: list[dict[str, Any]] = []
    by_source: dict[str, list[BenchModel]] = {}
    for m in models:
        if m.meta is not None and (Path(m.source).is_file() or (Path(m.source) / "model.json").is_file()):
            by_source.setdefault(m.source, []).append(m)
    for source, group in by_source.items():
        try:
            checkpoint, trained_on = reference_of(group[0])
        except CheckpointError as exc:
            checkpoint, trained_on = None, ""
            note(f"{source}: its checkpoint does not load ({exc}): no PyTorch reference row")
        if checkpoint is None and not Path(source).is_file():
            note(f"{source}: the checkpoint its model.json names is not there: no PyTorch row, no paired difference")
        data = load_held_out(settings.get("data") or trained_on, group[0].input_size, settings.get("images"), note)
        reference = None
        if checkpoint is not None:
            ref = torch_row(checkpoint, group[0], data, cache, settings)
            reference = ref.pop("_predicted", None)
            rows.append(ref)
        for m in group:
            for fmt in sorted(m.files):
                if FORMATS[fmt].runs_here():
                    rows.append(file_row(m, fmt, data, reference, cache, settings))
    for row in rows:
        join_timing(row, result)
    return rows

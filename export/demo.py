"""The main job behind ``deepsquare demo``: train, export, benchmark, one report (see ``demo_cli``)."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from deepsquare.runtime.bench_report import markdown_table as latency_table
from deepsquare.runtime.bench_report import write_outputs
from deepsquare.runtime.bench_table import busy_summary
from deepsquare.runtime.files import size_on_disk, write_text_atomically
from deepsquare.runtime.formats import FORMATS, by_runtime
from deepsquare.runtime.latency import LatencyPlan, time_models
from deepsquare.train.checkpoint import Checkpoint
from deepsquare.train.data import DataError, load_data
from deepsquare.train.stats import paired_difference
from deepsquare.train.trainer import TrainConfig, TrainingError, top1_correct, train
from deepsquare.train.zoo_table import TORCHVISION_COUNTS, markdown_table, parameter_rows

from . import bench
from .bench_isqrt import run as time_isqrt
from .demo_samples import sample_answers, samples_markdown
from .pipeline import ExportError, ExportRequest, prepare_out, run_export

ARCH = "shufflenetv2_x0_5"
DEMO_FORMATS = {name: fmt for name, fmt in FORMATS.items() if fmt.in_all}  # what --to all exports
TIMED_RUNTIMES = tuple(fmt.runtime for fmt in DEMO_FORMATS.values() if fmt.runs_here())
# (run name, variant, DSoP stages)
RUNS = (("gap", "gap", ()), ("se", "se", ()), ("sp+ss+sex+dsop", "sp+ss+sex", ("stage2", "stage3", "stage4")))
BASELINE = "gap"


def log(message: str) -> None:
    print(f"[deepsquare demo] {message}", flush=True)


def train_and_export(name: str, variant: str, stages: tuple[str, ...], args: argparse.Namespace) -> dict[str, Any]:
    out = args.out / name
    started = time.perf_counter()
    config = TrainConfig(
        arch=ARCH,
        variant=variant,
        data=args.data,
        epochs=args.epochs,
        lr=args.lr,
        dropout=args.dropout,
        dsop_stages=stages,
        out=str(out),
        seed=args.seed,
    )
    ckpt = train(config, quiet=True)
    train_s = time.perf_counter() - started
    metrics = Checkpoint.load(ckpt).metrics[-1]
    split, correct = held_out_correct(ckpt, args.seed)
    test_top1 = 100 * sum(correct) / len(correct)
    log(
        f"    {name}: val top-1 {metrics['val_top1']:.1f}%, {split} top-1 {test_top1:.1f}% after {args.epochs} epochs "
        f"({train_s:.0f} s); exporting"
    )
    # uint8 bundles, as the apps take them: RGB pixels in, normalization inside the graph (export/prologue.py)
    request = ExportRequest(ckpt, list(DEMO_FORMATS), out / "export", input="uint8")
    ok, report = run_export(request, log=lambda m: log(f"      {m}"))
    formats = {}
    for fmt, record in report["formats"].items():
        size = size_on_disk(out / "export" / record.get("file", "")) if record.get("file") else 0
        parity = record.get("parity") or {}
        formats[fmt] = {
            "passed": record["passed"],
            "size_kb": round(size / 1024),
            "reason": record.get("reason", ""),
            "max_abs_diff": parity.get("max_abs_diff"),
            "top1_agreement": parity.get("top1_agreement"),
            "note": record.get("note", ""),
        }
    return {
        "name": name,
        "variant": variant,
        "dsop": list(stages),
        "checkpoint": str(ckpt),
        "val_top1": metrics["val_top1"],
        "val_top5": metrics["val_top5"],
        "held_out_split": split,
        "held_out_top1": test_top1,
        "held_out_correct": correct,
        "train_s": round(train_s, 1),
        "params_training": report["deploy"]["params_training"],
        "params_deploy": report["deploy"]["params_deploy"],
        "export_ok": ok,
        "formats": formats,
    }


def held_out_correct(ckpt: Path, seed: int) -> tuple[str, list[int]]:
    """Per image of the held-out test split (val when the data has none): 1 where the final model, in eval mode,
    ranks the label first. Computed from the checkpoint: the model the exported files are checked against."""
    checkpoint = Checkpoint.load(ckpt)
    data = load_data(checkpoint.data, checkpoint.input_size, seed)
    split, images = ("test", data.test) if data.test is not None else ("val", data.val)
    return split, top1_correct(checkpoint.build_model(), images, checkpoint.mean, checkpoint.std).tolist()


def paired_to_baseline(runs: list[dict[str, Any]]) -> None:
    """Each run's difference to gap, paired image by image over the held-out split (one seed: the interval is
    test-sampling noise only); the per-image lists are dropped from the run records afterwards."""
    base = next(r for r in runs if r["name"] == BASELINE)
    for run in runs:
        if run is not base:
            run["vs_gap"] = paired_difference(run["held_out_correct"], base["held_out_correct"])
    for run in runs:
        run.pop("held_out_correct")


def benchmark(runs: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """The trained models' exported files as they ship, then the same variants at 224x224, 1000 classes."""
    formats = {by_runtime(runtime).name for runtime in TIMED_RUNTIMES}
    trained = []
    for run in runs:
        if run["export_ok"] and all(run["formats"].get(f, {}).get("passed") for f in formats):
            trained.append(bench.bundle_model(args.out / run["name"] / "export", formats, name=run["name"]))
        else:
            log(f"    {run['name']}: not timed, its export failed")
    plan = LatencyPlan(runs=args.runs, warmup=args.warmup, runtimes=TIMED_RUNTIMES, threads=(1,))
    with tempfile.TemporaryDirectory(prefix="deepsquare-demo-") as tmp:
        imagenet = [
            bench.random_variant(ARCH, variant, 224, 1000, Path(tmp) / variant, formats)
            for variant in dict.fromkeys(variant for _, variant, _ in RUNS)
        ]
        return time_models(trained + imagenet, plan, progress=False)


def ratio_text(row: dict[str, Any]) -> str:
    """``x1.124 (1.101-1.148)``, ``ns`` when the 95% interval contains 1: a bare ratio on a busy machine misleads."""
    if row["name"] == row["baseline"]:
        return "x1 (the baseline)"
    low, high = row["ci95"]
    return f"x{row['ratio']:.3f} ({low:.3f}-{high:.3f}){' ns' if low <= 1 <= high else ''}"


def vs_gap_cell(run: dict[str, Any]) -> str:
    if "vs_gap" not in run:
        return "baseline"
    d = run["vs_gap"]
    return f"{d['diff']:+.1f} ({d['ci95'][0]:+.1f} to {d['ci95'][1]:+.1f}){'' if d['measured'] else ' ns'}"


def markdown(report: dict[str, Any]) -> str:
    machine = report["machine"]
    split = report["runs"][0]["held_out_split"]
    lines = [
        "# deepsquare report",
        "",
        f"Machine: {machine['platform']}, torch {machine['torch']}, {machine['threads']} threads. "
        f"Data: {report['data']}, {report['epochs']} epochs, seed {report['seed']}, dropout {report['dropout']} for "
        "every variant.",
        "",
        *samples_markdown(report["samples"], Path(report["out"])),
        "## ShuffleNetV2 x0.5: accuracy, export parity, size, latency of the exported files",
        "",
        f"| model | val top-1 | {split} top-1 | vs gap on {split}, points (95% CI) | params train -> deploy | "
        + " | ".join(fmt.title for fmt in DEMO_FORMATS.values())
        + " | "
        + " | ".join(f"{by_runtime(r).runtime_title} p50 ms (x gap)" for r in TIMED_RUNTIMES)
        + " |",
        "|---|---|---|---|---|" + "---|" * (len(DEMO_FORMATS) + len(TIMED_RUNTIMES)),
    ]
    timed = {(r["name"], r["runtime"]): r for r in report["latency"]["ratios"] if r["source"] != bench.RANDOM_WEIGHTS}
    for run in report["runs"]:
        cells = []
        for fmt in DEMO_FORMATS:
            f = run["formats"].get(fmt, {})
            if not f.get("passed"):
                cells.append(f"FAILED: {f.get('reason', 'not run')}")
            elif f.get("max_abs_diff") is not None:
                cells.append(f"ok, diff {f['max_abs_diff']:.1g}, {f['size_kb']} KB")
            else:
                cells.append(f"converted, {f['size_kb']} KB; parity not run (needs macOS)")
        for runtime in TIMED_RUNTIMES:
            r = timed.get((run["name"], runtime))
            cells.append(f"{r['p50_ms']:.2f} (x{r['ratio']:.2f})" if r else "not timed")
        accuracy = f"{run['val_top1']:.1f}% | {run['held_out_top1']:.1f}% | {vs_gap_cell(run)}"
        lines.append(
            f"| {run['name']} | {accuracy} | {run['params_training']:,} -> {run['params_deploy']:,} | "
            + " | ".join(cells)
            + " |"
        )
    images = next((r["vs_gap"]["images"] for r in report["runs"] if "vs_gap" in r), 0)
    held_out = (
        f"the {images} held-out test images (never used to select anything; `best.ckpt` is chosen on val)"
        if split == "test"
        else f"the {images} val images: **this data has no held-out test split**, "
        "and val is what `best.ckpt` is chosen on"
    )
    lines += [
        "",
        f"Top-1 of the final model of each run. *vs gap*: paired over {held_out}, per image correct under the "
        "variant minus correct under gap; mean in points with a 95% interval (normal approximation over the "
        "per-image differences); *ns* when it contains 0. With one seed this interval covers test-sampling noise "
        "only, not seed-to-seed variation: `deepsquare ablate --seeds 5` measures that.",
    ]
    lines += [
        "",
        "## Latency: the exported models above, then ShuffleNetV2 x0.5 at 224x224 (1000 classes, random weights)",
        "",
        latency_table(report["latency"]),
        "Core ML latency is not measured here: Core ML predicts on macOS only "
        "(there: `deepsquare profile ios model.mlpackage`). Phones: `deepsquare profile android`.",
    ]
    lines += [
        "",
        "## Parameters (1000 classes): plain count, then what each variant adds",
        "",
        markdown_table(report["parameters"]),
        "",
        "## iSQRT-COV vs eigh (forward+backward, batch 64, d 128)",
        "",
        *[f"- {name}: {ms:.1f} ms" for name, ms in report["isqrt_vs_eigh_ms"].items()],
        "",
        "",
    ]
    return "\n".join(lines)


def run_demo(args: argparse.Namespace) -> int:
    """The main job with ``deepsquare demo``'s flags (checked by ``deepsquare.export.demo_cli``)."""
    try:
        prepare_out(args.out)
    except ExportError as exc:
        print(f"deepsquare demo: error: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    log("1/4 parameter counts of every arch x variant against torchvision's")
    rows = parameter_rows()
    mismatches = [r["arch"] for r in rows if r["gap"] != TORCHVISION_COUNTS[str(r["arch"])]]
    log(f"    plain models equal torchvision's counts: {'yes' if not mismatches else f'NO: {mismatches}'}")
    log(
        f"2/4 train ShuffleNetV2 x0.5 on {args.data} and export each model to ONNX, Core ML, TFLite, ExecuTorch "
        "(uint8 pixel input)"
    )
    runs = []
    try:
        for name, variant, stages in RUNS:
            runs.append(train_and_export(name, variant, stages, args))
    except (TrainingError, DataError, ValueError) as exc:
        print(f"deepsquare demo: error: {exc}", file=sys.stderr)
        return 1
    paired_to_baseline(runs)
    samples = sample_answers(args.out / runs[-1]["name"] / "export")
    right = sum(r["top1"] == r["label"] for r in samples.get("rows", []))
    log(f"    held-out samples answered by {runs[-1]['name']}: {right} of {len(samples.get('rows', []))} right")
    log(
        "3/4 latency, batch 1, 1 thread, ONNX Runtime, LiteRT and ExecuTorch: the exported models, and the 224x224 "
        "ImageNet shape"
    )
    latency = benchmark(runs, args)
    latency["busy"] = busy_summary(latency)
    write_outputs(latency, args.out / "bench")
    for r in latency["ratios"]:
        log(
            f"    {r['arch']} {r['input_size']}px {r['name']:<15} {r['runtime']:<12} p50 {r['p50_ms']:6.2f} ms, "
            f"{ratio_text(r)}" + ("" if r["name"] == r["baseline"] else f" of {r['baseline']}")
        )
    if latency["busy"]["warning"]:
        log(f"    {latency['busy']['warning']}")
    log("4/4 iSQRT-COV vs eigh square root, forward+backward, batch 64, d 128")
    times = time_isqrt(batch=64, dim=128, iterations=5, runs=5, warmup=1, seed=args.seed)
    medians = {name: sorted(v)[len(v) // 2] * 1e3 for name, v in times.items()}
    ok = not mismatches and all(r["export_ok"] for r in runs)
    report = {
        "ok": ok,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": str(torch.__version__),
            "threads": torch.get_num_threads(),
        },
        "out": str(args.out),
        "samples": samples,
        "data": args.data,
        "epochs": args.epochs,
        "seed": args.seed,
        "dropout": args.dropout,
        "runs": runs,
        "parameters": rows,
        "latency": latency,
        "isqrt_vs_eigh_ms": medians,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    write_text_atomically(args.out / "report.json", json.dumps(report, indent=2) + "\n")
    write_text_atomically(args.out / "report.md", markdown(report))
    log(f"done in {report['wall_s']} s, {'all checks passed' if ok else 'SOME CHECKS FAILED'}")
    print(f"report: {(args.out / 'report.md').resolve()}")
    return 0 if ok else 1

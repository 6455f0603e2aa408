"""``deepsquare-bench``: latency of each DeepSquare variant against GAP and SE, per runtime.

    deepsquare-bench --arch shufflenetv2_x0_5,resnet18 --variants gap,se,sp,ss,sex,sen,sp+sex \\
                     --runtimes onnxruntime,litert --threads 1,2 --input-size 224 --out runs/bench

Each variant is built (weights do not matter for latency; BatchNorm statistics are set on
random batches so squared activations stay finite), deploy-transformed, exported, and timed
through deepsquare.runtime at batch 1. Variants are interleaved run by run (A B C A B C ...)
so drift on a shared machine hits all of them alike; each variant's latency is reported as a
ratio to ``gap`` (geometric mean of the per-round ratios, with a 95% interval). Also params,
MACs (counted by hooks on every conv and linear layer) and file size per format. Writes
bench.json (records in the one schema), bench.csv, bench.md, bench.png (overhead vs gap
per runtime; latency vs params), and prints the table.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deepsquare.runtime.bundle import BundleMeta
from deepsquare.runtime.records import BenchRecord, record_from_times, this_machine
from deepsquare.runtime.runners import LiteRTRunner, OnnxRunner
from deepsquare.train import build_model, count_parameters

from .deploy import deploy_transform
from .formats import FORMATS

RUNNERS = {"onnxruntime": ("onnx", OnnxRunner), "litert": ("tflite", LiteRTRunner)}


def count_macs(model: nn.Module, input_size: int) -> int:
    """Multiply-accumulates of every Conv2d and Linear for one image (elementwise ops not counted)."""
    total = 0

    def conv_hook(m: nn.Conv2d, _inputs, out) -> None:
        nonlocal total
        total += out.numel() // out.shape[0] * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def linear_hook(m: nn.Linear, _inputs, out) -> None:
        nonlocal total
        total += out.numel() // out.shape[0] * m.in_features

    handles = [m.register_forward_hook(conv_hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    handles += [m.register_forward_hook(linear_hook) for m in model.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, input_size, input_size))
    for h in handles:
        h.remove()
    return total


def calibrate_batchnorm(model: nn.Module, input_size: int, batches: int = 3) -> None:
    """Set BN running statistics from random batches (cumulative average), no weight update."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn(4, 3, input_size, input_size))
    model.eval()


def ratio_interval(variant_ms: list[float], gap_ms: list[float]) -> tuple[float, float, float]:
    """Geometric-mean ratio of paired rounds and its 95% interval (normal approximation on logs)."""
    logs = [math.log(v / g) for v, g in zip(variant_ms, gap_ms, strict=True)]
    mean = statistics.fmean(logs)
    half = 1.96 * (statistics.stdev(logs) / math.sqrt(len(logs)) if len(logs) > 1 else 0.0)
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def build_variant(arch: str, variant: str, input_size: int, num_classes: int, folder: Path, formats: set[str]) -> dict:
    stem = "cifar" if input_size <= 64 else "imagenet"
    model = build_model(arch, variant, num_classes, stem=stem)
    torch.manual_seed(0)
    calibrate_batchnorm(model, input_size)
    example = torch.randn(2, 3, input_size, input_size)
    deployed, _ = deploy_transform(model, example)
    meta = BundleMeta(arch, variant, [str(i) for i in range(num_classes)], input_size, [0.5] * 3, [0.25] * 3)
    files = {}
    for fmt in sorted(formats):
        FORMATS[fmt].fn(deployed, example, folder, meta)
        path = folder / FORMATS[fmt].file
        files[fmt] = path
    return {"arch": arch, "variant": variant, "params": count_parameters(deployed),
            "macs": count_macs(deployed, input_size), "files": files,
            "size_kb": {f: round(p.stat().st_size / 1024) for f, p in files.items()}}  # fmt: skip


def run_bench(args: argparse.Namespace, progress: bool = True) -> dict[str, Any]:
    archs = [a.strip() for a in args.arch.split(",") if a.strip()]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if "gap" not in variants:
        variants.insert(0, "gap")  # every ratio is to gap
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    unknown = [r for r in runtimes if r not in RUNNERS]
    if unknown:
        raise ValueError(f"unknown runtime(s) {unknown}; valid: {', '.join(RUNNERS)}")
    threads = [int(t) for t in str(args.threads).split(",") if t.strip()]
    formats = {RUNNERS[r][0] for r in runtimes}
    machine = this_machine()
    from tqdm import tqdm

    workdir = Path(tempfile.mkdtemp(prefix="deepsquare-bench-"))
    models: list[dict] = []
    bar = tqdm(total=len(archs) * len(variants), desc="export", unit="model", disable=not progress, file=sys.stderr)
    for arch in archs:
        for variant in variants:
            folder = workdir / f"{arch}-{variant}"
            folder.mkdir()
            models.append(build_variant(arch, variant, args.input_size, args.num_classes, folder, formats))
            bar.update()
    bar.close()
    records: list[BenchRecord] = []
    ratios: list[dict[str, Any]] = []
    x = np.random.default_rng(0).standard_normal((1, 3, args.input_size, args.input_size)).astype(np.float32)
    grid = [(arch, runtime, t) for arch in archs for runtime in runtimes for t in threads]
    bar = tqdm(total=len(grid) * (args.warmup + args.runs), desc="timing", unit="round", disable=not progress,
               file=sys.stderr)  # fmt: skip
    for arch, runtime, t in grid:
        group = [m for m in models if m["arch"] == arch]
        fmt, runner_class = RUNNERS[runtime]
        runners = [runner_class(m["files"][fmt], t) for m in group]
        times: list[list[float]] = [[] for _ in group]
        for round_index in range(args.warmup + args.runs):
            for i, runner in enumerate(runners):  # interleaved: A B C A B C ...
                start = time.perf_counter()
                runner.run(x)
                elapsed = (time.perf_counter() - start) * 1e3
                if round_index >= args.warmup:
                    times[i].append(elapsed)
            bar.update()
        gap_index = next(i for i, m in enumerate(group) if m["variant"] == "gap")
        for i, m in enumerate(group):
            record = record_from_times(
                times[i], model=arch, variant=m["variant"], runtime=runtime, threads=t, warmup=args.warmup,
                init_ms=runners[i].init_s * 1e3, machine=machine,
                extra={"batch": 1, "input_size": args.input_size, "params": m["params"], "macs": m["macs"],
                       "size_kb": m["size_kb"][fmt], "format": fmt},
            )  # fmt: skip
            records.append(record)
            ratio, low, high = ratio_interval(times[i], times[gap_index])
            ratios.append({"arch": arch, "variant": m["variant"], "runtime": runtime, "threads": t,
                           "p50_ms": record.p50_ms, "ratio_to_gap": ratio, "ci95": [low, high],
                           "params": m["params"], "macs": m["macs"], "size_kb": m["size_kb"][fmt]})  # fmt: skip
    bar.close()
    return {"machine": machine, "input_size": args.input_size, "runs": args.runs, "warmup": args.warmup,
            "records": [r.to_dict() for r in records], "ratios": ratios}  # fmt: skip


def markdown_table(result: dict[str, Any]) -> str:
    lines = [
        f"Batch 1, {result['input_size']}px, {result['runs']} interleaved runs after {result['warmup']} warm-up, "
        f"{result['machine']}.",
        "",
        "| arch | variant | runtime | threads | p50 ms | ratio to gap (95% CI) | params | MACs | file KB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["ratios"]:
        lines.append(
            f"| {r['arch']} | {r['variant']} | {r['runtime']} | {r['threads']} | {r['p50_ms']:.2f} | "
            f"{r['ratio_to_gap']:.3f} ({r['ci95'][0]:.3f}-{r['ci95'][1]:.3f}) | {r['params']:,} | {r['macs']:,} | "
            f"{r['size_kb']:,} |"
        )
    return "\n".join(lines) + "\n"


def write_outputs(result: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["arch", "variant", "runtime", "threads", "p50_ms", "ratio_to_gap",
                                                "ci95_low", "ci95_high", "params", "macs", "size_kb"])  # fmt: skip
    writer.writeheader()
    for r in result["ratios"]:
        row = {k: v for k, v in r.items() if k != "ci95"}
        writer.writerow({**row, "ci95_low": r["ci95"][0], "ci95_high": r["ci95"][1]})
    (out / "bench.csv").write_text(buffer.getvalue())
    (out / "bench.md").write_text(markdown_table(result))
    plot(result, out / "bench.png")


def plot(result: dict[str, Any], path: Path) -> bool:
    """Overhead vs gap per runtime (with 95% intervals), and p50 latency vs params."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("deepsquare-bench: matplotlib is not installed, no bench.png (pip install 'deepsquare[bench]')")
        return False
    rows = result["ratios"]
    series = sorted({(r["arch"], r["runtime"], r["threads"]) for r in rows})
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    width = 0.8 / max(1, len(series))
    for k, key in enumerate(series):
        picked = {r["variant"]: r for r in rows if (r["arch"], r["runtime"], r["threads"]) == key}
        xs = [i + k * width for i, v in enumerate(variants) if v in picked]
        ratio = [picked[v]["ratio_to_gap"] for v in variants if v in picked]
        err = [[picked[v]["ratio_to_gap"] - picked[v]["ci95"][0] for v in variants if v in picked],
               [picked[v]["ci95"][1] - picked[v]["ratio_to_gap"] for v in variants if v in picked]]  # fmt: skip
        left.bar(xs, ratio, width, yerr=err, capsize=2, label=f"{key[0]} {key[1]} {key[2]}t")
        label = f"{key[0]} {key[1]} {key[2]}t"
        right.scatter([picked[v]["params"] for v in variants if v in picked],
                      [picked[v]["p50_ms"] for v in variants if v in picked], label=label)  # fmt: skip
    left.axhline(1.0, color="black", linewidth=0.8)
    left.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(variants))], variants, rotation=30)
    left.set_ylabel("latency / gap latency (95% CI)")
    left.set_title("overhead vs GAP")
    right.set_xlabel("parameters")
    right.set_ylabel("p50 latency (ms)")
    right.set_title("latency vs params")
    for axis in (left, right):
        axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="deepsquare-bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arch", default="shufflenetv2_x0_5", help="comma-separated archs (default shufflenetv2_x0_5)")
    parser.add_argument("--variants", default="gap,se,sp,ss,sex,sen,sp+sex", help="comma-separated variants")
    parser.add_argument("--runtimes", default="onnxruntime,litert", help="onnxruntime, litert (default both)")
    parser.add_argument("--threads", default="1", help="comma-separated thread counts (default 1)")
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=30, help="timed rounds per model (default 30)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed rounds first (default 5)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.runs < 2 or args.warmup < 0 or args.input_size < 8:
        parser.error("--runs must be >= 2, --warmup >= 0, --input-size >= 8")
    warnings.filterwarnings("ignore")
    try:
        result = run_bench(args, progress=not args.quiet)
    except ValueError as exc:
        print(f"deepsquare-bench: error: {exc}", file=sys.stderr)
        return 1
    write_outputs(result, args.out)
    print(markdown_table(result))
    print(f"report: {args.out / 'bench.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

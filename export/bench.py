"""``deepsquare-bench``: latency of each DeepSquare variant against GAP and SE, per runtime.

    deepsquare-bench --arch shufflenetv2_x0_5,resnet18 --variants gap,se,sp,ss,sex,sen,sp+sex \\
                     --runtimes onnxruntime,litert --threads 1,2 --input-size 224 --out runs/bench
    deepsquare-bench --checkpoint runs/gap/model.ckpt,runs/sq/model.ckpt     # trained models
    deepsquare-bench --bundle runs/gap/export,runs/sq/export                 # exported bundles as shipped

What is timed: with --arch/--variants, each variant is built with random weights (latency does
not depend on them; BatchNorm statistics are set on random batches so squared activations stay
finite), deploy-transformed and exported. --checkpoint does the same from trained checkpoints;
--bundle times the files deepsquare-export wrote, unchanged. Every model runs through
deepsquare.runtime at batch 1, after --warmup untimed rounds, for --runs rounds or --time-budget
seconds per (arch, runtime, threads) cell.

Models of one arch are interleaved run by run (A B C, B C A, C A B, ...) so drift on a shared
machine hits all of them alike, and the rounds are split into blocks whose runtime sessions are
created anew in rotated order (the first session created can run slower for its whole life).
Each model's latency is reported as a ratio to its baseline (``gap`` when present, else the
first model of that arch): the geometric mean of the per-round ratios with a 95% interval. An
interval that contains 1 means no difference was measured.

Also reported: params, MACs (conv and linear, counted by hooks), elementwise ops (every other
arithmetic op the forward pass dispatches), file size per format. Writes bench.json (records in
the one schema of deepsquare.runtime.records), bench.csv, bench.md and bench.png (overhead vs
baseline per runtime; latency vs params), and prints the table. --add-records joins records
measured elsewhere (``deepsquare-profile --json`` on a phone or a Mac) as a table of their own.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deepsquare.runtime.bundle import BundleError, BundleMeta, load_bundle
from deepsquare.runtime.files import size_on_disk, write_text_atomically
from deepsquare.runtime.records import BenchRecord, record_from_times, this_machine
from deepsquare.runtime.runners import LiteRTRunner, OnnxRunner, RuntimeUnavailable
from deepsquare.train import build_model, count_parameters
from deepsquare.train.checkpoint import load_checkpoint, model_from_checkpoint

from .cli import ExportError, prepare_out
from .complexity import count_ops
from .deploy import DeployError, deploy_transform
from .formats import FORMATS, ConverterMissing

RUNNERS = {"onnxruntime": ("onnx", OnnxRunner), "litert": ("tflite", LiteRTRunner)}
DEFAULT_ARCH = "shufflenetv2_x0_5"
DEFAULT_VARIANTS = "gap,se,sp,ss,sex,sen,sp+sex"
RANDOM_WEIGHTS = "random weights, BN set on random batches"


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

    def size_kb(self, fmt: str) -> int:
        return round(size_on_disk(self.files[fmt]) / 1024)


@dataclass
class TimingPlan:
    runtimes: list[str]
    threads: list[int]
    runs: int = 30
    warmup: int = 5
    time_budget_s: float | None = None  # per (arch, runtime, threads) cell; replaces runs


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


def ratio_interval(variant_ms: list[float], baseline_ms: list[float]) -> tuple[float, float, float]:
    """Geometric-mean ratio of paired rounds and its 95% interval (normal approximation on logs)."""
    logs = [math.log(v / g) for v, g in zip(variant_ms, baseline_ms, strict=True)]
    mean = statistics.fmean(logs)
    half = 1.96 * (statistics.stdev(logs) / math.sqrt(len(logs)) if len(logs) > 1 else 0.0)
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def export_for_bench(name: str, arch: str, variant: str, model: nn.Module, input_size: int, meta: BundleMeta,
                     folder: Path, formats: set[str], source: str) -> BenchModel:  # fmt: skip
    """Deploy-transform ``model``, count its cost, export it to ``formats`` in ``folder``."""
    example = torch.randn(2, 3, input_size, input_size, generator=torch.Generator().manual_seed(0))
    deployed, _ = deploy_transform(model, example)
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for fmt in sorted(formats):
        FORMATS[fmt].fn(deployed, example, folder, meta)
        files[fmt] = folder / FORMATS[fmt].file
    ops = count_ops(deployed, input_size)
    return BenchModel(name, arch, variant, input_size, files, source, count_parameters(deployed), ops.macs,
                      ops.elementwise)  # fmt: skip


def random_variant(arch: str, variant: str, input_size: int, num_classes: int, folder: Path,
                   formats: set[str]) -> BenchModel:  # fmt: skip
    stem = "cifar" if input_size <= 64 else "imagenet"
    model = build_model(arch, variant, num_classes, stem=stem)
    torch.manual_seed(0)
    calibrate_batchnorm(model, input_size)
    meta = BundleMeta(arch, variant, [str(i) for i in range(num_classes)], input_size, [0.5] * 3, [0.25] * 3)
    return export_for_bench(variant, arch, variant, model, input_size, meta, folder, formats, RANDOM_WEIGHTS)


def checkpoint_model(path: Path, folder: Path, formats: set[str]) -> BenchModel:
    ckpt = load_checkpoint(path)
    model = model_from_checkpoint(ckpt)
    spec, size = ckpt["model_spec"], int(ckpt["input_size"])
    meta = BundleMeta(spec.arch, spec.variant, list(ckpt["classes"]), size, list(ckpt["mean"]), list(ckpt["std"]))
    return export_for_bench(spec.variant, spec.arch, spec.variant, model, size, meta, folder, formats, str(path))


def bundle_model(folder: Path, formats: set[str], name: str | None = None) -> BenchModel:
    """The files deepsquare-export wrote, timed as they are; cost figures from model.json."""
    folder, meta = load_bundle(folder)
    files = {}
    for fmt in sorted(formats):
        if fmt not in meta.formats:
            have = ", ".join(meta.formats) or "none"
            raise BundleError(f"bundle {folder} has no {fmt} model (it has: {have}); choose other --runtimes")
        files[fmt] = folder / meta.formats[fmt].file
        if not files[fmt].exists():
            raise BundleError(f"bundle {folder} lists {files[fmt].name}, which is missing")
    cost = meta.provenance.get("cost", {})
    return BenchModel(name or meta.variant, meta.arch, meta.variant, meta.input_size, files, str(folder),
                      cost.get("params"), cost.get("macs"), cost.get("elementwise"))  # fmt: skip


def unique_names(models: list[BenchModel]) -> None:
    """Two models of one arch with one label get their source's folder name added."""
    seen: dict[tuple[str, str], int] = {}
    for m in models:
        seen[(m.arch, m.name)] = seen.get((m.arch, m.name), 0) + 1
    for m in models:
        if seen[(m.arch, m.name)] > 1:
            source = Path(m.source)
            m.name = f"{m.name} ({source.parent.name}/{source.name})"


def _group(models: list[BenchModel]) -> dict[tuple[str, int], list[BenchModel]]:
    groups: dict[tuple[str, int], list[BenchModel]] = {}
    for m in models:
        groups.setdefault((m.arch, m.input_size), []).append(m)
    return groups


def baseline_index(group: list[BenchModel]) -> int:
    return next((i for i, m in enumerate(group) if m.variant == "gap"), 0)


def rotation(count: int, round_index: int) -> list[int]:
    """The order of round ``round_index``: every model takes every position equally often."""
    start = round_index % count
    return list(range(start, count)) + list(range(start))


def block_plan(models: int, plan: TimingPlan) -> list[int | float]:
    """Rounds (or seconds) of each block. The runtime sessions are created anew for every block, in
    rotated order: measured here, the first session created (ONNX Runtime or LiteRT) ran ~5% slower
    than the rest for the whole run, whichever model it held."""
    if plan.time_budget_s:
        return [plan.time_budget_s / models] * models
    blocks = min(models, plan.runs)
    return [plan.runs // blocks + (1 if b < plan.runs % blocks else 0) for b in range(blocks)]


def time_cell(group: list[BenchModel], runtime: str, threads: int, plan: TimingPlan,
              bar) -> tuple[list[list[float]], list[float], int]:  # fmt: skip
    """Per-model times (ms, paired by round), median init time (ms) and rounds of one (arch, runtime, threads)."""
    fmt, runner_class = RUNNERS[runtime]
    size = group[0].input_size
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    times: list[list[float]] = [[] for _ in group]
    inits: list[list[float]] = [[] for _ in group]
    rounds = 0
    blocks = block_plan(len(group), plan)
    for b, share in enumerate(blocks):
        runners: list[Any] = [None] * len(group)
        for i in rotation(len(group), b):
            runners[i] = runner_class(group[i].files[fmt], threads)
            inits[i].append(runners[i].init_s * 1e3)
        for warm in range(plan.warmup):  # fresh sessions are cold
            for i in rotation(len(group), warm):
                runners[i].run(x)
            if not plan.time_budget_s:
                bar.update()
        block_start, block_rounds = time.perf_counter(), 0
        while True:
            if plan.time_budget_s:
                # at least one round per block, and two in all: an interval needs them
                enough = time.perf_counter() - block_start >= share and block_rounds >= (2 if len(blocks) == 1 else 1)
            else:
                enough = block_rounds >= share
            if enough:
                break
            # The order also rotates every round (A B C, B C A, C A B, ...): no model is always
            # the one timed right after the progress bar's update.
            for i in rotation(len(group), rounds):
                start = time.perf_counter()
                runners[i].run(x)
                times[i].append((time.perf_counter() - start) * 1e3)
            rounds += 1
            block_rounds += 1
            if not plan.time_budget_s:
                bar.update()
        if plan.time_budget_s:
            bar.update(share)
        del runners
    return times, [statistics.median(v) for v in inits], rounds


def time_models(models: list[BenchModel], plan: TimingPlan, progress: bool = True) -> dict[str, Any]:
    """Time every model in every runtime and thread count, interleaved within each arch."""
    from tqdm import tqdm

    machine = this_machine()
    groups = _group(models)
    grid = [(key, runtime, t) for key in groups for runtime in plan.runtimes for t in plan.threads]
    budget = plan.time_budget_s
    if budget:
        total = len(grid) * budget
    else:
        total = sum(len(block_plan(len(groups[key]), plan)) * plan.warmup + plan.runs for key, _, _ in grid)
    bar = tqdm(total=total, desc="timing", unit="s" if budget else "round", disable=not progress, file=sys.stderr,
               bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} {unit} [{elapsed}<{remaining}]{postfix}")  # fmt: skip
    records: list[BenchRecord] = []
    ratios: list[dict[str, Any]] = []
    for (arch, size), runtime, t in grid:
        group = groups[(arch, size)]
        bar.set_postfix_str(f"{arch} {runtime} {t}t")
        times, init_ms, rounds = time_cell(group, runtime, t, plan, bar)
        fmt = RUNNERS[runtime][0]
        base = baseline_index(group)
        for i, m in enumerate(group):
            size_kb = m.size_kb(fmt)
            extra = {"batch": 1, "input_size": size, "format": fmt, "size_kb": size_kb, "params": m.params,
                     "macs": m.macs, "elementwise": m.elementwise, "source": m.source, "name": m.name}  # fmt: skip
            record = record_from_times(times[i], model=arch, variant=m.variant, runtime=runtime, threads=t,
                                       warmup=plan.warmup, init_ms=init_ms[i], machine=machine,
                                       extra=extra)  # fmt: skip
            records.append(record)
            ratio, low, high = ratio_interval(times[i], times[base])
            ratios.append({"arch": arch, "input_size": size, "name": m.name, "variant": m.variant,
                           "runtime": runtime, "threads": t, "runs": rounds, "p50_ms": record.p50_ms, "ratio": ratio,
                           "ci95": [low, high], "baseline": group[base].name, "params": m.params, "macs": m.macs,
                           "elementwise": m.elementwise, "size_kb": size_kb, "source": m.source})  # fmt: skip
    bar.close()
    return {"machine": machine, "runs": plan.runs if not budget else None, "time_budget_s": budget,
            "warmup": plan.warmup, "records": [r.to_dict() for r in records], "ratios": ratios,
            "models": [{"name": m.name, "arch": m.arch, "variant": m.variant, "input_size": m.input_size,
                        "source": m.source} for m in models]}  # fmt: skip


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def plan_from_args(args: argparse.Namespace) -> TimingPlan:
    runtimes = _split(args.runtimes)
    unknown = [r for r in runtimes if r not in RUNNERS]
    if unknown or not runtimes:
        raise ValueError(f"unknown runtime(s) {unknown}; valid: {', '.join(RUNNERS)}")
    try:
        threads = [int(t) for t in _split(str(args.threads))]
    except ValueError as exc:
        raise ValueError(f"--threads takes whole numbers separated by commas, not {args.threads!r}") from exc
    if not threads or min(threads) < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads!r}")
    return TimingPlan(runtimes, threads, args.runs, args.warmup, getattr(args, "time_budget", None))


def prepare_models(args: argparse.Namespace, formats: set[str], workdir: Path, progress: bool) -> list[BenchModel]:
    from tqdm import tqdm

    checkpoints = [Path(p) for p in _split(getattr(args, "checkpoint", None))]
    bundles = [Path(p) for p in _split(getattr(args, "bundle", None))]
    jobs: list[tuple[str, Any]] = [("checkpoint", p) for p in checkpoints] + [("bundle", p) for p in bundles]
    if not jobs or args.arch or args.variants:
        variants = list(dict.fromkeys(_split(args.variants or DEFAULT_VARIANTS)))
        if "gap" not in variants:
            variants.insert(0, "gap")  # every ratio is to gap
        jobs += [("random", (arch, v)) for arch in _split(args.arch or DEFAULT_ARCH) for v in variants]
    models = []
    bar = tqdm(total=len(jobs), desc="export", unit="model", disable=not progress, file=sys.stderr)
    for n, (kind, what) in enumerate(jobs):
        folder = workdir / f"{n:02d}"
        if kind == "checkpoint":
            models.append(checkpoint_model(what, folder, formats))
        elif kind == "bundle":
            models.append(bundle_model(what, formats))
        else:
            models.append(random_variant(what[0], what[1], args.input_size, args.num_classes, folder, formats))
        bar.update()
    bar.close()
    unique_names(models)
    return models


def load_records(paths: list[Path]) -> list[dict[str, Any]]:
    """Records measured elsewhere (deepsquare-profile --json, another bench.json), validated."""
    records = []
    for path in paths:
        try:
            data = json.loads(path.read_text())
            rows = data["records"] if isinstance(data, dict) else data
            records += [BenchRecord.from_dict(r).to_dict() for r in rows]
        except OSError as exc:
            raise ValueError(f"cannot read --add-records {path}: {exc.strerror or exc}") from exc
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"--add-records {path} is not a list of benchmark records ({exc})") from exc
    return records


def run_bench(args: argparse.Namespace, progress: bool = True) -> dict[str, Any]:
    plan = plan_from_args(args)
    elsewhere = load_records([Path(p) for p in _split(getattr(args, "add_records", None))])
    formats = {RUNNERS[r][0] for r in plan.runtimes}
    with tempfile.TemporaryDirectory(prefix="deepsquare-bench-") as workdir:
        models = prepare_models(args, formats, Path(workdir), progress)
        result = time_models(models, plan, progress)
    result["records_elsewhere"] = elsewhere
    return result


def _count(value: int | None) -> str:
    return f"{value:,}" if value is not None else "-"


def markdown_table(result: dict[str, Any]) -> str:
    how = (f"{result['time_budget_s']:g} s of interleaved rounds per cell" if result.get("time_budget_s")
           else f"{result['runs']} interleaved rounds")  # fmt: skip
    lines = [
        f"Batch 1, {how} ({result['warmup']} warm-up rounds each time sessions are created), {result['machine']}. "
        "Ratio: geometric mean of per-round ratios to the baseline, 95% interval; one containing 1 means no "
        "measured difference.",
        "",
        "| arch | px | model | runtime | threads | p50 ms | ratio (95% CI) | vs | params | MACs | elementwise "
        "| file KB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["ratios"]:
        lines.append(
            f"| {r['arch']} | {r['input_size']} | {r['name']} | {r['runtime']} | {r['threads']} | {r['p50_ms']:.3g} | "
            f"{r['ratio']:.3f} ({r['ci95'][0]:.3f}-{r['ci95'][1]:.3f}) | {r['baseline']} | {_count(r['params'])} | "
            f"{_count(r['macs'])} | {_count(r['elementwise'])} | {r['size_kb']:,} |"
        )
    if result.get("records_elsewhere"):
        lines += ["", "Measured elsewhere (--add-records: devices, browsers, Core ML):", "",
                  "| model | variant | runtime | machine | threads | p50 ms | mean ms | min ms | init ms | setting |",
                  "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in result["records_elsewhere"]:
            extra = r.get("extra", {})
            setting = ", ".join(f"{k}={extra[k]}" for k in ("compute_units", "use_gpu", "use_xnnpack", "backend")
                                if k in extra)  # fmt: skip
            cells = [_ms(r.get(k)) for k in ("p50_ms", "mean_ms", "min_ms", "init_ms")]
            lines.append(f"| {r['model']} | {r['variant']} | {r['runtime']} | {r['machine']} | "
                         f"{r['threads'] if r['threads'] is not None else '-'} | " + " | ".join(cells)
                         + f" | {setting or '-'} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def _ms(value: float | None) -> str:
    return f"{value:.2f}" if value is not None and not math.isnan(value) else "-"


CSV_FIELDS = ["arch", "input_size", "name", "variant", "runtime", "threads", "runs", "p50_ms", "ratio", "ci95_low",
              "ci95_high", "baseline", "params", "macs", "elementwise", "size_kb", "source"]  # fmt: skip


def write_outputs(result: dict[str, Any], out: Path) -> None:
    """bench.json, bench.csv, bench.md, bench.png; each written whole or not at all."""
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomically(out / "bench.json", json.dumps(result, indent=2) + "\n")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in result["ratios"]:
        row = {k: v for k, v in r.items() if k != "ci95"}
        writer.writerow({**row, "ci95_low": r["ci95"][0], "ci95_high": r["ci95"][1]})
    write_text_atomically(out / "bench.csv", buffer.getvalue())
    write_text_atomically(out / "bench.md", markdown_table(result))
    plot(result, out / "bench.png")


def plot(result: dict[str, Any], path: Path) -> bool:
    """Overhead vs baseline per runtime (with 95% intervals), and p50 latency vs params."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("deepsquare-bench: matplotlib is not installed, no bench.png (pip install 'deepsquare[bench]')")
        return False
    rows = result["ratios"]
    series = list(dict.fromkeys((r["arch"], r["runtime"], r["threads"]) for r in rows))
    names = list(dict.fromkeys(r["name"] for r in rows))
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    width = 0.8 / max(1, len(series))
    for k, key in enumerate(series):
        picked = {r["name"]: r for r in rows if (r["arch"], r["runtime"], r["threads"]) == key}
        shown = [n for n in names if n in picked]
        label = f"{key[0]} {key[1]} {key[2]}t"
        ratio = [picked[n]["ratio"] for n in shown]
        err = [[picked[n]["ratio"] - picked[n]["ci95"][0] for n in shown],
               [picked[n]["ci95"][1] - picked[n]["ratio"] for n in shown]]  # fmt: skip
        left.bar([names.index(n) + k * width for n in shown], ratio, width, yerr=err, capsize=2, label=label)
        with_params = [n for n in shown if picked[n]["params"] is not None]
        right.scatter([picked[n]["params"] for n in with_params], [picked[n]["p50_ms"] for n in with_params],
                      label=label)  # fmt: skip
    left.axhline(1.0, color="black", linewidth=0.8)
    left.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(names))], names, rotation=30)
    left.set_ylabel("latency / baseline latency (95% CI)")
    left.set_title("overhead vs baseline (gap)")
    right.set_xscale("log")
    right.set_xlabel("parameters")
    right.set_ylabel("p50 latency (ms)")
    right.set_title("latency vs params")
    for axis in (left, right):
        axis.legend(fontsize=7)
    fig.tight_layout()
    partial = path.with_name(f".{path.name}.partial.png")
    fig.savefig(partial, dpi=110)
    plt.close(fig)
    partial.replace(path)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="deepsquare-bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    what = parser.add_argument_group("what to time (default: the variants of --arch with random weights)")
    what.add_argument("--arch", help=f"comma-separated archs (default {DEFAULT_ARCH})")
    what.add_argument("--variants", help=f"comma-separated variants; gap is always added (default {DEFAULT_VARIANTS})")
    what.add_argument("--input-size", type=int, default=224, help="for --arch models (default 224)")
    what.add_argument("--num-classes", type=int, default=1000, help="for --arch models (default 1000)")
    what.add_argument("--checkpoint", help="comma-separated checkpoints from deepsquare-train, deployed and exported")
    what.add_argument("--bundle", help="comma-separated folders written by deepsquare-export, timed as they are")
    what.add_argument("--add-records", metavar="JSON",
                      help="comma-separated record files measured elsewhere (deepsquare-profile --json), "
                           "shown in their own table")  # fmt: skip
    how = parser.add_argument_group("how")
    how.add_argument("--runtimes", default="onnxruntime,litert", help="onnxruntime, litert (default both)")
    how.add_argument("--threads", default="1", help="comma-separated thread counts (default 1)")
    how.add_argument("--runs", type=int, default=30, help="timed rounds per model (default 30)")
    how.add_argument("--time-budget", type=float, metavar="SECONDS",
                     help="instead of --runs: time rounds for this long per (arch, runtime, threads) cell")  # fmt: skip
    how.add_argument("--warmup", type=int, default=5, help="untimed rounds after each block's new sessions (default 5)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"), help="report folder (default runs/bench)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.runs < 2 or args.warmup < 0 or args.input_size < 8:
        parser.error("--runs must be >= 2, --warmup >= 0, --input-size >= 8")
    if args.time_budget is not None and not args.time_budget > 0:
        parser.error("--time-budget must be a positive number of seconds")
    warnings.filterwarnings("ignore")
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" x4 per export
    try:
        prepare_out(args.out)
        result = run_bench(args, progress=not args.quiet)
    except (ValueError, DeployError, ConverterMissing, RuntimeUnavailable, ExportError) as exc:
        print(f"deepsquare-bench: error: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    write_outputs(result, args.out)
    print(markdown_table(result))
    print(f"report: {args.out / 'bench.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

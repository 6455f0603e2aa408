"""``deepsquare bench``: latency of each DeepSquare variant against GAP and SE, per runtime.

Examples:
  deepsquare bench --arch shufflenetv2_x0_5,resnet18 --variant gap,se,sp,ss,sex,sen,sp+sex \\
                   --to onnx,tflite --threads 1,2 --input-size 224 --out runs/bench
  deepsquare bench runs/gap/model.ckpt runs/sq/model.ckpt        # trained models (checkpoints)
  deepsquare bench runs/gap/export runs/sq/export                # exported bundles, as shipped
  deepsquare bench runs/sq/export --data digits --to onnx,tflite  # per file: size, accuracy, cold start, memory
  deepsquare bench --arch resnet18 --variant gap,sp+sex --precision fp32,int8   # int8 vs fp32 latency
  deepsquare bench isqrt        # iSQRT-COV vs eigh (micro-benchmark; deepsquare bench isqrt --help)
  deepsquare bench dsop         # a DSoP training step vs a plain one

What is timed: with --arch/--variant, each variant is built with random weights (latency does
not depend on them; BatchNorm statistics are set on random batches so squared activations stay
finite), deploy-transformed and exported. A checkpoint given as MODEL is treated the same way; a
bundle folder is timed as deepsquare export wrote it, unchanged. With --precision fp32,int8 each
--arch model and checkpoint is also exported in static int8 (the exporter's own quantizers; a
checkpoint calibrated on its data set, random-weight models on random inputs: calibration sets
the scales, not the quantized graph that is timed) and the files of every precision are
timed in the same interleaved group; a runtime whose format lacks a precision skips it, with a
note (a bundle is timed at the precision it was exported at). Every model runs through
deepsquare.runtime at batch 1, after --warmup untimed rounds, for --runs rounds or --time-budget
seconds per (arch, runtime, threads) cell.

Models of one arch are interleaved run by run (A B C, B C A, C A B, ...) so drift on a shared
machine hits all of them alike, and the rounds are split into blocks whose runtime sessions are
created anew in rotated order (the first session created can run slower for its whole life).
Each model's latency is reported as a ratio to its baseline (``gap`` at the same precision when
present, else the first model of that arch): the geometric mean of the per-round ratios with a
95% interval; a quantized file also gets its ratio to the same model's fp32 file ("vs fp32"). An
interval that contains 1 means no difference was measured.

Also reported: params, MACs (conv and linear, counted by hooks), elementwise ops (every other
arithmetic op the forward pass dispatches), file size per format. Writes bench.json (records in
the one schema of deepsquare.runtime.records), bench.csv, bench.md and bench.png (overhead vs
baseline per runtime; latency vs params), and prints the table. --add-records joins records
measured elsewhere (``deepsquare profile ... --out`` on a phone or a Mac) as a table of their own.

Per file: given checkpoints or bundles, each of their files (format x precision) and the PyTorch
model (the checkpoint; for a bundle, the one its model.json names) get one row: file size;
held-out top-1 on --data (default: the data the model was trained on, its test split) and the
paired difference to PyTorch over the same images with a 95% interval; load time and first-
inference time, each the median over --cold-starts fresh processes; steady p50 / p90 with 95%
intervals; peak resident memory of the process that loaded and ran the file; the ratio to gap.
Also pareto.png: held-out top-1 against p50, one point per file.

Cache: measurements are kept in bench-cache.json beside bench.json, keyed by the files' sha256,
the runtime and its version, threads, precision, the CPU (model, ISA extensions, cores) and the
protocol settings; the same bench with the same --out measures only what changed (the table
says which rows came from the cache and when they were measured). --no-cache measures anew.

Every record and the table's header name the CPU model, its ISA extensions (AVX2, AVX-512,
VNNI, NEON, dotprod, i8mm), the core count and the runtime versions. When the machine was busy
(load average above the core count plus one, or CPU steal above 5%, at the start or end; or a
ratio's 95% interval wider than x1.2) one warning line says so.
"""

from __future__ import annotations

import argparse
import sys

from deepsquare.runtime.options import (
    DEFAULT_ARCH,
    UsageError,
    add_formats,
    add_out,
    add_precision,
    add_rounds,
    add_threads,
    add_verbosity,
    check_rounds,
    check_threads,
    one_value,
)

DATA_KINDS = ("digits", "synthetic", "imagefolder", "cifar10", "cifar100")  # train/data.py's, without torch
DEFAULT_VARIANTS = "gap,se,sp,ss,sex,sen,sp+sex"

ISQRT_DOC = """``deepsquare bench isqrt``: one forward+backward of iSQRT-COV against an eigendecomposition square root.

Example:
  deepsquare bench isqrt --batch-size 64 --dsop-dim 128 --dsop-iterations 5 --runs 30

Prints the median, p90 and min per method (ms) and the eigh/iSQRT ratio with its 95% interval, both methods
timed interleaved in rotating order (iSQRT-COV: "Towards Faster Training of Global Covariance Pooling Networks
by Iterative Matrix Square Root Normalization", arXiv:1712.01034).
"""

DSOP_DOC = """``deepsquare bench dsop``: a training step with DSoP branches as a ratio to the plain step.

Example:
  deepsquare bench dsop --arch shufflenetv2_x0_5 --variant sp+ss+sex --dsop stage2,stage3,stage4 --batch-size 64

One forward+backward+SGD step of the same backbone with and without the branches, timed interleaved; prints the
ratio with its 95% interval (the DSoP paper, arXiv:2006.00809, reports roughly 2x for its ImageNet setting).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "models",
        nargs="*",
        metavar="MODEL",
        help="checkpoints (files from deepsquare train) and bundles (folders from deepsquare export); "
        "none: the variants of --arch with random weights",
    )
    what = parser.add_argument_group("what to time")
    what.add_argument("--arch", help=f"comma-separated archs of random-weight models (default {DEFAULT_ARCH})")
    what.add_argument(
        "--variant",
        dest="variants",
        help=f"comma-separated variants of --arch; gap is always added (default {DEFAULT_VARIANTS})",
    )
    what.add_argument("--input-size", type=int, default=224, help="square input side of --arch models")
    what.add_argument("--num-classes", type=int, default=1000, help="classes of --arch models")
    what.add_argument(
        "--add-records",
        nargs="+",
        default=[],
        metavar="JSON",
        help="record files measured elsewhere (deepsquare profile ... --out), shown in their own table",
    )
    how = parser.add_argument_group("how")
    add_formats(how, default="onnx,tflite", help="formats to time, one runtime each")
    add_precision(how, help="precisions exported and timed side by side; a runtime skips one its format lacks")
    add_threads(how, help="runtime thread counts, each timed as its own cell")
    add_rounds(how)
    how.add_argument(
        "--time-budget",
        type=float,
        metavar="SECONDS",
        help="instead of --runs: time rounds for this long per (arch, runtime, threads) cell",
    )
    files = parser.add_argument_group("per file (checkpoints and bundles)")
    files.add_argument(
        "--data",
        metavar="SPEC",
        help="held-out images for top-1: digits, synthetic, imagefolder:PATH, ... (default: the data the model "
        "was trained on; its test split)",
    )
    files.add_argument("--images", type=int, metavar="N", help="use the first N held-out images (default: all)")
    files.add_argument(
        "--cold-starts",
        type=int,
        default=3,
        metavar="N",
        help="fresh processes per load / first-inference / memory figure (the median is reported)",
    )
    files.add_argument(
        "--no-cache",
        action="store_true",
        help="measure everything again instead of reusing bench-cache.json in --out (which is then refreshed)",
    )
    add_out(
        parser,
        default="runs/bench",
        help="report folder: bench.md, bench.json, bench.csv, bench.png, pareto.png, bench-cache.json",
    )
    add_verbosity(parser)


def run(args: argparse.Namespace) -> int:
    check_rounds(args)
    check_threads(args.threads)
    if args.num_classes < 1:
        raise UsageError(f"--num-classes must be >= 1, got {args.num_classes}")
    if args.input_size < 8:
        raise UsageError(f"--input-size must be >= 8, got {args.input_size}")
    if args.time_budget is not None and not args.time_budget > 0:
        raise UsageError("--time-budget must be a positive number of seconds")
    if args.images is not None and args.images < 2:
        raise UsageError(f"--images must be >= 2 (a paired interval needs two), got {args.images}")
    if args.cold_starts < 1:
        raise UsageError(f"--cold-starts must be >= 1, got {args.cold_starts}")
    if args.data is not None and args.data.partition(":")[0] not in DATA_KINDS:
        raise UsageError(f"unknown --data {args.data!r}; valid: digits, synthetic[:N], imagefolder:PATH, cifar10:PATH")
    # Imported after the flags are checked: a bad flag is refused without loading torch.
    from deepsquare.runtime.bench_report import markdown_table
    from deepsquare.runtime.runners import RuntimeUnavailable

    from .bench_run import run_bench_and_write
    from .deploy import DeployError
    from .needs import ConverterMissing
    from .pipeline import ExportError

    try:
        result = run_bench_and_write(args)
    except (ValueError, DeployError, ConverterMissing, RuntimeUnavailable, ExportError) as exc:
        if args.verbose:
            raise
        print(f"deepsquare bench: error: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    print(markdown_table(result))
    cache = result["cache"]
    if cache["reused"]:
        print(
            f"{cache['reused']} of {cache['reused'] + cache['measured']} measurements came from the cache "
            f"({cache['file']}; --no-cache to measure anew)"
        )
    if result["busy"]["warning"]:
        print(f"deepsquare bench: {result['busy']['warning']}")
    print(f"report: {args.out / 'bench.md'}")
    return 0


def add_isqrt_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=int, default=64, help="matrices per batch")
    parser.add_argument("--dsop-dim", type=int, default=128, help="covariance size d")
    parser.add_argument("--dsop-iterations", type=int, default=5, help="Newton-Schulz steps T")
    add_rounds(parser, what="timed rounds per method")
    add_threads(parser, help="torch threads")
    parser.add_argument("--seed", type=int, default=0, help="of the random features")
    add_verbosity(parser)


def run_isqrt(args: argparse.Namespace) -> int:
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    if min(args.batch_size, args.dsop_dim, args.dsop_iterations) < 1:
        raise UsageError("--batch-size, --dsop-dim and --dsop-iterations must be >= 1")
    check_rounds(args, least_runs=1)
    one_value("--threads", args.threads)
    check_threads(args.threads)
    from .bench_isqrt import report

    return report(args)


def add_dsop_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", default=DEFAULT_ARCH, help="the backbone")
    parser.add_argument("--variant", default="sp+ss+sex", help="its variant")
    parser.add_argument("--dsop", default="stage2,stage3,stage4", help="comma-separated stages with a DSoP branch")
    parser.add_argument("--dsop-dim", type=int, default=64, help="DSoP reduced channels d")
    parser.add_argument("--batch-size", type=int, default=64, help="images per step")
    parser.add_argument("--input-size", type=int, default=32, help="square input side")
    add_rounds(parser, what="timed steps per model")
    add_threads(parser, help="torch threads")
    add_verbosity(parser)


def run_dsop(args: argparse.Namespace) -> int:
    if min(args.batch_size, args.dsop_dim) < 1 or args.input_size < 8:
        raise UsageError("--batch-size and --dsop-dim must be >= 1, --input-size >= 8")
    check_rounds(args, least_runs=1)
    one_value("--threads", args.threads)
    check_threads(args.threads)
    from .bench_dsop import report

    return report(args)

"""``deepsquare demo``: the main job (the README's first command).

Examples:
  deepsquare demo                                  # about 5 minutes on 2 cores; prints where the report is
  deepsquare demo --data digits --epochs 10 --out runs/demo-digits

On the built-in synthetic data it trains ShuffleNetV2 x0.5 as ``gap``, ``se`` and
``sp+ss+sex`` with DSoP branches, all with one dropout, exports each to ONNX, Core ML, TFLite and ExecuTorch
through the parity gate, checks the zoo's parameter counts against torchvision's, times iSQRT-COV
against an eigh square root, and writes ``report.md`` + ``report.json`` side by side:
accuracy (val, and the held-out test split with each variant's difference to gap paired over the
test images), parity, file sizes, and the 224x224 latency of gap, se and sp+ss+sex in ONNX
Runtime, LiteRT and ExecuTorch (interleaved, as ratios to gap).
"""

from __future__ import annotations

import argparse
import math

from deepsquare.runtime.options import UsageError, add_out, add_rounds, add_verbosity

DROPOUT = 0.0  # deepsquare ablate's default: this report and a sweep measure one recipe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_out(parser, default="runs/demo", help="report folder: report.md, report.json, one folder per model, bench/")
    parser.add_argument("--data", default="synthetic", help="training data (the built-in synthetic set)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per model")
    parser.add_argument("--lr", type=float, default=0.1, help="peak learning rate (0.1: short runs)")
    add_rounds(parser)
    parser.add_argument("--seed", type=int, default=0, help="of every training run")
    parser.add_argument(
        "--dropout", type=float, default=DROPOUT, help="dropout before the FC, the same for every variant"
    )
    add_verbosity(parser)


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.dropout < 1:
        raise UsageError(f"--dropout must be in [0, 1), got {args.dropout}")
    if args.epochs < 1:
        raise UsageError(f"--epochs must be >= 1, got {args.epochs}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise UsageError(f"--lr must be a positive number, got {args.lr}")
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    if args.runs < 2 or args.warmup < 0:
        raise UsageError(f"--runs must be >= 2 and --warmup >= 0, got {args.runs} and {args.warmup}")
    from .demo import run_demo  # torch: after the flags are checked

    return run_demo(args)

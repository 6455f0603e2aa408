"""``deepsquare train``: train a DeepSquare / DSoP classifier and write a checkpoint.

Examples:
  deepsquare train --arch shufflenetv2_x0_5 --variant sp+ss+sex --epochs 5 --out runs/sq
  deepsquare train --variant sp+ss+sex --dsop stage3,stage4 --dsop-dim 64 --out runs/dsop
  deepsquare train --data imagefolder:~/flowers --input-size 128 --arch resnet18 --out runs/f
  torchrun --nproc-per-node=2 -m deepsquare.train --epochs 5 --out runs/ddp
  deepsquare train --out runs/sq --resume --epochs 10      # continue, or extend a run

Writes OUT/model.ckpt (final), OUT/last.ckpt, OUT/best.ckpt and OUT/metrics.csv, and
prints the checkpoint path as its last line.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from deepsquare.runtime.options import add_out, add_verbosity

from .api import RESUME_MUST_MATCH, run_and_collect
from .checkpoint import CheckpointError
from .config import TrainConfig
from .data import DATA_KINDS, DataError
from .models import ARCHS
from .trainer import TrainingError
from .variants import VALID_NAMES

EXPECTED_ERRORS = (CheckpointError, DataError, TrainingError, ValueError)


def parse_floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc


def build_parser(prog: str = "deepsquare train") -> argparse.ArgumentParser:
    """The parser alone (``python -m deepsquare.train``, the torchrun entry, uses it)."""
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    p.add_argument("--arch", default=d.arch, help=f"one of {', '.join(ARCHS)} (default {d.arch})")
    p.add_argument(
        "--variant",
        default=d.variant,
        help=f"'+'-joined names from: {', '.join(VALID_NAMES)} (default {d.variant})",
    )
    p.add_argument("--data", default=d.data, help=f"{' | '.join(DATA_KINDS)} (default {d.data}; nothing is downloaded)")
    add_out(p, default=d.out, help="output folder: model.ckpt, best.ckpt, last.ckpt, metrics.csv")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"default {d.epochs}")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"per process (default {d.batch_size})")
    p.add_argument("--input-size", type=int, default=d.input_size, help=f"square input side (default {d.input_size})")
    p.add_argument("--lr", type=float, help="peak learning rate (default 0.4 x batch/1024, the paper's)")
    p.add_argument("--warmup-epochs", type=float, help="linear warm-up length (default 5, or a tenth of a short run)")
    p.add_argument("--weight-decay", type=float, help="default 1e-4 (ResNet, vanilla CNN), 4e-5 (ShuffleNetV2)")
    p.add_argument("--label-smoothing", type=float, default=0.0, help="of the cross-entropy targets")
    p.add_argument("--clip-grad", type=float, default=d.clip_grad, help="grad-norm clip, 0 disables (default 5)")
    p.add_argument(
        "--clip-unitwise",
        type=float,
        default=d.clip_unitwise,
        help="adaptive unit-wise clip: each output unit's gradient norm at most this times its weight "
        "norm (NFNets' AGC, arXiv:2102.06171), before --clip-grad; 0 disables (default)",
    )
    p.add_argument(
        "--dropout",
        type=float,
        default=d.dropout,
        help="before the FC, the same for every variant (default 0; the paper's DeepSquare models: 0.2)",
    )
    p.add_argument(
        "--ss-init", type=float, default=d.ss_init, help=f"Square-Softmin scale at the start (default {d.ss_init})"
    )
    p.add_argument(
        "--ss-lr-scale",
        type=float,
        default=d.ss_lr_scale,
        help=f"the Square-Softmin scale's learning rate as a multiple of the schedule's (default {d.ss_lr_scale}: "
        "at 1 the scale collapsed early and stalled training, see the docs' Results > Accuracy; 0: fixed)",
    )
    p.add_argument(
        "--ss-offset",
        type=float,
        default=d.ss_offset,
        help=f"FC bias a Square-Softmin head starts with (default {d.ss_offset})",
    )
    p.add_argument(
        "--sex-alpha",
        type=float,
        default=d.sex_alpha,
        help=f"Square-Excitation alpha at the start (default {d.sex_alpha})",
    )
    p.add_argument(
        "--diagnostics",
        action="store_true",
        help="write OUT/diagnostics.csv: per step pooled features, logit range, SS scale, SEx gates, "
        "gradient norm per stage",
    )
    p.add_argument("--stem", choices=["imagenet", "cifar"], help="default cifar up to 64 px input, imagenet above")
    p.add_argument("--ss-per-class", action="store_true", help="one Square-Softmin scale per class")
    p.add_argument("--dsop", default="", help="comma-separated stages that get a DSoP branch, e.g. stage3,stage4")
    p.add_argument("--dsop-blocks", type=int, default=d.dsop_blocks, help="blocks per branch (default 1)")
    p.add_argument("--dsop-dim", type=int, default=d.dsop_dim, help="reduced channels d (default 64)")
    p.add_argument("--dsop-iterations", type=int, default=d.dsop_iterations, help="iSQRT steps (default 5)")
    p.add_argument("--dsop-weights", type=parse_floats, default=(), help="betas per branch (default 0.1/0.2/0.3)")
    p.add_argument("--seed", type=int, default=d.seed, help="fixes the data order, augmentation and initialisation")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=d.device, help="auto: cuda when there is a GPU")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.ckpt (its recipe; --epochs may grow)")
    add_verbosity(p)


def main(argv: list[str] | None = None) -> int:
    """``python -m deepsquare.train ...`` (what torchrun starts in each process)."""
    args = build_parser("python -m deepsquare.train").parse_args(argv)
    args.given = sys.argv[1:] if argv is None else argv
    from deepsquare.runtime.processes import Stopped, stopping_on_signals

    with stopping_on_signals() as stop:  # SIGTERM stops training as Ctrl+C does: one line, exit 143
        try:
            code = run(args)
        except Stopped as exc:  # before training started
            print(f"deepsquare train: interrupted ({exc.name})", file=sys.stderr)
            return exc.exit_status
    return stop.exit_status(code)


def run(args: argparse.Namespace) -> int:
    config = TrainConfig(
        arch=args.arch,
        variant=args.variant,
        data=args.data,
        out=str(args.out),
        epochs=args.epochs,
        batch_size=args.batch_size,
        input_size=args.input_size,
        lr=args.lr,
        warmup_epochs=args.warmup_epochs,
        weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing,
        clip_grad=args.clip_grad,
        clip_unitwise=args.clip_unitwise,
        dropout=args.dropout,
        ss_init=args.ss_init,
        ss_lr_scale=args.ss_lr_scale,
        ss_offset=args.ss_offset,
        sex_alpha=args.sex_alpha,
        diagnostics=args.diagnostics,
        stem=args.stem,
        ss_per_class=args.ss_per_class,
        dsop_stages=tuple(s.strip() for s in args.dsop.split(",") if s.strip()),
        dsop_blocks=args.dsop_blocks,
        dsop_dim=args.dsop_dim,
        dsop_iterations=args.dsop_iterations,
        dsop_weights=args.dsop_weights,
        seed=args.seed,
        device=args.device,
    )
    explicit = tuple(
        name
        for name, flag in RESUME_MUST_MATCH.items()
        if any(a == flag or a.startswith(flag + "=") for a in args.given)
    )
    try:
        result = run_and_collect(config, quiet=args.quiet, resume=args.resume, must_match=explicit)
    except EXPECTED_ERRORS as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"deepsquare train: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("deepsquare train: interrupted; resume with --resume", file=sys.stderr)
        return 130
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun only rank 0 reports
        print(result.checkpoint)
    return 0

"""``deepsquare-export model.ckpt --to onnx|coreml|tflite|executorch|all``: deploy, convert, verify.

Examples:
  deepsquare-export runs/sq/model.ckpt --to all --out runs/sq/export
  deepsquare-export runs/sq/model.ckpt --to onnx,tflite --precision int8 --calib synthetic

The deploy transform (DSoP branches stripped, Square-Softmin folded into the FC, BatchNorm
fused, dropout removed) is checked against the training model first. Each format is then
converted in a staging folder, run in its own runtime against the PyTorch deploy model (a
fixed random batch plus real samples of the checkpoint's data set when it can be loaded),
and kept only when it passes; the whole bundle then replaces --out at once. Formats convert
side by side, one process each (--jobs; most converters use one core for most of their run).
Core ML cannot predict on Linux: there its program's structure is validated, fp16 is checked
with the deploy model rounded to float16, and the report says numeric parity was not run.
Outputs: model.onnx, model.mlpackage, model.tflite, model.pte, model.json (metadata the apps
read), export_report.json. Exit status 1 when any format fails, naming it and by how much.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from deepsquare.runtime.formats import FORMATS, all_precisions

PROG = "deepsquare-export"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", type=Path, help="a checkpoint written by deepsquare-train")
    parser.add_argument("--to", default="all", help=f"{', '.join(FORMATS)}, a comma list, or all (default all)")
    parser.add_argument("--out", type=Path, help="output folder (default: CHECKPOINT_DIR/export)")
    offered = "; ".join(f"{name}: {', '.join(fmt.precisions)}" for name, fmt in FORMATS.items())
    parser.add_argument(
        "--precision",
        choices=all_precisions(),
        help=f"applied to each format that offers it ({offered}; the first is the format's "
        "default, used when this is not given)",
    )
    parser.add_argument("--calib", help="--data spec of int8 calibration images (default: the checkpoint's data)")
    parser.add_argument("--samples", type=int, default=32, help="real images in the parity check (default 32)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=0,
        help="formats converted at once, each in its own process (default 0: one per CPU core; "
        "1: one after another in this process)",
    )
    parser.add_argument("--verbose", action="store_true", help="show the converters' own output")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = args.out or args.checkpoint.parent / "export"
    # Imported after parsing: --help and bad flags answer without loading torch.
    from deepsquare.train.checkpoint import CheckpointError
    from deepsquare.train.data import DataError

    from .converters import ConverterMissing
    from .deploy import DeployError
    from .pipeline import ExportError, ExportRequest, parse_formats, run_export

    try:
        request = ExportRequest(
            args.checkpoint,
            parse_formats(args.to),
            out,
            args.precision,
            args.calib,
            args.samples,
            args.verbose,
            args.jobs,
        )
        ok, report = run_export(request)
    except (ExportError, CheckpointError, ConverterMissing, DeployError, DataError) as exc:
        if args.debug:
            traceback.print_exc()
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(f"report: {out / 'export_report.json'} ({report['wall_s']} s)")
    if not ok:
        failed = [f for f, r in report["formats"].items() if not r["passed"]]
        print(f"{PROG}: error: parity failed for {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

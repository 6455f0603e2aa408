"""``deepsquare export CHECKPOINT --to onnx|coreml|tflite|executorch|all``: deploy, convert, verify.

Examples:
  deepsquare export runs/sq/model.ckpt --to all --out runs/sq/export
  deepsquare export runs/sq/model.ckpt --to onnx,tflite --precision int8 --calib synthetic
  deepsquare export runs/sq/model.ckpt --to onnx --precision int8 --keep-float se,classifier
  deepsquare export runs/sq/model.ckpt --to tflite,executorch --require-delegated --parity-report
  deepsquare export runs/sq/model.ckpt --to onnx,tflite,executorch --input uint8   # graphs take RGB pixels
  deepsquare-export runs/sq/model.ckpt --to onnx          # the same command under its short alias

The deploy transform (DSoP branches stripped, Square-Softmin folded into the FC, BatchNorm
fused, dropout removed) is checked against the training model first. Each format is then
converted in a staging folder, run in its own runtime against the PyTorch deploy model (a
fixed random batch plus real samples of the checkpoint's data set when it can be loaded),
and the new bundle replaces --out at once only when every format passed: a failure of any kind
(a gate, a full disk, an error, Ctrl+C) leaves --out as it was and puts the attempt's report beside
it (OUT.failed-export_report.json). One export per --out at a time (a lock beside it); a linked
--out gets the bundle in its target. model.json records the sha256 of each model file, checked
when the bundle is loaded. Formats convert side by side, one process each (--jobs).
Core ML cannot predict on Linux: there its program's structure is validated, fp16 is checked
with the deploy model rounded to float16, and the report says numeric parity was not run.
Outputs: model.onnx, model.mlpackage, model.tflite, model.pte, model.json (metadata the apps
read), export_report.json (with each format's delegation: the ops XNNPACK or each ONNX Runtime
provider takes), parity_layers.json/.md (--parity-report, or when a parity gate fails: the first
module whose output differs). Exit status 1 when any format fails, naming it and by how much.
Python: deepsquare.export(checkpoint, to=[...], out=...).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from deepsquare.runtime.options import UsageError, add_formats, add_jobs, add_out, add_precision, add_verbosity

PROG = "deepsquare export"


def shorten(text: str, limit: int = 300) -> str:
    """One line of a failed format's reason for the terminal (the report has it whole), cut at a word."""
    return text if len(text) <= limit else text[: limit - 4].rsplit(" ", 1)[0] + " ..."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, metavar="CHECKPOINT", help="a model.ckpt written by deepsquare train")
    add_formats(parser, default="all", help="formats to export")
    add_out(parser, default=None, help="bundle folder (default: CHECKPOINT_DIR/export)")
    add_precision(parser, help="one precision, applied to each format that offers it")
    parser.add_argument("--calib", help="--data spec of int8 calibration images (default: the checkpoint's data)")
    parser.add_argument("--samples", type=int, default=32, help="real images in the parity check")
    add_jobs(parser, help="formats converted at once, each in its own process")
    parser.add_argument(
        "--input",
        choices=("float", "uint8"),
        default="float",
        help="what the ONNX, TFLite and ExecuTorch graphs take: float (normalized NCHW, as trained) or uint8 "
        "(RGB pixels [N, H, W, 3] at the input size; /255, mean, std and layout inside the graph)",
    )
    parser.add_argument(
        "--require-delegated",
        action="store_true",
        help="fail a TFLite or ExecuTorch graph that leaves any op outside the XNNPACK delegate (names op and module)",
    )
    parser.add_argument(
        "--parity-report",
        action="store_true",
        help="compare every module's output with PyTorch in each format (parity_layers.json/.md); "
        "also done for a format whose parity gate fails",
    )
    parser.add_argument(
        "--keep-float",
        default="auto",
        metavar="SPEC",
        help="int8: what stays float: auto (each format's measured default), none, or comma-separated unit kinds "
        "(stem, depthwise, se, classifier, ...: export/int8_units.py) and/or module paths (stage4.3.attention)",
    )
    parser.add_argument(
        "--sensitivity",
        action="store_true",
        help="int8: quantize one unit kind at a time (calibrated as --calib says), measure top-1 agreement and "
        "accuracy on the checkpoint's held-out split, and keep the sensitive kinds float in each format "
        "(instead of --keep-float; minutes per format)",
    )
    add_verbosity(parser)


def run(args: argparse.Namespace) -> int:
    if args.precision is not None and len(args.precision) > 1:
        raise UsageError(
            f"--precision takes one value in export (a bundle holds one file per format), got "
            f"{','.join(args.precision)}: export each precision into its own --out"
        )
    from .int8_units import int8_options_problem

    precision = args.precision[0] if args.precision else None
    problem = int8_options_problem(precision, args.keep_float, args.sensitivity)
    if problem:
        raise UsageError(problem)
    # Imported after parsing: --help and bad flags answer without loading torch.
    from deepsquare.train.checkpoint import CheckpointError
    from deepsquare.train.data import DataError

    from .api import ExportFailed, export
    from .deploy import DeployError
    from .needs import ConverterMissing
    from .pipeline import ExportError

    out = args.out or args.checkpoint.parent / "export"
    try:
        result = export(
            args.checkpoint,
            to=args.to,
            out=out,
            precision=precision,
            calib=args.calib,
            samples=args.samples,
            jobs=args.jobs,
            input=args.input,
            require_delegated=args.require_delegated,
            parity_report=args.parity_report,
            keep_float=args.keep_float,
            sensitivity=args.sensitivity,
            verbose=args.verbose,
            log=None if args.quiet else print,
        )
    except ExportFailed as exc:
        result = exc.result
        print(f"report: {result.report_file} ({result.report['wall_s']} s)")
        first = result.failed[0]
        reason = str(result.report["formats"][first].get("reason") or "?").strip().splitlines() or ["?"]
        more = f" (and {', '.join(result.failed[1:])})" if len(result.failed) > 1 else ""
        print(
            f"{PROG}: error: {first} failed{more}: {shorten(reason[0])}; nothing was published, "
            f"the previous content of {out} is untouched",
            file=sys.stderr,
        )
        return 1
    except (ExportError, CheckpointError, ConverterMissing, DeployError, DataError) as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(f"report: {result.report_file} ({result.report['wall_s']} s)")
    return 0


def alias_main(argv: list[str] | None = None) -> int:
    """``deepsquare-export ...``: the one kept alias, the same as ``deepsquare export ...``."""
    from .commands import main as deepsquare_main

    return deepsquare_main(["export", *(sys.argv[1:] if argv is None else argv)])


def main(argv: list[str] | None = None) -> int:
    return alias_main(argv)


if __name__ == "__main__":
    sys.exit(main())

"""``deepsquare predict BUNDLE IMAGE [IMAGE ...]``: the top labels of images from an exported bundle.

Examples:
  deepsquare predict runs/sq/export photo.jpg
  deepsquare predict runs/sq/export *.jpg --to tflite --top 3
  deepsquare predict runs/sq/export --self-check      # golden.png through every model that runs here

Every image is decoded first (a bad one is refused before any output), the whole image resized with Pillow's
BILINEAR to the model's square input (no crop), and normalized with the bundle's mean and std, as in training; a
bundle exported with --input uint8 takes the resized pixels as they are (its graphs normalize inside).
Python: deepsquare.load(bundle).
--self-check feeds the bundle's golden.png to each of its models (or those of --to) and compares the output with
golden.json, written at export (deepsquare.runtime.self_check); a mismatch exits 1.
"""

from __future__ import annotations

import argparse
import sys

from .bundle import BundleError
from .images import ImageError
from .options import UsageError, add_threads, add_verbosity, check_threads, format_list, one_value
from .runners import RuntimeUnavailable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", metavar="BUNDLE", help="a folder written by deepsquare export (with model.json)")
    parser.add_argument("images", nargs="*", metavar="IMAGE", help="image files (anything Pillow reads)")
    parser.add_argument(
        "--self-check",
        action="store_true",
        help="run golden.png through every model of the bundle that runs here (or those of --to) and compare "
        "with golden.json; exit 1 on a mismatch",
    )
    parser.add_argument(
        "--to",
        type=format_list,
        metavar="FORMAT",
        help="which of the bundle's models to run: onnx, tflite, executorch, coreml (default: the first that "
        "runs here)",
    )
    parser.add_argument("--top", type=int, default=5, help="labels printed per image")
    add_threads(parser, help="runtime threads (0: the runtime's choice)")
    add_verbosity(parser)


def run(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise UsageError(f"--top must be >= 1, got {args.top}")
    threads = one_value("--threads", args.threads)
    check_threads([threads], allow_zero=True)
    if not args.images and not args.self_check:
        raise UsageError("give at least one IMAGE to classify, or --self-check")
    if args.self_check:
        code = run_self_check(args.bundle, args.to, threads)
        if code or not args.images:
            return code
    fmt = one_value("--to", args.to)
    from .predictor import load, to_pixels

    try:
        model = load(args.bundle, runtime=fmt, threads=threads)
        # Every image is decoded before any output: a bad one is refused first.
        pixels = [to_pixels(path, model.meta.input_size) for path in args.images]
        for path, image in zip(args.images, pixels, strict=True):
            print(f"{path} ({model.format}):")
            for p in model.predict_pixels(image, top=args.top):
                print(f"  {p.probability:7.2%}  {p.label}")
    except (BundleError, RuntimeUnavailable, ImageError) as exc:
        print(f"deepsquare predict: error: {exc}", file=sys.stderr)
        return 1
    return 0


def run_self_check(bundle: str, formats: list[str] | None, threads: int) -> int:
    """One line per format; 1 when one failed, or none could run here."""
    from .self_check import self_check

    try:
        results = self_check(bundle, formats, threads)
    except (BundleError, RuntimeUnavailable, ImageError) as exc:
        print(f"deepsquare predict: error: {exc}", file=sys.stderr)
        return 1
    for result in results:
        print(result.line)
    if not any(r.passed for r in results) and all(r.skipped for r in results):
        print("deepsquare predict: error: no model of this bundle runs here: nothing was checked", file=sys.stderr)
        return 1
    return 1 if any(not r.passed and not r.skipped for r in results) else 0

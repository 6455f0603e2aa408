"""``deepsquare-predict BUNDLE_DIR IMAGE [IMAGE ...]``: top-5 labels from an exported bundle."""

from __future__ import annotations

import argparse
import os
import sys

from .bundle import BundleError, load_bundle
from .formats import FORMATS
from .images import ImageError
from .preprocess import load_image, normalize_nchw
from .runners import RuntimeUnavailable, open_runner, top_k

MAX_THREADS = 4 * (os.cpu_count() or 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deepsquare-predict", description=__doc__)
    parser.add_argument("bundle", help="folder written by deepsquare-export (with model.json)")
    parser.add_argument("images", nargs="+", help="image files (anything Pillow reads)")
    parser.add_argument(
        "--format",
        choices=list(FORMATS),
        help=f"which exported model to run (default: the first of {', '.join(FORMATS)} that runs here)",
    )
    parser.add_argument("--top", type=int, default=5, help="labels to print per image (default 5)")
    parser.add_argument(
        "--threads", type=int, default=0, help=f"runtime threads, 1..{MAX_THREADS} (default 0: the runtime's choice)"
    )
    args = parser.parse_args(argv)
    if args.top < 1:
        parser.error(f"--top must be >= 1, got {args.top}")
    if not 0 <= args.threads <= MAX_THREADS:
        parser.error(f"--threads must be between 0 and {MAX_THREADS} (4 x this machine's {os.cpu_count()} CPUs)")
    try:
        _, meta = load_bundle(args.bundle)
        runnable = [f for f in FORMATS if f in meta.formats and FORMATS[f].runs_here()]
        fmt = args.format or next(iter(runnable or meta.formats), None)
        if fmt is None:
            raise BundleError(f"bundle {args.bundle} lists no model")
        # Every image is decoded before the model is loaded: a bad one is refused before any output.
        pixels = [load_image(path, meta.input_size) for path in args.images]
        runner, meta = open_runner(args.bundle, fmt, args.threads)
        probabilities = FORMATS[fmt].outputs == "probabilities"
        for image_path, image in zip(args.images, pixels, strict=True):
            scores = runner.run(normalize_nchw(image[None], meta))[0]
            print(f"{image_path} ({fmt}):")
            for label, prob in top_k(scores, meta.classes, args.top, probabilities):
                print(f"  {prob:7.2%}  {label}")
    except (BundleError, RuntimeUnavailable, ImageError) as exc:
        print(f"deepsquare-predict: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

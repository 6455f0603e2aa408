"""``deepsquare-predict BUNDLE_DIR IMAGE [IMAGE ...]``: top-5 labels from an exported bundle."""

from __future__ import annotations

import argparse
import sys

from .bundle import BundleError, load_bundle
from .formats import FORMATS
from .preprocess import load_image, normalize_nchw
from .runners import RuntimeUnavailable, open_runner, top_k


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deepsquare-predict", description=__doc__)
    parser.add_argument("bundle", help="folder written by deepsquare-export (with model.json)")
    parser.add_argument("images", nargs="+", help="image files (anything Pillow reads)")
    parser.add_argument(
        "--format",
        choices=list(FORMATS),
        help=f"which exported model to run (default: the first of {', '.join(FORMATS)} that runs here)",
    )
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        _, meta = load_bundle(args.bundle)
        runnable = [f for f in FORMATS if f in meta.formats and FORMATS[f].runs_here()]
        fmt = args.format or next(iter(runnable or meta.formats), None)
        if fmt is None:
            raise BundleError(f"bundle {args.bundle} lists no model")
        runner, meta = open_runner(args.bundle, fmt, args.threads)
        for image_path in args.images:
            try:
                pixels = load_image(image_path, meta.input_size)
            except (OSError, ValueError) as exc:
                raise BundleError(f"cannot read image {image_path}: {exc}") from exc
            logits = runner.run(normalize_nchw(pixels[None], meta))[0]
            print(f"{image_path} ({fmt}):")
            for label, prob in top_k(logits, meta.classes, args.top):
                print(f"  {prob:7.2%}  {label}")
    except (BundleError, RuntimeUnavailable) as exc:
        print(f"deepsquare-predict: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``deepsquare schema``: the JSON Schema of a bundle's ``model.json`` (with golden.json and samples.json).

Examples:
  deepsquare schema                          # print it
  deepsquare schema --out bundle.schema.json

The same file is in every bundle as model.schema.json; Python validates model.json against it when a bundle is
written and read (deepsquare.runtime.schema). Its $id ends with the version of model.json it describes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .options import add_verbosity


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, metavar="FILE", help="write the schema to this file instead of printing it")
    add_verbosity(parser)


def run(args: argparse.Namespace) -> int:
    from .files import write_text_atomically
    from .schema import schema_text

    if args.out is None:
        sys.stdout.write(schema_text())
        return 0
    try:
        write_text_atomically(args.out, schema_text())
    except OSError as exc:
        print(f"deepsquare schema: error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"wrote {args.out}")
    return 0

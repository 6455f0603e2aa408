"""``python -m deepsquare.export.sensitivity_cli CKPT... --to onnx,tflite --out DIR [--defaults-only]``: the int8
sensitivity sweep (export/sensitivity.py) of several checkpoints, one ``DIR/<arch>-<variant>/sensitivity.json`` and
``.md`` each; ``python -m deepsquare.export.sensitivity_report DIR/*/sensitivity.json`` prints their table (the docs'
int8 results). SIGTERM or Ctrl+C stops it cleanly: each sweep's temporary folder is removed, its converters stopped."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from deepsquare.runtime.processes import Stopped, stopping_on_signals

from .errors import ExportError
from .sensitivity import first_line, int8_formats, sweep


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(prog="python -m deepsquare.export.sensitivity_cli", description=__doc__)
    made.add_argument("checkpoints", nargs="+", type=Path, help="model.ckpt files to sweep")
    made.add_argument("--to", default="onnx,tflite,executorch", help="int8 formats (default onnx,tflite,executorch)")
    made.add_argument("--out", type=Path, required=True, help="DIR/<arch>-<variant>/sensitivity.json per checkpoint")
    made.add_argument("--defaults-only", action="store_true", help="all int8 and --keep-float auto only")
    return made


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when every checkpoint was swept, 1 when one could not be (it is named; the others still run)."""
    made = parser()
    args = made.parse_args(argv)
    try:  # a bad --to is refused once, before any checkpoint is loaded
        int8_formats(args.to)
    except ExportError as exc:
        made.error(str(exc))
    failed = []
    with stopping_on_signals():
        try:
            for path in args.checkpoints:
                try:
                    result = sweep(path, args.to, per_kind=not args.defaults_only)
                except Exception as exc:  # a checkpoint that cannot be deployed; a stop is no Exception
                    failed.append(f"{path}: {first_line(exc)}")
                    print(f"sensitivity: {failed[-1]}", file=sys.stderr)
                    continue
                result.write(args.out / f"{result.arch}-{result.variant}")
        except KeyboardInterrupt as exc:
            signum = exc.signum if isinstance(exc, Stopped) else signal.SIGINT
            print(
                f"sensitivity: interrupted ({signal.Signals(signum).name}); reports written so far are kept",
                file=sys.stderr,
            )
            return 128 + signum
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What an export is asked for (:class:`ExportRequest`), and the checks that refuse a bad request in a second,
before any converter is imported: an unknown format, a precision no chosen format offers, a converter that is
not installed, a missing checkpoint, an unwritable ``--out``."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from deepsquare.runtime.formats import FORMATS, Format, parse_format_names
from deepsquare.runtime.options import jobs_or_cores
from deepsquare.train.checkpoint import CheckpointError

from .errors import ExportError
from .int8_units import int8_options_problem
from .needs import ConverterMissing

INPUT_KINDS = ("float", "uint8")  # --input: normalized float (as trained), or uint8 pixels with the prologue


@dataclass
class ExportRequest:
    checkpoint: Path
    formats: list[str]
    out: Path
    precision: str | None = None  # applied to the formats that offer it; None or the others: each format's default
    calib: str | None = None  # --data spec of int8 calibration images (default: the checkpoint's data)
    samples: int = 32  # real images in the parity check
    verbose: bool = False  # show the converters' own output
    jobs: int = 0  # formats converted at once, each in its own process; 0: one per core; 1: all in this process
    require_delegated: bool = False  # fail a TFLite / ExecuTorch graph that leaves an op outside XNNPACK
    parity_report: bool = False  # layer-wise parity of every format (parity_layers.json/.md), not only failed ones
    input: str = "float"  # "uint8": the graphs take RGB pixels, normalization inside (export/prologue.py)
    keep_float: str = "auto"  # int8: units kept float: auto, none, or slugs/module paths (export/int8_units.py)
    sensitivity: bool = False  # int8: choose what stays float per format by a sweep (export/sensitivity.py)

    def workers(self) -> int:
        wanted = jobs_or_cores(self.jobs)  # the one rule for --jobs 0
        return max(1, min(wanted, len(self.formats)))


def parse_formats(text: str) -> list[str]:
    """``--to`` text -> format names (the one parser, ``runtime.formats.parse_format_names``); ExportError if bad."""
    try:
        return parse_format_names(text)
    except ValueError as exc:
        raise ExportError(str(exc)) from None


def precision_for(fmt: Format, asked: str | None) -> str:
    return asked if asked in fmt.precisions else fmt.precisions[0]


def check_request(request: ExportRequest) -> None:
    """Everything that can be refused in a second, before any converter is imported."""
    for name in request.formats:
        if name not in FORMATS:
            raise ExportError(f"unknown format {name!r}; valid: {', '.join(FORMATS)}")
    offered = [n for n in request.formats if request.precision in FORMATS[n].precisions]
    if request.precision is not None and not offered:
        by_format = "; ".join(f"{n}: {', '.join(FORMATS[n].precisions)}" for n in request.formats)
        raise ExportError(
            f"precision {request.precision!r} is offered by none of {', '.join(request.formats)} ({by_format})"
        )
    if request.samples < 0:
        raise ExportError(f"--samples must be >= 0, got {request.samples}")
    if request.input not in INPUT_KINDS:
        raise ExportError(f"--input must be one of {', '.join(INPUT_KINDS)}, got {request.input!r}")
    problem = int8_options_problem(request.precision, request.keep_float, request.sensitivity)
    if problem:
        raise ExportError(problem)
    if request.jobs < 0:
        raise ExportError(f"--jobs must be >= 0 (0: one per core), got {request.jobs}")
    for name in request.formats:
        missing = FORMATS[name].missing_modules()
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            extra = FORMATS[name].extra
            raise ConverterMissing(f"{', '.join(missing)} {verb} not installed: pip install 'deepsquare[{extra}]'")
    if not request.checkpoint.is_file():
        what = "is not a file" if request.checkpoint.exists() else "does not exist"
        raise CheckpointError(f"checkpoint {request.checkpoint} {what}")
    prepare_out(request.out)


def prepare_out(out: Path) -> None:
    """--out and the folder it sits in must be writable (the new bundle is staged beside it)."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"cannot write to --out {out}: it is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        for folder in (out, out.resolve().parent):
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
                pass
    except OSError as exc:
        raise ExportError(f"cannot write to --out {out}: {exc.strerror or exc}") from exc

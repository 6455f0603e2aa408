"""Which modules an int8 file should keep in float: a per-unit-kind sensitivity sweep and a greedy fallback.

For each int8 format asked, the deploy model of a checkpoint is converted by the format's own converter
([CONVERTERS][deepsquare.export.converters.CONVERTERS], ``precision="int8"``, ``keep_float=...``) into a temporary
folder, several times: (a) everything int8; (b) each unit kind of
[int8_units][deepsquare.export.int8_units.int8_units] alone in int8, every other unit kept float; (c) the greedy
fallback: the kinds that did the most damage alone kept float one at a time, until the whole-model file reaches the
goal (``GOAL_AGREEMENT`` % top-1 agreement with the PyTorch deploy model and held-out top-1 within
``GOAL_TOP1`` point) or every kind is float. Each file runs in its own runtime on the held-out split
(``deepsquare.export.bench_accuracy.held_out``: the checkpoint's data, or ``data``) and is compared, image by image,
with the PyTorch deploy model: agreement, top-1 and the paired difference with its 95% interval
(``deepsquare.train.stats.paired_difference``). The files are measured with normalized float input; the module
paths chosen hold for ``--input uint8`` files too (paths are relative to the prologue's model).

``deepsquare export --precision int8 --sensitivity`` runs ``sweep`` and converts each format with its choice
(``SweepResult.chosen``); ``sensitivity.json`` / ``sensitivity.md`` (``SweepResult.write``) go in the bundle.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepsquare.runtime.bundle import BundleMeta
from deepsquare.runtime.formats import FORMATS
from deepsquare.runtime.latency import BenchModel
from deepsquare.runtime.machine import cpu_line, load_snapshot, versions
from deepsquare.runtime.probe import crash_reason
from deepsquare.runtime.quiet import quiet
from deepsquare.train.checkpoint import Checkpoint
from deepsquare.train.data import load_data
from deepsquare.train.stats import paired_difference

from .bench_accuracy import HeldOut, file_predictions, held_out, normalized
from .converters import CONVERTERS
from .deploy import deploy_transform
from .errors import ExportError
from .int8_units import DEFAULT_KEEP_FLOAT, int8_units
from .jobs import format_entry
from .needs import ConverterMissing
from .sensitivity_choice import GOAL_AGREEMENT, GOAL_TOP1, Measurement, alone_label, greedy_fallback
from .sensitivity_report import write_report

CALIBRATION_IMAGES = 64  # training images, as the export pipeline calibrates
Log = Callable[[str], None]


@dataclass
class FormatSweep:
    """One format's sweep: every measurement and the keep-float choice."""

    format: str
    units: dict[str, list[str]]  # unit kind -> module paths of the deploy model
    all_int8: Measurement
    alone: list[Measurement]  # one per unit kind, in ``units`` order
    fallback: list[Measurement]  # the greedy steps, each keeping one more kind float
    keep_float: tuple[str, ...]  # the unit kinds chosen
    reached: bool  # the chosen file meets the goal
    seconds: float = 0.0

    def keep_float_paths(self) -> tuple[str, ...]:
        """The module paths of :attr:`keep_float`, in model order as ``int8_units`` lists them."""
        return paths_of(self.units, self.keep_float)

    def chosen(self) -> Measurement:
        """The measurement of the file the choice makes."""
        return next((m for m in [self.all_int8, *self.fallback] if m.keep_float == self.keep_float), self.all_int8)


@dataclass
class SweepResult:
    """Per int8 format its sweep; the formats that could not be swept and why; where it ran."""

    checkpoint: str
    arch: str
    variant: str
    data: str  # "364 test images of --data digits"
    calibration: int  # training images the int8 files were calibrated on
    formats: dict[str, FormatSweep] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # format -> why (a converter to install)
    cpu: str = field(default_factory=cpu_line)
    versions: dict[str, str] = field(default_factory=versions)  # Python, runtimes and libraries
    load: list[float | None] = field(default_factory=list)  # 1-minute load average at the start and the end
    seconds: float = 0.0

    def chosen(self) -> dict[str, tuple[str, ...]]:
        """Format -> the module paths its int8 file keeps float (what the export converts with)."""
        return {name: sweep.keep_float_paths() for name, sweep in self.formats.items()}

    def as_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["goal"] = {"agreement": GOAL_AGREEMENT, "top1": GOAL_TOP1}
        for name, sweep in self.formats.items():
            record["formats"][name]["keep_float_paths"] = list(sweep.keep_float_paths())
        return record

    def write(self, folder: Path) -> list[Path]:
        """``sensitivity.json`` and ``sensitivity.md`` in ``folder``, each written whole or not at all."""
        return write_report(self.as_dict(), folder)


def paths_of(units: dict[str, list[str]], kinds: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(path for kind in units if kind in kinds for path in units[kind])


# --- measuring -------------------------------------------------------------------------------------------------


@dataclass
class Subject:
    """What every measurement of one checkpoint shares: the deploy model, calibration and held-out images."""

    deployed: torch.nn.Module
    meta: BundleMeta
    calibration: torch.Tensor  # normalized NCHW training images
    data: HeldOut
    reference: np.ndarray  # the PyTorch deploy model's top-1 class per held-out image
    verbose: bool = False
    threads: int = 1


@torch.no_grad()
def deploy_predictions(model: torch.nn.Module, data: HeldOut, mean: list[float], std: list[float]) -> np.ndarray:
    """The deploy model's top-1 class per held-out image (fed as the float files are: normalized pixels)."""
    chunks = [
        model(torch.from_numpy(normalized(data.pixels[i : i + 64], mean, std))).argmax(dim=1).numpy()
        for i in range(0, len(data.labels), 64)
    ]
    return np.concatenate(chunks)


def prepare(
    checkpoint: Path, data: str | None, images: int | None, calibration: int, calib: str | None = None
) -> Subject:
    """The deploy model of ``checkpoint`` and the images: calibration from the training split of ``calib`` (default
    ``data``, then the checkpoint's data), evaluation on the held-out split of ``data`` or the checkpoint's data
    (the first ``images``; all when None)."""
    ckpt = Checkpoint.load(checkpoint)
    spec = data or ckpt.data
    calib = ckpt.normalize(load_data(calib or spec, ckpt.input_size).train.images[:calibration])
    deployed, _ = deploy_transform(ckpt.build_model(), calib[:8])
    held = held_out(spec, ckpt.input_size, images)
    meta = BundleMeta(**ckpt.bundle_meta())
    reference = deploy_predictions(deployed, held, list(meta.mean), list(meta.std))
    return Subject(deployed, meta, calib, held, reference)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def compare(m: Measurement, predicted: np.ndarray, subject: Subject) -> None:
    """Fill ``m``'s figures: the file's top-1 classes against PyTorch's and the labels, image by image."""
    labels, reference = subject.data.labels, subject.reference
    correct, reference_correct = (predicted == labels).astype(int), (reference == labels).astype(int)
    paired = paired_difference(correct.tolist(), reference_correct.tolist())
    m.agreement = 100.0 * float(np.mean(predicted == reference))
    m.top1, m.reference_top1 = 100.0 * float(correct.mean()), 100.0 * float(reference_correct.mean())
    m.diff, m.ci95 = float(paired["diff"]), (float(paired["ci95"][0]), float(paired["ci95"][1]))


def measure(subject: Subject, fmt: str, units: dict[str, list[str]], kinds: tuple[str, ...], label: str) -> Measurement:
    """Convert ``fmt`` in int8 keeping ``kinds`` float, in a temporary folder; run it on the held-out images."""
    started = time.perf_counter()
    paths = paths_of(units, kinds)
    m = Measurement(label, kinds, len(paths))
    meta = BundleMeta(**{**subject.meta.__dict__, "formats": {fmt: format_entry(FORMATS[fmt], "int8")}})
    calibration = subject.calibration
    with tempfile.TemporaryDirectory(prefix="deepsquare-sensitivity-") as tmp:
        path = Path(tmp) / FORMATS[fmt].file
        try:
            with quiet(subject.verbose):
                info = CONVERTERS[fmt](
                    subject.deployed.for_format(fmt),
                    calibration[:2],
                    Path(tmp),
                    meta,
                    precision="int8",
                    calibration=calibration,
                    keep_float=paths,
                )
            m.float_ops = info.get("float_ops")
            # a quantized file can crash its runtime outright (runtime/probe.py): try it in a child first
            crash = crash_reason(fmt, path, asdict(meta), 1, meta.input_size)
            if crash is not None:
                m.error = f"{FORMATS[fmt].runtime} could not run it: {crash}"
            else:
                model = BenchModel(label, meta.arch, meta.variant, meta.input_size, {fmt: path}, "sensitivity")
                model.meta = meta
                compare(m, np.asarray(file_predictions(model, fmt, subject.data, subject.threads)), subject)
        except ConverterMissing:
            raise
        except Exception as exc:  # a converter or runtime failure is this measurement's, not the sweep's
            m.error = first_line(exc)
    m.seconds = round(time.perf_counter() - started, 1)
    return m


def sweep_format(subject: Subject, fmt: str, log: Log, per_kind: bool = True) -> FormatSweep:
    """(a) all int8, (b) each unit kind alone in int8, (c) the greedy fallback; one progress line each.
    ``per_kind=False``: (a) and the format's default fallback (``--keep-float auto``) only."""
    started = time.perf_counter()
    units = int8_units(subject.deployed.for_format(fmt))
    kinds = tuple(units)
    default = tuple(k for k in DEFAULT_KEEP_FLOAT.get(fmt, ()) if k in units)
    planned = 1 + (len(kinds) if per_kind else len(default[:1]))
    done: dict[frozenset[str], Measurement] = {}  # a fallback step can be a file measured already

    def run(kept: tuple[str, ...], label: str, step: str) -> Measurement:
        key = frozenset(kept)
        if key not in done:
            done[key] = measure(subject, fmt, units, kept, label)
        m = replace(done[key], label=label, keep_float=kept)
        log(f"sensitivity {fmt} {step}: {label}: {m.figures()}")
        return m

    all_int8 = run((), "all int8", f"1/{planned}")
    if not per_kind:
        auto = [run(default, "keep float (auto): " + ", ".join(default), f"2/{planned}")] if default else []
        chosen_file = auto[0] if auto else all_int8
        result = FormatSweep(fmt, units, all_int8, [], auto, default, chosen_file.meets_goal())
        result.seconds = round(time.perf_counter() - started, 1)
        log(choice_line(result))
        return result
    alone = [
        run(tuple(k for k in kinds if k != kind), alone_label(kind), f"{i}/{planned}")
        for i, kind in enumerate(kinds, start=2)
    ]
    steps = iter(range(1, len(kinds) + 1))
    chosen = greedy_fallback(
        all_int8, alone, lambda kept: run(kept, "keep float: " + ", ".join(kept), f"fallback {next(steps)}")
    )
    result = FormatSweep(fmt, units, all_int8, alone, chosen.steps, chosen.keep_float, chosen.reached)
    result.seconds = round(time.perf_counter() - started, 1)
    log(choice_line(result))
    return result


def choice_line(result: FormatSweep) -> str:
    """``sensitivity onnx: chose keep float stem (1 module): agreement ...; goal reached (95 s)``."""
    kept = result.keep_float
    what = f"keep float {', '.join(kept)} ({len(result.keep_float_paths())} modules)" if kept else "all int8"
    verdict = "goal reached" if result.reached else "could not reach the goal (closest file chosen)"
    return f"sensitivity {result.format}: {what}: {result.chosen().figures()}; {verdict} ({result.seconds:.0f} s)"


def int8_formats(formats: str | list[str] | tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
    """The formats asked that offer int8, and why each other one is skipped; ExportError for an unknown name."""
    names = [n.strip() for n in formats.split(",")] if isinstance(formats, str) else list(formats)
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        raise ExportError(f"unknown format {unknown[0]!r}; valid: {', '.join(FORMATS)}")
    skipped = {
        n: f"offers no int8 ({', '.join(FORMATS[n].precisions)})" for n in names if "int8" not in FORMATS[n].precisions
    }
    for name in names:
        missing = FORMATS[name].missing_modules()
        if name not in skipped and missing:
            skipped[name] = f"{', '.join(missing)} not installed: pip install 'deepsquare[{FORMATS[name].extra}]'"
    return [n for n in names if n not in skipped], skipped


def sweep(
    checkpoint_path: str | Path,
    formats: str | list[str] | tuple[str, ...],
    *,
    data: str | None = None,
    images: int | None = None,
    calibration: int = CALIBRATION_IMAGES,
    calib: str | None = None,
    out: str | Path | None = None,
    log: Log = print,
    verbose: bool = False,
    per_kind: bool = True,
) -> SweepResult:
    """Sweep each int8 format of ``formats`` (names, or ``"onnx,tflite"``) for the checkpoint at
    ``checkpoint_path``; see the module's docstring.

    Args:
        data: ``--data`` spec of the calibration (training split) and evaluation (held-out split) images;
            default: the data the checkpoint was trained on.
        images: held-out images to evaluate on, the first ones of the split (None: all).
        calibration: training images the int8 files are calibrated on (the export pipeline's 64).
        calib: ``--data`` spec whose training split calibrates instead (``deepsquare export --calib``); the
            evaluation stays on ``data``'s held-out split, which has the labels.
        out: a folder to write ``sensitivity.json`` and ``sensitivity.md`` into (each whole or not at all).
        log: called with one progress line per measurement and one per format's choice.
        verbose: show the converters' own output.
        per_kind: measure each unit kind alone and search the fallback (the sweep); False: only everything int8
            and the format's default fallback, ``--keep-float auto`` (the docs' table of every variant).

    Returns:
        Every measurement and each format's choice; ``SweepResult.chosen`` gives the module paths per format.
        A format whose converter is not installed, or that offers no int8, is in ``skipped`` with the reason.
    """
    started, load_start = time.perf_counter(), load_snapshot()["load1"]
    names, skipped = int8_formats(formats)
    for name, why in skipped.items():
        log(f"sensitivity {name}: skipped, {why}")
    subject = prepare(Path(checkpoint_path), data, images, calibration, calib)
    result = SweepResult(
        str(checkpoint_path), subject.meta.arch, subject.meta.variant, subject.data.describe(), len(subject.calibration)
    )
    result.skipped = skipped
    for name in names:
        try:
            result.formats[name] = sweep_format(subject, name, log, per_kind)
        except ConverterMissing as exc:
            result.skipped[name] = str(exc)
            log(f"sensitivity {name}: skipped, {exc}")
    result.load = [load_start, load_snapshot()["load1"]]
    result.seconds = round(time.perf_counter() - started, 1)
    if out is not None:
        result.write(Path(out))
    return result

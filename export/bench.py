"""The latency benchmark behind ``deepsquare bench`` and ``deepsquare.bench``: build or load the models, time them.

What is timed and how is told in ``deepsquare.export.bench_cli`` (the command's help).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepsquare.runtime.bench_plan import check_precisions
from deepsquare.runtime.bundle import BundleError, BundleMeta, load_bundle
from deepsquare.runtime.formats import FORMATS, by_runtime
from deepsquare.runtime.latency import BenchModel, LatencyPlan, timeable_runtimes
from deepsquare.runtime.options import DEFAULT_ARCH
from deepsquare.runtime.quiet import quiet
from deepsquare.runtime.runners import open_model_file
from deepsquare.train import ARCHS, build_model, count_parameters, parse_variant
from deepsquare.train.checkpoint import Checkpoint
from deepsquare.train.data import DataError

from .complexity import count_ops
from .converters import CONVERTERS
from .deploy import deploy_transform
from .int8_units import resolve_keep_float
from .pipeline import calibration_batch, format_entry

DEFAULT_VARIANTS = "gap,se,sp,ss,sex,sen,sp+sex"
RANDOM_WEIGHTS = "random weights, BN set on random batches"
CALIBRATION_IMAGES = 16  # int8 scales only: the quantized graph, hence the latency, does not depend on them
Calibration = Callable[[], tuple[torch.Tensor, str]]  # int8 calibration images (normalized NCHW), what they are


def calibrate_batchnorm(model: nn.Module, input_size: int, batches: int = 3) -> None:
    """Set BN running statistics from random batches (cumulative average), no weight update."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn(4, 3, input_size, input_size))
    model.eval()


def random_calibration(input_size: int) -> torch.Tensor:
    """Normalized random images, like the batches that set the BN statistics of random-weight models."""
    generator = torch.Generator().manual_seed(1)
    return torch.randn(CALIBRATION_IMAGES, 3, input_size, input_size, generator=generator)


def export_for_bench(
    name: str,
    arch: str,
    variant: str,
    model: nn.Module,
    input_size: int,
    meta: BundleMeta,
    folder: Path,
    formats: set[str],
    source: str,
    precisions: tuple[str, ...] = ("fp32",),
    calibration: Calibration | None = None,
) -> list[BenchModel]:
    """Deploy-transform ``model``, count its cost, export it to ``formats`` at each precision (a format that does
    not offer one is left out of it) in ``folder``; one BenchModel per precision. ``calibration`` gives the int8
    calibration images and what they are (made only when a quantized file is exported)."""
    example = torch.randn(2, 3, input_size, input_size, generator=torch.Generator().manual_seed(0))
    deployed, _ = deploy_transform(model, example)
    ops = count_ops(deployed, input_size)
    params = count_parameters(deployed)
    calibrated: tuple[torch.Tensor, str] | None = None
    models = []
    for precision in precisions:
        where = folder if precision == "fp32" else folder / precision
        where.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        if precision == "int8":
            calibrated = calibrated or (calibration or (lambda: (random_calibration(input_size), "random")))()
            kwargs = {"precision": precision, "calibration": calibrated[0]}
            extra = {"calibration": calibrated[1]}
        elif precision != "fp32":
            kwargs = {"precision": precision}
        files = {}
        for fmt in sorted(f for f in formats if precision in FORMATS[f].precisions):
            entry_meta = BundleMeta(**{**meta.__dict__, "formats": {fmt: format_entry(FORMATS[fmt], precision)}})
            model = deployed.for_format(fmt)
            # int8: what `deepsquare export` keeps float by default (--keep-float auto): the file shipped
            kept = {"keep_float": resolve_keep_float(model, "auto", fmt)} if precision == "int8" else {}
            with quiet():
                CONVERTERS[fmt](model, example, where, entry_meta, **kwargs, **kept)
            files[fmt] = where / FORMATS[fmt].file
        models.append(
            BenchModel(
                name,
                arch,
                variant,
                input_size,
                files,
                source,
                params,
                ops.macs,
                ops.elementwise,
                meta,
                precision,
                extra,
            )
        )
    return models


def random_variant(
    arch: str, variant: str, input_size: int, num_classes: int, folder: Path, formats: set[str]
) -> BenchModel:
    return random_variant_at(arch, variant, input_size, num_classes, folder, formats)[0]


def random_variant_at(
    arch: str,
    variant: str,
    input_size: int,
    num_classes: int,
    folder: Path,
    formats: set[str],
    precisions: tuple[str, ...] = ("fp32",),
) -> list[BenchModel]:
    """A variant with random weights, exported at each precision (int8 calibrated on random inputs)."""
    stem = "cifar" if input_size <= 64 else "imagenet"
    model = build_model(arch, variant, num_classes, stem=stem)
    torch.manual_seed(0)
    calibrate_batchnorm(model, input_size)
    meta = BundleMeta(arch, variant, [str(i) for i in range(num_classes)], input_size, [0.5] * 3, [0.25] * 3)
    return export_for_bench(
        variant, arch, variant, model, input_size, meta, folder, formats, RANDOM_WEIGHTS, precisions
    )


def checkpoint_model(path: Path, folder: Path, formats: set[str]) -> BenchModel:
    return checkpoint_model_at(path, folder, formats)[0]


def checkpoint_model_at(
    path: Path, folder: Path, formats: set[str], precisions: tuple[str, ...] = ("fp32",)
) -> list[BenchModel]:
    """A trained checkpoint deployed and exported at each precision (int8 calibrated on its data, as
    deepsquare-export does)."""
    ckpt = Checkpoint.load(path)
    meta = BundleMeta(**ckpt.bundle_meta())

    def calibration() -> tuple[torch.Tensor, str]:
        # What deepsquare-export calibrates on: the checkpoint's training images; random when they do not load.
        try:
            return calibration_batch(None, ckpt), f"checkpoint data ({ckpt.data})"
        except (DataError, OSError, ValueError):
            return random_calibration(ckpt.input_size), "random (the checkpoint's data did not load)"

    return export_for_bench(
        meta.variant,
        meta.arch,
        meta.variant,
        ckpt.build_model(),
        ckpt.input_size,
        meta,
        folder,
        formats,
        str(path),
        precisions,
        calibration,
    )


def bundle_model(folder: Path, formats: set[str], name: str | None = None) -> BenchModel:
    """The files deepsquare-export wrote, timed as they are; cost figures from model.json."""
    folder, meta = load_bundle(folder)
    files = {}
    for fmt in sorted(formats):
        if fmt not in meta.formats:
            have = ", ".join(meta.formats) or "none"
            raise BundleError(f"bundle {folder} has no {fmt} model (it has: {have}); choose other --to")
        files[fmt] = folder / meta.formats[fmt].file
        if not files[fmt].exists():
            raise BundleError(f"bundle {folder} lists {files[fmt].name}, which is missing")
        if FORMATS[fmt].runs_here():  # a damaged file is refused now, not in the middle of the timing
            open_model_file(FORMATS[fmt], files[fmt], meta, 1)
    cost = meta.provenance.get("cost", {})
    return BenchModel(
        name or meta.variant,
        meta.arch,
        meta.variant,
        meta.input_size,
        files,
        str(folder),
        cost.get("params"),
        cost.get("macs"),
        cost.get("elementwise"),
        meta,
    )


def unique_names(models: list[BenchModel]) -> None:
    """Two models of one arch with one label get their source's folder name added (the files of one model at
    several precisions share its source, and keep one label)."""
    sources: dict[tuple[str, str], set[str]] = {}
    for m in models:
        sources.setdefault((m.arch, m.name), set()).add(m.source)
    for m in models:
        if len(sources[(m.arch, m.name)]) > 1:
            source = Path(m.source)
            m.name = f"{m.name} ({source.parent.name}/{source.name})"


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def plan_from_args(args: argparse.Namespace) -> LatencyPlan:
    """The timing plan, with every name checked before any model is exported."""
    formats = [FORMATS[name] for name in args.to]
    elsewhere = [fmt for fmt in formats if not fmt.runs_here()]
    if elsewhere:
        raise ValueError(
            f"{', '.join(f.name for f in elsewhere)} cannot be timed on this machine (its runtime needs "
            f"{', '.join(sorted({str(f.runs_on) for f in elsewhere}))}; there: deepsquare profile ios); "
            f"here: --to {','.join(by_runtime(r).name for r in timeable_runtimes())}"
        )
    runtimes = [fmt.runtime for fmt in formats]
    threads = list(args.threads)
    if not threads or min(threads) < 1:
        raise ValueError(f"--threads must be >= 1, got {','.join(map(str, threads))}")
    for arch in _split(args.arch):
        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r}; valid: {', '.join(ARCHS)}")
    for variant in _split(args.variants):
        parse_variant(variant)  # VariantError (a ValueError) names the bad part and the valid names
    precisions = list(dict.fromkeys(args.precision or [fmt.precisions[0] for fmt in formats]))
    check_precisions(runtimes, precisions)
    return LatencyPlan(
        args.runs, args.warmup, getattr(args, "time_budget", None), tuple(runtimes), tuple(threads), tuple(precisions)
    )


def split_models(paths: list[str]) -> tuple[list[Path], list[Path]]:
    """(checkpoints, bundles) among the positional paths: a file is a checkpoint, a folder with model.json a bundle."""
    checkpoints, bundles = [], []
    for text in paths:
        path = Path(text)
        if path.is_file():
            checkpoints.append(path)
        elif (path / "model.json").is_file():
            bundles.append(path)
        elif path.is_dir():
            raise ValueError(f"{path} is a folder without model.json: not a bundle written by deepsquare export")
        else:
            raise ValueError(f"{path} does not exist (give checkpoints written by deepsquare train or bundle folders)")
    return checkpoints, bundles


def prepare_models(
    args: argparse.Namespace, formats: set[str], workdir: Path, progress: bool, precisions: tuple[str, ...] = ("fp32",)
) -> list[BenchModel]:
    from tqdm import tqdm

    checkpoints, bundles = split_models(args.models)
    jobs: list[tuple[str, Any]] = [("checkpoint", p) for p in checkpoints] + [("bundle", p) for p in bundles]
    if not jobs or args.arch or args.variants:
        variants = list(dict.fromkeys(_split(args.variants or DEFAULT_VARIANTS)))
        if "gap" not in variants:
            variants.insert(0, "gap")  # every ratio is to gap
        jobs += [("random", (arch, v)) for arch in _split(args.arch or DEFAULT_ARCH) for v in variants]
    models = []
    bar = tqdm(total=len(jobs), desc="export", unit="model", disable=not progress, file=sys.stderr)
    for n, (kind, what) in enumerate(jobs):
        folder = workdir / f"{n:02d}"
        if kind == "checkpoint":
            models += checkpoint_model_at(what, folder, formats, precisions)
        elif kind == "bundle":
            models.append(bundle_model(what, formats))
        else:
            models += random_variant_at(
                what[0], what[1], args.input_size, args.num_classes, folder, formats, precisions
            )
        bar.update()
    bar.close()
    unique_names(models)
    return models

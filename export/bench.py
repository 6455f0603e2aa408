"""``deepsquare-bench``: latency of each DeepSquare variant against GAP and SE, per runtime.

    deepsquare-bench --arch shufflenetv2_x0_5,resnet18 --variants gap,se,sp,ss,sex,sen,sp+sex \\
                     --runtimes onnxruntime,litert --threads 1,2 --input-size 224 --out runs/bench
    deepsquare-bench --checkpoint runs/gap/model.ckpt,runs/sq/model.ckpt     # trained models
    deepsquare-bench --bundle runs/gap/export,runs/sq/export                 # exported bundles as shipped
    deepsquare-bench --arch resnet18 --variants gap,sp+sex --precisions fp32,int8   # int8 vs fp32 latency

What is timed: with --arch/--variants, each variant is built with random weights (latency does
not depend on them; BatchNorm statistics are set on random batches so squared activations stay
finite), deploy-transformed and exported. --checkpoint does the same from trained checkpoints;
--bundle times the files deepsquare-export wrote, unchanged. With --precisions fp32,int8 each
--arch/--checkpoint model is also exported in static int8 (the exporter's own quantizers; a
checkpoint calibrated on its data set, random-weight models on random inputs: calibration sets
the scales, not the quantized graph that is timed) and the files of every precision are
timed in the same interleaved group; a runtime whose format lacks a precision skips it, with a
note (a --bundle is timed at the precision it was exported at). Every model runs through
deepsquare.runtime at batch 1, after --warmup untimed rounds, for --runs rounds or --time-budget
seconds per (arch, runtime, threads) cell.

Models of one arch are interleaved run by run (A B C, B C A, C A B, ...) so drift on a shared
machine hits all of them alike, and the rounds are split into blocks whose runtime sessions are
created anew in rotated order (the first session created can run slower for its whole life).
Each model's latency is reported as a ratio to its baseline (``gap`` at the same precision when
present, else the first model of that arch): the geometric mean of the per-round ratios with a
95% interval; a quantized file also gets its ratio to the same model's fp32 file ("vs fp32"). An
interval that contains 1 means no difference was measured.

Also reported: params, MACs (conv and linear, counted by hooks), elementwise ops (every other
arithmetic op the forward pass dispatches), file size per format. Writes bench.json (records in
the one schema of deepsquare.runtime.records), bench.csv, bench.md and bench.png (overhead vs
baseline per runtime; latency vs params), and prints the table. --add-records joins records
measured elsewhere (``deepsquare-profile --json`` on a phone or a Mac) as a table of their own.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepsquare.runtime.bench_report import load_records, markdown_table, write_outputs
from deepsquare.runtime.bundle import BundleError, BundleMeta, load_bundle
from deepsquare.runtime.formats import FORMATS, by_runtime, runtime_names
from deepsquare.runtime.latency import BenchModel, LatencyPlan, check_precisions, time_models, timeable_runtimes
from deepsquare.runtime.quiet import quiet
from deepsquare.runtime.runners import RuntimeUnavailable, open_model_file
from deepsquare.train import ARCHS, build_model, count_parameters, parse_variant
from deepsquare.train.checkpoint import Checkpoint
from deepsquare.train.data import DataError

from .complexity import count_ops
from .converters import CONVERTERS, ConverterMissing
from .deploy import DeployError, deploy_transform
from .pipeline import ExportError, calibration_batch, format_entry, prepare_out

DEFAULT_ARCH = "shufflenetv2_x0_5"
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
            with quiet():
                CONVERTERS[fmt](deployed.for_format(fmt), example, where, entry_meta, **kwargs)
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
            raise BundleError(f"bundle {folder} has no {fmt} model (it has: {have}); choose other --runtimes")
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
    runtimes = _split(args.runtimes)
    unknown = [r for r in runtimes if r not in runtime_names()]
    if unknown or not runtimes:
        raise ValueError(f"unknown runtime(s) {unknown}; valid: {', '.join(timeable_runtimes())}")
    elsewhere = [r for r in runtimes if r not in timeable_runtimes()]
    if elsewhere:
        needs = {by_runtime(r).runs_on for r in elsewhere}
        raise ValueError(
            f"runtime(s) {elsewhere} cannot run on this machine (needs {', '.join(map(str, needs))}); "
            f"here: {', '.join(timeable_runtimes())}"
        )
    try:
        threads = [int(t) for t in _split(str(args.threads))]
    except ValueError as exc:
        raise ValueError(f"--threads takes whole numbers separated by commas, not {args.threads!r}") from exc
    if not threads or min(threads) < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads!r}")
    for arch in _split(args.arch):
        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r}; valid: {', '.join(ARCHS)}")
    for variant in _split(args.variants):
        parse_variant(variant)  # VariantError (a ValueError) names the bad part and the valid names
    precisions = list(dict.fromkeys(_split(getattr(args, "precisions", None) or "fp32")))
    check_precisions(runtimes, precisions)
    return LatencyPlan(
        args.runs, args.warmup, getattr(args, "time_budget", None), tuple(runtimes), tuple(threads), tuple(precisions)
    )


def prepare_models(
    args: argparse.Namespace, formats: set[str], workdir: Path, progress: bool, precisions: tuple[str, ...] = ("fp32",)
) -> list[BenchModel]:
    from tqdm import tqdm

    checkpoints = [Path(p) for p in _split(getattr(args, "checkpoint", None))]
    bundles = [Path(p) for p in _split(getattr(args, "bundle", None))]
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


def note_to_stderr(message: str) -> None:
    print(f"deepsquare-bench: note: {message}", file=sys.stderr)


def run_bench(
    args: argparse.Namespace, progress: bool = True, note: Callable[[str], None] = note_to_stderr
) -> dict[str, Any]:
    plan = plan_from_args(args)
    notes = check_precisions(list(plan.runtimes), list(plan.precisions))
    if getattr(args, "bundle", None) and plan.precisions != ("fp32",):
        notes.append(
            "--precisions applies to --arch and --checkpoint models; a --bundle is timed at the precision "
            "it was exported at (its model.json says which)"
        )
    for message in notes:
        note(message)
    elsewhere = load_records([Path(p) for p in _split(getattr(args, "add_records", None))])
    formats = {by_runtime(r).name for r in plan.runtimes}
    with tempfile.TemporaryDirectory(prefix="deepsquare-bench-") as workdir:
        models = prepare_models(args, formats, Path(workdir), progress, plan.precisions)
        result = time_models(models, plan, progress)
    for s in result["skipped"]:
        note(
            f"{s['arch']} {s['name']} ({s['precision']}) could not run in {s['runtime']} at {s['threads']} "
            f"thread(s), not timed: {s['reason']}"
        )
    result["records_elsewhere"] = elsewhere
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="deepsquare-bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    what = parser.add_argument_group("what to time (default: the variants of --arch with random weights)")
    what.add_argument("--arch", help=f"comma-separated archs (default {DEFAULT_ARCH})")
    what.add_argument("--variants", help=f"comma-separated variants; gap is always added (default {DEFAULT_VARIANTS})")
    what.add_argument("--input-size", type=int, default=224, help="for --arch models (default 224)")
    what.add_argument("--num-classes", type=int, default=1000, help="for --arch models (default 1000)")
    what.add_argument("--checkpoint", help="comma-separated checkpoints from deepsquare-train, deployed and exported")
    what.add_argument("--bundle", help="comma-separated folders written by deepsquare-export, timed as they are")
    what.add_argument(
        "--add-records",
        metavar="JSON",
        help="comma-separated record files measured elsewhere (deepsquare-profile --json), shown in their own table",
    )
    how = parser.add_argument_group("how")
    how.add_argument(
        "--runtimes",
        default="onnxruntime,litert",
        help=f"comma list of {', '.join(timeable_runtimes())} (default onnxruntime,litert)",
    )
    offered = "; ".join(f"{fmt.runtime}: {', '.join(fmt.precisions)}" for fmt in FORMATS.values() if fmt.runs_here())
    how.add_argument(
        "--precisions",
        default="fp32",
        help=f"comma list of precisions exported and timed side by side ({offered}; a runtime "
        "skips one its format lacks; default fp32)",
    )
    how.add_argument("--threads", default="1", help="comma-separated thread counts (default 1)")
    how.add_argument("--runs", type=int, default=30, help="timed rounds per model (default 30)")
    how.add_argument(
        "--time-budget",
        type=float,
        metavar="SECONDS",
        help="instead of --runs: time rounds for this long per (arch, runtime, threads) cell",
    )
    how.add_argument("--warmup", type=int, default=5, help="untimed rounds after each block's new sessions (default 5)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"), help="report folder (default runs/bench)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.runs < 2 or args.warmup < 0 or args.input_size < 8:
        parser.error("--runs must be >= 2, --warmup >= 0, --input-size >= 8")
    if args.time_budget is not None and not args.time_budget > 0:
        parser.error("--time-budget must be a positive number of seconds")
    try:
        prepare_out(args.out)
        result = run_bench(args, progress=not args.quiet)
    except (ValueError, DeployError, ConverterMissing, RuntimeUnavailable, ExportError) as exc:
        print(f"deepsquare-bench: error: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    write_outputs(result, args.out)
    print(markdown_table(result))
    print(f"report: {args.out / 'bench.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``deepsquare profile MODEL``: where the time goes, per PyTorch module, from each runtime's own profiler.

Examples:
  deepsquare profile runs/sex/export                       # a bundle: its ONNX file in ONNX Runtime
  deepsquare profile runs/sex/export --against runs/gap/export --out runs/profile
  deepsquare profile runs/sex/model.ckpt --against runs/gap/model.ckpt --threads 1 --runs 50
  deepsquare profile model.onnx                            # a model file with its op map beside it
  deepsquare profile sp+ss+sex --against gap --input-size 224   # random-weight variants of --arch

MODEL and BASELINE are bundles (folders written by deepsquare export), checkpoints (deepsquare train; exported
here first), model files with their op map beside them (model.onnx.modules.json, written at export), or variant
names (random weights, as deepsquare bench --variant: latency does not depend on the weights). Each op
the runtime ran is mapped back to the module it came from (stage3.2.attention) and to its kind (convolution,
depthwise convolution, channel split/concat/shuffle, Square-Pooling, Square-Excitation squeeze and gate, SE FCs,
classifier, layout reorders the runtime inserted, ...). Rounds are interleaved like every timing here; the
per-op sum is compared with the whole-model time of the same runs. --against a baseline of the same arch (the
gap model) splits the extra time by module kind. With --out: profile.json, profile.md, profile-<runtime>.png.

Runtimes: ONNX Runtime (--to onnx: its session profiler); ExecuTorch (--to executorch: ETDump events and the
devtools Inspector; checkpoints and variant names only, which are lowered here with the ETRecord that maps events
to modules; XNNPACK partitions are timed whole). LiteRT's Python API has no per-op profiler: see
deepsquare profile android --op-profiling (TFLite's benchmark_model on a phone).
Device paths: deepsquare profile android | ios | parse (each has its own --help).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from deepsquare.runtime.bundle import BundleError, load_bundle
from deepsquare.runtime.formats import FORMATS
from deepsquare.runtime.op_profile import OpProfileError, decompose
from deepsquare.runtime.op_profile_report import decomposition_lines, profile_lines, write_outputs
from deepsquare.runtime.op_profile_runtimes import LITERT_NOTE, ProfileTarget, profile_onnxruntime
from deepsquare.runtime.options import (
    DEFAULT_ARCH,
    UsageError,
    add_formats,
    add_out,
    add_rounds,
    add_threads,
    add_verbosity,
    check_rounds,
    check_threads,
    one_value,
)
from deepsquare.runtime.timing import TimingPlan

PROFILED = ("onnx", "executorch")
VARIANT_NAME = re.compile(r"^[a-z0-9_]+(\+[a-z0-9_]+)*$")  # formats whose runtime's per-op profiler runs here


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, metavar="MODEL", help="a bundle folder, a checkpoint or a model file")
    parser.add_argument(
        "--against",
        type=Path,
        metavar="BASELINE",
        help="a bundle, checkpoint or model file of the same arch (the gap model): the difference by module kind",
    )
    add_formats(parser, default="onnx", help="the formats to profile")
    add_threads(parser, help="runtime threads (one value)")
    add_rounds(parser, what="profiled rounds per model")
    parser.add_argument(
        "--arch",
        default=DEFAULT_ARCH,
        help="the backbone of MODEL/BASELINE given as variant names (a variant BASELINE of a bundle or checkpoint "
        "MODEL takes the MODEL's arch, input size and classes)",
    )
    parser.add_argument("--input-size", type=int, default=224, help="square input side of variant-name models")
    parser.add_argument("--num-classes", type=int, default=1000, help="classes of variant-name models")
    add_out(parser, default=None, help="write profile.json, profile.md and a chart per runtime here")
    add_verbosity(parser)


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse bad flags before anything is exported or timed (torch is not imported yet)."""
    check_rounds(args, least_runs=1)
    threads = one_value("--threads", args.threads)
    check_threads([threads])
    for path in [args.model, *([args.against] if args.against else [])]:
        if not path.exists() and not VARIANT_NAME.match(str(path)):
            raise UsageError(f"{path} does not exist (give a bundle folder, a checkpoint, a model file or a variant)")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is a file; give a folder")
    if args.num_classes < 1:
        raise UsageError(f"--num-classes must be >= 1, got {args.num_classes}")
    if not 8 <= args.input_size <= 4096:
        raise UsageError(f"--input-size must be between 8 and 4096, got {args.input_size}")


def is_model_file(path: Path) -> bool:
    return path.is_file() and any(path.name.endswith(Path(f.file).suffix) for f in FORMATS.values())


def targets_of(path: Path, formats: list[str], workdir: Path, args: argparse.Namespace) -> dict[str, ProfileTarget]:
    """The model file of each format of ``path`` (a bundle, a model file, or a checkpoint or variant name exported
    into ``workdir``), by format."""
    if path.is_dir():
        folder, meta = load_bundle(path)
        missing = [f for f in formats if f not in meta.formats]
        if missing:
            have = ", ".join(meta.formats) or "none"
            raise BundleError(f"bundle {folder} has no {', '.join(missing)} model (it has: {have}); choose other --to")
        return {f: ProfileTarget(meta.variant, folder / meta.formats[f].file, meta.input_size) for f in formats}
    if is_model_file(path):
        fmt = next(name for name, f in FORMATS.items() if path.name.endswith(Path(f.file).suffix))
        if fmt not in formats:
            raise UsageError(f"{path.name} is a {fmt} file; --to asks for {', '.join(formats)}")
        return {fmt: ProfileTarget(_label_of(path), path, 0)}
    from .profile_checkpoint import export_checkpoint, export_variant  # torch: only to export

    if path.is_file():
        return export_checkpoint(path, formats, workdir)
    return export_variant(str(path), args.arch, args.input_size, args.num_classes, formats, workdir)


def _label_of(path: Path) -> str:
    try:
        return load_bundle(path.parent)[1].variant
    except BundleError:
        return path.stem


def profile(args: argparse.Namespace) -> tuple[dict[str, Any], list]:
    """Profile MODEL (and BASELINE) in every runtime of --to; the result and the profiles."""
    formats = list(args.to)
    notes = []
    if "tflite" in formats:
        notes.append(LITERT_NOTE)
    other = [f for f in formats if f not in PROFILED and f != "tflite"]
    if other:
        notes.append(f"{', '.join(other)}: no per-op profiler here yet (profiled: {', '.join(PROFILED)})")
    notes += load_notes()
    formats = [f for f in formats if f in PROFILED]
    if not formats:
        raise UsageError(f"none of --to {','.join(args.to)} can be profiled per op here; {' '.join(notes)}")
    threads = one_value("--threads", args.threads)
    plan = TimingPlan(runs=args.runs, warmup=args.warmup)
    match_baseline(args)
    profiles = []
    with tempfile.TemporaryDirectory(prefix="deepsquare-profile-") as workdir:
        sources = [args.model, *([args.against] if args.against else [])]
        for fmt in formats:
            if fmt == "executorch":
                profiles += _profile_executorch(sources, args, Path(workdir), threads, plan)
                continue
            targets = [
                targets_of(source, [fmt], Path(workdir) / f"{fmt}-{i}", args)[fmt] for i, source in enumerate(sources)
            ]
            if len(targets) == 2 and targets[0].label == targets[1].label:
                targets[1].label += " (baseline)"
            profiles += profile_onnxruntime(targets, threads, plan)
    against = [decompose(profiles[i], profiles[i + 1]) for i in range(0, len(profiles), 2)] if args.against else []
    from deepsquare.runtime.records import this_machine

    result = {
        "schema": "deepsquare-profile/1",
        "machine": this_machine(),
        "threads": threads,
        "profiles": [p.to_dict() for p in profiles],
        "against": against,
        "notes": notes,
    }
    return result, profiles


def model_facts(path: Path) -> tuple[str, int, int] | None:
    """(arch, input size, classes) of a bundle, a model file of a bundle or a checkpoint; None for a variant."""
    folder = path if path.is_dir() else path.parent
    try:
        meta = load_bundle(folder)[1]
        return meta.arch, meta.input_size, len(meta.classes)
    except BundleError:
        pass
    if path.is_file() and not is_model_file(path):
        from deepsquare.train.checkpoint import Checkpoint, CheckpointError

        try:
            ckpt = Checkpoint.load(path)
        except CheckpointError as exc:
            raise UsageError(str(exc)) from exc
        meta = ckpt.bundle_meta()
        return meta["arch"], meta["input_size"], len(meta["classes"])
    return None


def match_baseline(args: argparse.Namespace) -> None:
    """A BASELINE given as a variant name takes MODEL's arch, input size and classes (unless given as flags)."""
    if args.against is None or args.against.exists():
        return
    facts = model_facts(args.model) if args.model.exists() else None
    if facts is None:
        return
    given = getattr(args, "given", [])
    flags = (("--arch", "arch"), ("--input-size", "input_size"), ("--num-classes", "num_classes"))
    for (flag, attr), value in zip(flags, facts, strict=True):
        if not any(word == flag or word.startswith(f"{flag}=") for word in given):
            setattr(args, attr, value)


def load_notes() -> list[str]:
    """A note when other work shares the CPUs: preempted runs inflate whole-model medians, not per-op medians."""
    try:
        load, cpus = os.getloadavg()[0], os.cpu_count() or 1
    except OSError:
        return []
    if load <= cpus:
        return []
    return [
        f"load average {load:.1f} on {cpus} CPUs: other work preempted runs; per-op times are medians over runs, "
        "robust to it, while the whole-model medians and the without-profiler times are not"
    ]


def _profile_executorch(sources: list[Path], args: argparse.Namespace, workdir: Path, threads: int, plan: TimingPlan):
    from .profile_checkpoint import executorch_target
    from .profile_executorch import profile_executorch

    targets = [executorch_target(source, args, workdir / f"executorch-{i}") for i, source in enumerate(sources)]
    if len(targets) == 2 and targets[0]["label"] == targets[1]["label"]:
        targets[1]["label"] += " (baseline)"
    return profile_executorch(targets, threads, plan)


def run(args: argparse.Namespace) -> int:
    check_arguments(args)
    try:
        result, profiles = profile(args)
    except (BundleError, OpProfileError, OSError) as exc:
        if args.verbose:
            raise
        print(f"deepsquare profile: error: {exc}", file=sys.stderr)
        return 1
    lines = [f"machine: {result['machine']}", ""]
    for p in profiles:
        lines += [*profile_lines(p), ""]
    for delta in result["against"]:
        lines += [*decomposition_lines(delta), ""]
    lines += [f"note: {note}" for note in result["notes"]]
    if args.out is not None:
        written = write_outputs(result, profiles, args.out)
        lines.append("wrote " + ", ".join(str(p) for p in written))
    print("\n".join(lines).rstrip())
    return 0

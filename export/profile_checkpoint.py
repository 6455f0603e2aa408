"""The torch side of ``deepsquare profile``: a checkpoint, or a variant with random weights, exported (with its op
map) into a scratch folder, as ``deepsquare bench`` exports them. Latency does not depend on the weights' values,
so a random-weight variant profiles like a trained one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from deepsquare.runtime.op_profile_runtimes import ProfileTarget
from deepsquare.runtime.options import UsageError
from deepsquare.train import ARCHS, parse_variant
from deepsquare.train.checkpoint import CheckpointError

from .bench import checkpoint_model_at, random_variant_at


def export_checkpoint(path: Path, formats: list[str], workdir: Path) -> dict[str, ProfileTarget]:
    """Export checkpoint ``path`` to each format in ``workdir``; the file of each format."""
    try:
        (model,) = checkpoint_model_at(path, workdir, set(formats))
    except CheckpointError as exc:
        raise UsageError(str(exc)) from exc
    return {f: ProfileTarget(model.name, model.files[f], model.input_size) for f in formats}


def export_variant_check(variant: str, arch: str) -> None:
    if arch not in ARCHS:
        raise UsageError(f"unknown --arch {arch!r}; valid: {', '.join(ARCHS)}")
    try:
        parse_variant(variant)
    except ValueError as exc:
        raise UsageError(f"{variant} is neither a file, a folder nor a variant: {exc}") from exc


def export_variant(
    variant: str, arch: str, input_size: int, num_classes: int, formats: list[str], workdir: Path
) -> dict[str, ProfileTarget]:
    """A random-weight ``variant`` of ``arch`` exported to each format in ``workdir`` (BN set on random batches)."""
    export_variant_check(variant, arch)
    (model,) = random_variant_at(arch, variant, input_size, num_classes, workdir, set(formats))
    return {f: ProfileTarget(variant, model.files[f], input_size) for f in formats}


def executorch_target(source: Path, args: Any, workdir: Path) -> dict[str, Any]:
    """A checkpoint or a random-weight variant deployed and lowered to ExecuTorch with its ETRecord (what maps the
    runtime's events to modules); a bundle's ``.pte`` has none, so it is refused."""
    from deepsquare.train import build_model
    from deepsquare.train.checkpoint import Checkpoint

    from .bench import calibrate_batchnorm
    from .deploy import deploy_transform
    from .profile_executorch import lower_with_etrecord

    if source.is_dir() or source.suffix == ".pte":
        raise UsageError(
            f"{source}: an ExecuTorch profile needs the ETRecord written while lowering, which a bundle does not ship; "
            "give the checkpoint (or a variant name) instead"
        )
    if source.is_file():
        try:
            ckpt = Checkpoint.load(source)
        except CheckpointError as exc:
            raise UsageError(str(exc)) from exc
        model, size, label = ckpt.build_model(), ckpt.input_size, ckpt.bundle_meta()["variant"]
    else:
        export_variant_check(str(source), args.arch)
        model = build_model(
            args.arch, str(source), args.num_classes, stem="cifar" if args.input_size <= 64 else "imagenet"
        )
        torch.manual_seed(0)
        calibrate_batchnorm(model, args.input_size)
        size, label = args.input_size, str(source)
    example = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    deployed = deploy_transform(model, example)[0].for_format("executorch")
    pte, etrecord = lower_with_etrecord(deployed, size, workdir / "executorch")
    return {"label": label, "pte": pte, "etrecord": etrecord, "model": deployed, "input_size": size}

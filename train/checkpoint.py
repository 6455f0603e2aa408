"""The checkpoint: one file holding everything export needs, loaded without running code.

Written with ``torch.save`` and read with ``torch.load(weights_only=True)``: only tensors and
plain containers are accepted, so a file carrying a pickled object is refused, never run.
Writes go to a temporary file in the same folder, are fsynced, then renamed into place: a
crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from deepsquare.runtime.files import write_atomically

from .models import SquareNet, build_from_spec
from .spec import ModelSpec

FORMAT = "deepsquare-checkpoint"
VERSION = 1
REQUIRED = ("format", "version", "spec", "state_dict", "classes", "input_size", "mean", "std")


class CheckpointError(ValueError):
    """A file that is not a usable deepsquare checkpoint; the message says why."""


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Atomically write ``payload`` (plus format tags) to ``path``."""
    data = {"format": FORMAT, "version": VERSION, **payload}
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ValueError(f"checkpoint payload lacks {', '.join(missing)}")
    data["checksum"] = {"algorithm": "sha256", "state_dict": state_checksum(data["state_dict"])}
    return write_atomically(Path(path), lambda f: torch.save(data, f))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a checkpoint; :class:`CheckpointError` with a one-line reason otherwise."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a file")
    if not zipfile.is_zipfile(path):  # torch.save always writes a zip archive
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or another format)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses any global it does not know: the file wants to run code.
        found = re.search(r"(?i)unsupported(?: global:)? GLOBAL ([\w.]+)", str(exc))
        first = f"it wants {found.group(1)}" if found else "unsupported pickled object"
        raise CheckpointError(
            f"{path} holds pickled objects that safe loading refuses (it was not run): {first}"
        ) from exc
    except (RuntimeError, zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or another format): {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        kind = (
            "a plain state dict"
            if isinstance(data, dict) and data and all(isinstance(v, torch.Tensor) for v in data.values())
            else type(data).__name__
        )
        raise CheckpointError(f"{path} is not a deepsquare checkpoint (found {kind}); train one with deepsquare train")
    if data.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {data.get('version')}; this deepsquare reads {VERSION}")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}")
    try:
        if not isinstance(data["spec"], dict):
            raise TypeError(f"expected a mapping, found {type(data['spec']).__name__}")
        data["model_spec"] = ModelSpec.from_dict(data["spec"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} has an invalid model spec: {exc}") from exc
    problem = metadata_problem(data)
    if problem:
        raise CheckpointError(f"{path}: {problem}; the checkpoint's metadata contradicts its model")
    verify_checksum(data, path)
    return data


def metadata_problem(data: dict[str, Any]) -> str | None:
    """The first field that cannot describe the model the spec builds, named; None when all agree."""
    spec: ModelSpec = data["model_spec"]
    classes = data["classes"]
    if not isinstance(classes, list | tuple) or not all(isinstance(c, str) for c in classes):
        return f"'classes' must be a list of class names, got {type(classes).__name__}"
    if len(classes) != spec.num_classes:
        return f"'classes' has {len(classes)} names but the model has {spec.num_classes} outputs"
    size = data["input_size"]
    if not isinstance(size, int) or isinstance(size, bool) or not 8 <= size <= 4096:
        return f"'input_size' must be a whole number of pixels in 8..4096, got {size!r}"
    for name in ("mean", "std"):
        values = data[name]
        if (
            not isinstance(values, list | tuple)
            or len(values) != 3
            or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values)
        ):
            return f"'{name}' must be 3 numbers (R, G, B), got {values!r}"
    if not all(v > 0 for v in data["std"]):
        return f"'std' must be positive, got {data['std']!r}"
    if not isinstance(data.get("data", ""), str | None):
        return f"'data' must be the --data spec it was trained on (a string), got {data['data']!r}"
    if not isinstance(data["state_dict"], dict) or not all(
        isinstance(v, torch.Tensor) for v in data["state_dict"].values()
    ):
        return "'state_dict' must map names to tensors"
    return None


def state_checksum(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def verify_checksum(data: dict[str, Any], path: Path) -> None:
    """Checkpoints since this version carry the checksum of their tensors; older ones load without one."""
    stored = data.get("checksum")
    if stored is None:
        return
    if not isinstance(stored, dict) or stored.get("algorithm") != "sha256":
        raise CheckpointError(f"{path} has an unreadable checksum entry")
    if state_checksum(data["state_dict"]) != stored.get("state_dict"):
        raise CheckpointError(
            f"{path} is corrupt: its weights do not match their sha256 checksum "
            "(a damaged copy?); use another copy or retrain"
        )


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model's spec and weights, what its inputs are, where it came from.

    ``extra`` keeps what only training reads back (optimizer state, the train config, the best
    top-1 so far), so a resumed run continues exactly.
    """

    spec: ModelSpec
    state_dict: dict[str, torch.Tensor]
    classes: list[str]
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    data: str = ""  # the --data spec it was trained on
    epoch: int | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Checkpoint:
        """Read and validate; :class:`CheckpointError` with a one-line reason otherwise."""
        data = load_checkpoint(path)
        known = {
            "format",
            "version",
            "spec",
            "model_spec",
            "state_dict",
            "classes",
            "input_size",
            "mean",
            "std",
            "data",
            "epoch",
            "metrics",
            "provenance",
            "checksum",
        }
        return cls(
            spec=data["model_spec"],
            state_dict=data["state_dict"],
            classes=list(data["classes"]),
            input_size=int(data["input_size"]),
            mean=tuple(data["mean"]),
            std=tuple(data["std"]),
            data=str(data.get("data") or ""),
            epoch=data.get("epoch"),
            metrics=list(data.get("metrics", [])),
            provenance=dict(data.get("provenance", {})),
            extra={k: v for k, v in data.items() if k not in known},
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically, in the on-disk layout every deepsquare version reads."""
        return save_checkpoint(
            path,
            {
                "spec": self.spec.to_dict(),
                "state_dict": self.state_dict,
                "classes": list(self.classes),
                "input_size": self.input_size,
                "mean": list(self.mean),
                "std": list(self.std),
                "data": self.data,
                "epoch": self.epoch,
                "metrics": self.metrics,
                "provenance": self.provenance,
                **self.extra,
            },
        )

    def build_model(self) -> SquareNet:
        """The model, rebuilt from the spec, weights loaded strictly, in eval mode."""
        try:
            model = build_from_spec(self.spec)
        except ValueError as exc:
            raise CheckpointError(f"checkpoint describes a model this deepsquare cannot build: {exc}") from exc
        try:
            model.load_state_dict(self.state_dict, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"checkpoint weights do not fit its model spec: {str(exc).splitlines()[0]}") from exc
        return model.eval()

    def bundle_meta(self) -> dict[str, Any]:
        """What the deployed bundle repeats (``deepsquare.runtime.bundle.BundleMeta(**meta)``)."""
        return {
            "arch": self.spec.arch,
            "variant": self.spec.variant,
            "classes": list(self.classes),
            "input_size": self.input_size,
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
        }

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """NCHW images in [0, 1] -> ``(x - mean) / std``: the one normalisation of training and export."""
        return normalize(images, self.mean, self.std)


def normalize(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """``(x - mean) / std`` per channel of an NCHW batch in [0, 1]."""
    shape = (1, len(mean), 1, 1)
    return (images - torch.tensor(mean, device=images.device).view(shape)) / torch.tensor(
        std, device=images.device
    ).view(shape)

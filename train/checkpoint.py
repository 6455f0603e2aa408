"""The checkpoint: one file holding everything export needs, loaded without running code.

Written with ``torch.save`` and read with ``torch.load(weights_only=True)``: only tensors and
plain containers are accepted, so a file carrying a pickled object is refused, never run.
Writes go to a temporary file in the same folder, are fsynced, then renamed into place: a
crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from .models import SquareNet, build_from_spec
from .spec import ModelSpec

FORMAT = "deepsquare-checkpoint"
VERSION = 1
REQUIRED = ("format", "version", "spec", "state_dict", "classes", "input_size", "mean", "std")


class CheckpointError(ValueError):
    """A file that is not a usable deepsquare checkpoint; the message says why."""


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Atomically write ``payload`` (plus format tags) to ``path``."""
    path = Path(path)
    data = {"format": FORMAT, "version": VERSION, **payload}
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ValueError(f"checkpoint payload lacks {', '.join(missing)}")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
        kind = "a plain state dict" if isinstance(data, dict) and data and all(
            isinstance(v, torch.Tensor) for v in data.values()
        ) else type(data).__name__  # fmt: skip
        raise CheckpointError(f"{path} is not a deepsquare checkpoint (found {kind}); train one with deepsquare-train")
    if data.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {data.get('version')}; this deepsquare reads {VERSION}")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}")
    try:
        data["model_spec"] = ModelSpec.from_dict(data["spec"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} has an invalid model spec: {exc}") from exc
    return data


def model_from_checkpoint(data: dict[str, Any]) -> SquareNet:
    """Rebuild the model of a loaded checkpoint (eval mode) and load its weights strictly."""
    try:
        model = build_from_spec(data["model_spec"])
    except ValueError as exc:
        raise CheckpointError(f"checkpoint describes a model this deepsquare cannot build: {exc}") from exc
    try:
        model.load_state_dict(data["state_dict"], strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint weights do not fit its model spec: {str(exc).splitlines()[0]}") from exc
    return model.eval()


# TEMPORARY SHIM (lead's local testing; replaced by the train-side restructure)
from dataclasses import dataclass, field  # noqa: E402


@dataclass
class Checkpoint:
    spec: ModelSpec
    state_dict: dict
    classes: list
    input_size: int
    mean: tuple
    std: tuple
    data: str = ""
    epoch: int | None = None
    metrics: list = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path):
        d = load_checkpoint(path)
        return cls(
            d["model_spec"],
            d["state_dict"],
            list(d["classes"]),
            int(d["input_size"]),
            tuple(d["mean"]),
            tuple(d["std"]),
            str(d.get("data", "")),
            d.get("epoch"),
            d.get("metrics", []),
            d.get("provenance", {}),
        )

    def build_model(self):
        return model_from_checkpoint({"model_spec": self.spec, "state_dict": self.state_dict})

    def bundle_meta(self):
        return {
            "arch": self.spec.arch,
            "variant": self.spec.variant,
            "classes": list(self.classes),
            "input_size": self.input_size,
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
        }

    def normalize(self, images):
        return (images - torch.tensor(self.mean).view(1, 3, 1, 1)) / torch.tensor(self.std).view(1, 3, 1, 1)

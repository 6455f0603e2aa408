"""The deployed model bundle: exported files plus ``model.json``, the metadata sidecar.

``model.json`` is what the apps and the runners read: class names, input size, mean/std,
per-format file and tensor layout, the variant and where it came from.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SIDECAR = "model.json"
SCHEMA = "deepsquare-bundle/1"


class BundleError(ValueError):
    """A bundle folder that cannot be used; the message says what is missing."""


@dataclass
class FormatEntry:
    file: str
    layout: str  # "NCHW", "NHWC" or "image" (Core ML ImageType)
    input_name: str
    output_name: str
    precision: str = "fp32"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class BundleMeta:
    arch: str
    variant: str
    classes: list[str]
    input_size: int
    mean: list[float]
    std: list[float]
    pixel_range: str = "0-1"  # pixels are scaled to [0, 1] before (x - mean) / std
    formats: dict[str, FormatEntry] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    schema: str = SCHEMA

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    def flat_metadata(self) -> dict[str, str]:
        """String key/values for formats that embed metadata (ONNX, Core ML)."""
        return {
            "deepsquare.schema": self.schema,
            "deepsquare.arch": self.arch,
            "deepsquare.variant": self.variant,
            "deepsquare.classes": json.dumps(self.classes),
            "deepsquare.input_size": str(self.input_size),
            "deepsquare.mean": json.dumps(self.mean),
            "deepsquare.std": json.dumps(self.std),
            "deepsquare.pixel_range": self.pixel_range,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BundleMeta:
        data = dict(data)
        if data.get("schema") != SCHEMA:
            raise BundleError(f"unknown bundle schema {data.get('schema')!r}; expected {SCHEMA}")
        data["formats"] = {k: FormatEntry(**v) for k, v in data.get("formats", {}).items()}
        return cls(**data)


def load_bundle(folder: str | Path) -> tuple[Path, BundleMeta]:
    folder = Path(folder)
    sidecar = folder / SIDECAR
    if not sidecar.is_file():
        raise BundleError(f"{folder} is not a deepsquare bundle: {SIDECAR} is missing (run deepsquare-export first)")
    try:
        meta = BundleMeta.from_dict(json.loads(sidecar.read_text()))
    except (json.JSONDecodeError, TypeError) as exc:
        raise BundleError(f"{sidecar} is not a valid bundle sidecar: {exc}") from exc
    return folder, meta

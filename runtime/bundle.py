"""The deployed model bundle: exported files plus ``model.json``, the metadata sidecar.

``model.json`` is what the apps and the runners read: class names, input size, mean/std,
per-format file and tensor layout, the variant and where it came from.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
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
    def from_dict(cls, data: Any) -> BundleMeta:
        """Checked field by field: a wrong type or value is a :class:`BundleError` naming the field."""
        if not isinstance(data, dict):
            raise BundleError(f"expected a JSON object, found {type(data).__name__}")
        if data.get("schema") != SCHEMA:
            raise BundleError(f"unknown bundle schema {data.get('schema')!r}; expected {SCHEMA}")
        known = {f.name for f in fields(cls)}
        missing = sorted({"arch", "variant", "classes", "input_size", "mean", "std"} - set(data))
        if missing:
            raise BundleError(f"missing field(s) {', '.join(missing)}")
        for name in ("arch", "variant", "pixel_range"):
            if name in data and not isinstance(data[name], str):
                raise BundleError(f"{name!r} must be a string, got {data[name]!r}")
        classes = data["classes"]
        if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
            raise BundleError(f"'classes' must be a non-empty list of strings, got {str(classes)[:60]}")
        size = data["input_size"]
        if not isinstance(size, int) or isinstance(size, bool) or not 8 <= size <= 4096:
            raise BundleError(f"'input_size' must be a whole number of pixels in 8..4096, got {size!r}")
        for name in ("mean", "std"):
            values = data[name]
            if (
                not isinstance(values, list)
                or len(values) != 3
                or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values)
            ):
                raise BundleError(f"{name!r} must be 3 numbers (R, G, B), got {values!r}")
        if any(v <= 0 for v in data["std"]):
            raise BundleError(f"'std' must be positive, got {data['std']!r}")
        formats = data.get("formats", {})
        if not isinstance(formats, dict):
            raise BundleError(f"'formats' must be an object, got {type(formats).__name__}")
        entries = {}
        for name, entry in formats.items():
            try:
                entries[name] = FormatEntry(**entry)
            except TypeError as exc:
                raise BundleError(f"format entry {name!r} is malformed: {exc}") from exc
            if not isinstance(entries[name].file, str) or not entries[name].file:
                raise BundleError(f"format entry {name!r} has no file name")
        values = {k: v for k, v in data.items() if k in known}
        values["formats"] = entries
        return cls(**values)


def load_bundle(folder: str | Path) -> tuple[Path, BundleMeta]:
    """Read and check ``folder/model.json``; every listed file must lie inside ``folder``."""
    folder = Path(folder)
    sidecar = folder / SIDECAR
    if not sidecar.is_file():
        raise BundleError(f"{folder} is not a deepsquare bundle: {SIDECAR} is missing (run deepsquare-export first)")
    try:
        meta = BundleMeta.from_dict(json.loads(sidecar.read_bytes().decode("utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise BundleError(f"{sidecar} is not valid JSON ({exc}); re-export the bundle") from exc
    except BundleError as exc:
        raise BundleError(f"{sidecar} is not a valid bundle sidecar: {exc}") from exc
    except OSError as exc:
        raise BundleError(f"cannot read {sidecar}: {exc.strerror or exc}") from exc
    root = folder.resolve()
    for name, entry in meta.formats.items():
        target = (folder / entry.file).resolve()
        if target.parent != root:
            raise BundleError(
                f"{sidecar}: the {name} entry {entry.file!r} points outside the bundle folder; refusing to follow it"
            )
    return folder, meta

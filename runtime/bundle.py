"""The deployed model bundle: exported files plus ``model.json``, the metadata sidecar.

``model.json`` is what the apps and the runners read: class names, input size, mean/std,
per-format file and tensor layout, the variant and where it came from, and the sha256 of each model
file (``"sha256": {file name: hex digest}``, see :func:`model_sha256`): a runner refuses a model file
whose bytes are not the ones exported with this sidecar. Bundles written before the hashes load unchecked.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

SIDECAR = "model.json"
SCHEMA = "deepsquare-bundle/1"
_HEX64 = re.compile(r"[0-9a-f]{64}")


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
    sha256: dict[str, str] = field(default_factory=dict)  # model file name -> model_sha256(); {}: not checked

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
        hashes = data.get("sha256", {})
        if not isinstance(hashes, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and _HEX64.fullmatch(v) for k, v in hashes.items()
        ):
            raise BundleError(f"'sha256' must map file names to 64 hex digits, got {str(hashes)[:60]}")
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


def model_sha256(path: Path) -> str:
    """The sha256 hex digest of a model file. Of a model folder (``.mlpackage``): the sha256 over its files in
    sorted order of their relative POSIX paths, each fed as ``PATH\\0DIGEST\\n`` (DIGEST: the file's own sha256
    hex digest), so a renamed, added, removed or changed file changes it."""

    def of_file(file: Path) -> str:
        digest = hashlib.sha256()
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    if not path.is_dir():
        return of_file(path)
    digest = hashlib.sha256()
    for name in sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()):
        digest.update(f"{name}\0{of_file(path / name)}\n".encode())
    return digest.hexdigest()


def check_model_file(path: Path, meta: BundleMeta) -> None:
    """Refuse a model file whose bytes are not those ``model.json`` recorded (no record: not checked)."""
    expected = meta.sha256.get(path.name)
    if expected is None:
        return
    try:
        found = model_sha256(path)
    except OSError as exc:
        raise BundleError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if found != expected:
        raise BundleError(
            f"cannot load {path}: not the file this bundle's model.json was exported with (sha256 {found[:12]}..., "
            f"expected {expected[:12]}...): replaced or damaged; re-export the bundle"
        )

"""The deployed model bundle: exported files plus ``model.json``, the metadata sidecar.

``model.json`` is what the apps and the runners read: the bundle's id, class names, input size, mean/std, the
input kind, per-format file, tensor layout and input dtype, the variant and where it came from, the golden
self-check and first-screen samples files, and the sha256 of each model file (``"sha256": {file name: hex
digest}``, see [model_sha256][deepsquare.runtime.bundle.model_sha256]): a runner refuses a model file whose bytes
are not the ones exported with this sidecar. Its contract is the JSON Schema ``bundle.schema.json``
(``deepsquare.runtime.schema``), checked when a bundle is written and when it is read; what a schema cannot say
(files inside the folder, finite numbers, the hashes) is checked here by hand. A ``deepsquare-bundle/1``
sidecar still loads: float input, no id, no golden file, no samples.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

SIDECAR = "model.json"
SCHEMA = "deepsquare-bundle/2"
SCHEMA_V1 = "deepsquare-bundle/1"  # still read: see BundleMeta.from_dict
GOLDEN_FILE = "golden.json"
SAMPLES_FILE = "samples.json"


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
    # "float32": normalized float in ``layout``; "uint8": raw RGB pixels uint8 [N, H, W, 3] (layout "NHWC"),
    # /255, -mean, /std and the layout change inside the graph; "image": Core ML ImageType (takes pixels itself)
    input_dtype: str = "float32"


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
    input: str = "float"  # what ``deepsquare export --input`` was: "float" or "uint8"
    id: str = field(default_factory=lambda: str(uuid.uuid4()))  # the model files' embedded metadata has it too
    golden: str | None = None  # GOLDEN_FILE when the bundle has the golden self-check
    samples: str | None = None  # SAMPLES_FILE when the bundle has first-screen samples

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
            "deepsquare.input": self.input,
            "deepsquare.id": self.id,
        }

    def check(self) -> None:
        """Raise [BundleError][deepsquare.runtime.bundle.BundleError] naming the field when this sidecar does not
        follow the schema (the export's last check before it publishes)."""
        BundleMeta.from_dict(json.loads(self.to_json()))

    @classmethod
    def from_dict(cls, data: Any) -> BundleMeta:
        """Checked against the schema, then by hand where it cannot say: a wrong field is a
        [BundleError][deepsquare.runtime.bundle.BundleError] naming it."""
        from .schema import SchemaError, check

        if not isinstance(data, dict):
            raise BundleError(f"expected a JSON object, found {type(data).__name__}")
        if data.get("schema") not in (SCHEMA, SCHEMA_V1):
            raise BundleError(
                f"schema: unknown bundle schema {data.get('schema')!r}; this deepsquare reads {SCHEMA} and "
                f"{SCHEMA_V1} (a newer deepsquare wrote it? upgrade deepsquare, or re-export the bundle)"
            )
        try:
            check(data)
        except SchemaError as exc:
            raise BundleError(str(exc)) from None
        for name in ("mean", "std"):  # JSON has no NaN, but Python's reader takes it
            if not all(math.isfinite(v) for v in data[name]):
                raise BundleError(f"{name}: must be 3 finite numbers (R, G, B), got {data[name]!r}")
        if data["schema"] == SCHEMA_V1:
            data = upgrade_v1(data)
        known = {f.name for f in fields(cls)}
        entry_fields = {f.name for f in fields(FormatEntry)}
        values = {k: v for k, v in data.items() if k in known}
        values["formats"] = {
            name: FormatEntry(**{k: v for k, v in entry.items() if k in entry_fields})
            for name, entry in data.get("formats", {}).items()
        }
        return cls(**values)


def upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A ``deepsquare-bundle/1`` sidecar as this version reads it: every model takes normalized float input
    (Core ML: a picture), no id (""), no golden file, no samples. The schema field stays ``/1``."""
    formats = {
        name: {**entry, "input_dtype": "image" if entry.get("layout") == "image" else "float32"}
        for name, entry in data.get("formats", {}).items()
    }
    return {**data, "formats": formats, "input": "float", "id": "", "golden": None, "samples": None}


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

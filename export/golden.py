"""The bundle contract files, written into the staging folder before it is published.

- ``model.schema.json``: a copy of the JSON Schema that ``model.json`` follows (``deepsquare.runtime.schema``).
- ``golden.png`` + ``golden.json``: the golden self-check. One held-out image of the parity data (the first real
  one), RGB uint8 at exactly the input size: the pixels every model of the bundle is fed, no resize. For it,
  ``golden.json`` holds the PyTorch deploy model's logits and top-5 (``reference``) and, per format, what that
  file's own runtime returned here (``measured: true``), or, for a format that cannot run here (Core ML off
  macOS), the PyTorch softmax probabilities (``measured: false``), with the ``tolerance`` an app's result must
  keep to. ``deepsquare predict BUNDLE --self-check`` and the apps feed ``golden.png`` through their own path and
  compare (``deepsquare.runtime.self_check``).
- ``samples/N.png`` + ``samples.json``: up to 8 held-out test images (the test split; val where the data has none)
  with their true labels, spread over the classes: the web app's first screen.

Without the data set (``--samples 0``, or a data set that no longer loads) the golden image is a fixed pseudo-random
one with label null, and the bundle has no samples.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepsquare.runtime.bundle import GOLDEN_FILE, SAMPLES_FILE, SIDECAR, BundleError, BundleMeta
from deepsquare.runtime.files import write_text_atomically
from deepsquare.runtime.formats import FORMATS
from deepsquare.runtime.runners import RuntimeUnavailable, top_k
from deepsquare.runtime.schema import BUNDLE_COPY, GOLDEN, SAMPLES, SCHEMA_FILE, SchemaError, check
from deepsquare.train.checkpoint import normalize
from deepsquare.train.data import DataBundle

from .parity import TOLERANCES
from .request import ExportError

GOLDEN_SCHEMA = "deepsquare-golden/1"
GOLDEN_IMAGE = "golden.png"
SAMPLES_DIR = "samples"
MAX_SAMPLES = 8
INT8_TOLERANCE = 0.1  # of the output's range: int8 kernels round differently from one runtime to the next


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """NCHW images in [0, 1] -> NHWC uint8 RGB, as a PNG holds them."""
    return np.clip(np.rint(images.numpy() * 255.0), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


def golden_image(data: DataBundle | None, size: int, seed: int = 0) -> tuple[np.ndarray, str | None]:
    """The first real parity image (``data.val``'s first) and its class name; without data, a fixed noise image."""
    if data is None:
        return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8), None
    return to_uint8(data.val.images[:1])[0], data.classes[int(data.val.labels[0])]


def pick_samples(data: DataBundle | None, count: int = MAX_SAMPLES) -> list[tuple[np.ndarray, str]]:
    """Up to ``count`` held-out images, spread over the classes: the first of each class in turn, class by class
    in the data's class order, then the second of each, and so on."""
    if data is None:
        return []
    split = data.test if data.test is not None else data.val
    labels = split.labels.numpy()
    by_class = [np.flatnonzero(labels == c) for c in range(len(data.classes))]
    chosen: list[int] = []
    for rank in range(max((len(found) for found in by_class), default=0)):
        chosen += [int(found[rank]) for found in by_class if rank < len(found)][: count - len(chosen)]
        if len(chosen) >= count:
            break
    pixels = to_uint8(split.images[chosen]) if chosen else []
    return [(image, data.classes[int(labels[i])]) for image, i in zip(pixels, chosen, strict=True)]


def save_png(pixels: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(pixels, "RGB").save(path, format="PNG")


def write_samples(staging: Path, samples: list[tuple[np.ndarray, str]]) -> str | None:
    """``samples/N.png`` and ``samples.json``; the sidecar's ``samples`` value (None: no samples)."""
    if not samples:
        return None
    (staging / SAMPLES_DIR).mkdir()
    listed = []
    for i, (pixels, label) in enumerate(samples):
        name = f"{SAMPLES_DIR}/{i}.png"
        save_png(pixels, staging / name)
        listed.append({"file": name, "label": label})
    write_checked(staging / SAMPLES_FILE, listed, SAMPLES)
    return SAMPLES_FILE


def write_checked(path: Path, document: Any, definition: str) -> None:
    """Write a contract file, validated first: a file that breaks the schema is a bug, and nothing is published."""
    try:
        check(document, definition)
    except SchemaError as exc:
        raise ExportError(f"this export wrote an invalid {path.name} ({exc}); nothing was published (a bug)") from exc
    write_text_atomically(path, json.dumps(document, indent=1) + "\n")


def golden_tolerance(precision: str, values: np.ndarray, measured: bool) -> float:
    """The max |diff| an app's result may show against ``values``: the parity bound of the precision (relative to
    the outputs' scale, at least 1), twice over for measured values (this runtime and the app's are each within
    the bound of PyTorch); int8: a tenth of the outputs' range."""
    scale = max(1.0, float(np.abs(values).max()))
    bound = TOLERANCES[precision]["max_abs"]
    if not np.isfinite(bound):
        return float(INT8_TOLERANCE * scale)
    return float(f"{bound * scale * (2 if measured else 1):.3g}")


def pairs(scores: np.ndarray, classes: list[str], probabilities: bool) -> list[list[Any]]:
    return [[label, p] for label, p in top_k(scores, classes, 5, probabilities)]


def format_values(
    staging: Path, name: str, meta: BundleMeta, pixels: np.ndarray, logits: np.ndarray, log: Callable[[str], None]
) -> dict[str, Any]:
    """What format ``name``'s file returns for the golden pixels, through the path ``deepsquare predict`` takes
    (the runner reads the staged bundle); where it cannot run here, PyTorch's softmax probabilities."""
    from deepsquare.runtime.predictor import load

    fmt, entry = FORMATS[name], meta.formats[name]
    outputs = entry.extra.get("outputs", fmt.outputs)
    values: np.ndarray | None = None
    if fmt.runs_here():
        try:
            values = np.asarray(load(staging, runtime=name).scores([pixels])[0], dtype=np.float64)
        except RuntimeUnavailable as exc:
            log(f"golden: {name} not run here ({exc}); its values are PyTorch's")
    measured = values is not None
    if values is None:
        outputs = "probabilities"
        values = torch.softmax(torch.from_numpy(logits).double(), 0).numpy()
    return {
        "outputs": outputs,
        "values": [float(v) for v in values],
        "top5": pairs(values, meta.classes, outputs == "probabilities"),
        "tolerance": golden_tolerance(entry.precision, values, measured),
        "measured": measured,
    }


def write_contract_files(
    staging: Path, meta: BundleMeta, model: torch.nn.Module, data: DataBundle | None, log: Callable[[str], None]
) -> None:
    """Write the schema copy, the samples and the golden self-check into ``staging``; set ``meta.golden`` and
    ``meta.samples``. Leaves ``staging/model.json`` written (the runners read it) and checked."""
    shutil.copyfile(SCHEMA_FILE, staging / BUNDLE_COPY)
    samples = pick_samples(data)
    meta.samples = write_samples(staging, samples)
    meta.golden = GOLDEN_FILE
    try:
        meta.check()
    except BundleError as exc:
        raise ExportError(f"this export wrote an invalid model.json ({exc}); nothing was published (a bug)") from exc
    write_text_atomically(staging / SIDECAR, meta.to_json())
    pixels, label = golden_image(data, meta.input_size)
    save_png(pixels, staging / GOLDEN_IMAGE)
    batch = torch.from_numpy(pixels.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        logits = model(normalize(batch, tuple(meta.mean), tuple(meta.std)))[0].double().numpy()
    golden = {
        "schema": GOLDEN_SCHEMA,
        "image": GOLDEN_IMAGE,
        "label": label,
        "reference": {"logits": [float(v) for v in logits], "top5": pairs(logits, meta.classes, False)},
        "formats": {name: format_values(staging, name, meta, pixels, logits, log) for name in meta.formats},
    }
    write_checked(staging / GOLDEN_FILE, golden, GOLDEN)
    found = ", ".join(f"{name} {v['top5'][0][0]}" for name, v in golden["formats"].items())
    log(f"golden self-check: {GOLDEN_IMAGE} (label {label}): {found}; {len(samples)} samples for the first screen")

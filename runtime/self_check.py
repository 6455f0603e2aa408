"""The golden self-check of a bundle (``deepsquare predict BUNDLE --self-check``), no torch.

The export wrote ``golden.png`` (RGB uint8 at the model's input size) and, in ``golden.json``, what each format's
runtime returned for it (``deepsquare.export.golden``). Here every format of the bundle that runs on this machine
is fed ``golden.png`` through the path ``deepsquare predict`` takes
([Predictor][deepsquare.runtime.predictor.Predictor]: the bundle's own input kind, float or uint8 pixels) and its
output compared with ``formats[FORMAT].values``: max |diff| <= ``tolerance`` passes. A replaced model file is
refused before that by its sha256.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .bundle import BundleError, BundleMeta, load_bundle
from .formats import FORMATS
from .runners import RuntimeUnavailable
from .schema import GOLDEN, SchemaError, check


@dataclass(frozen=True)
class CheckResult:
    """One format's self-check: passed, failed, or not run here (``skipped``), with the line to print."""

    format: str
    passed: bool
    skipped: bool
    line: str


def read_golden(folder: Path, meta: BundleMeta) -> tuple[dict[str, Any], np.ndarray]:
    """``golden.json`` (checked against the schema) and the pixels of its image, ``(S, S, 3)`` uint8."""
    if not meta.golden:
        raise BundleError(
            f"{folder} has no golden self-check (model.json: golden is null; bundles exported before "
            "deepsquare-bundle/2 have none): re-export it to get golden.png and golden.json"
        )
    path = folder / meta.golden
    try:
        golden = json.loads(path.read_text(encoding="utf-8"))
        check(golden, GOLDEN)
    except FileNotFoundError:
        raise BundleError(f"{path} is missing (model.json lists it): the bundle is incomplete; re-export it") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path} is not valid JSON ({exc}); re-export the bundle") from None
    except SchemaError as exc:
        raise BundleError(f"{path} is not a valid golden file: {exc}") from None
    return golden, read_image(folder / golden["image"], meta.input_size)


def read_image(path: Path, size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            mode, found = image.mode, image.size
            pixels = np.asarray(image)
    except FileNotFoundError:
        raise BundleError(f"{path} is missing: the bundle is incomplete; re-export it") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise BundleError(f"{path} is not a readable PNG ({exc}); re-export the bundle") from None
    if mode != "RGB" or found != (size, size):
        raise BundleError(f"{path} must be an RGB image of {size}x{size} (the model's input), found {mode} {found}")
    return pixels


def check_format(folder: Path, name: str, golden: dict[str, Any], pixels: np.ndarray, threads: int) -> CheckResult:
    """Run one format on the golden pixels and compare with what the export recorded."""
    from .predictor import load

    expected = golden["formats"].get(name)
    if expected is None:
        return CheckResult(name, False, False, f"{name}: self-check FAILED: golden.json has no values for {name}")
    fmt = FORMATS.get(name)
    if fmt is None or not fmt.runs_here():
        where = f"needs {'macOS' if fmt and fmt.runs_on == 'Darwin' else fmt.runs_on if fmt else 'another deepsquare'}"
        return CheckResult(name, False, True, f"{name}: self-check not run here ({where})")
    try:
        predictor = load(folder, runtime=name, threads=threads)
    except RuntimeUnavailable as exc:
        return CheckResult(name, False, True, f"{name}: self-check not run here ({exc})")
    got = np.asarray(predictor.scores([pixels])[0], dtype=np.float64)
    want = np.asarray(expected["values"], dtype=np.float64)
    if got.shape != want.shape:
        return CheckResult(
            name, False, False, f"{name}: self-check FAILED: the model gives {got.size} scores, golden.json {want.size}"
        )
    diff = float(np.abs(got - want).max())
    tolerance = float(expected["tolerance"])
    if not diff <= tolerance:  # NaN fails too
        top = predictor.classes[int(got.argmax())]
        return CheckResult(
            name,
            False,
            False,
            f"{name}: self-check FAILED: max |diff| {diff:.2g} > {tolerance:.0e} against golden.json "
            f"(top-1 here {top!r}, recorded {expected['top5'][0][0]!r}): the model or golden.json was changed "
            "since the export",
        )
    return CheckResult(name, True, False, f"{name}: self-check passed (max |diff| {diff:.2g} <= {tolerance:.0e})")


def self_check(bundle: str | Path, formats: list[str] | None = None, threads: int = 1) -> list[CheckResult]:
    """Self-check every format of the bundle (or those named) against ``golden.json``.

    Raises:
        BundleError: not a bundle, no golden files or damaged ones, a format it does not have, a replaced model file.
    """
    folder, meta = load_bundle(bundle)
    golden, pixels = read_golden(folder, meta)
    names = formats or list(meta.formats)
    missing = [name for name in names if name not in meta.formats]
    if missing:
        raise BundleError(f"bundle {folder} has no {', '.join(missing)} model (it has: {', '.join(meta.formats)})")
    return [check_format(folder, name, golden, pixels, threads) for name in names]

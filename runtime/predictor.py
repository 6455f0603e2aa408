"""``deepsquare.load(bundle)``: an exported bundle as a predictor, in any runtime that runs here (no torch).

    >>> import deepsquare as ds
    >>> model = ds.load("runs/sq/export")             # the first format of the bundle that runs here
    >>> model.predict("photo.jpg", top=3)
    [Prediction(label='cat', probability=0.91), ...]
    >>> ds.load("runs/sq/export", runtime="litert").predict(pil_image)

An image is decoded and resized as everywhere in deepsquare (the one loader, ``deepsquare.runtime.images``:
EXIF orientation applied, then the whole image resized with Pillow's BILINEAR to the model's square input, no
crop, aspect ratio not kept) to uint8 RGB pixels. A bundle exported with ``--input uint8`` takes those pixels as
they are (its graphs normalize inside); a float bundle gets them normalized with the bundle's mean and std, as
in training. The resize is the one step an app does itself, by this rule, for either kind of bundle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .bundle import BundleError, BundleMeta, load_bundle
from .formats import FORMATS, Format
from .images import ImageError, load_rgb
from .preprocess import normalize_nchw
from .runners import Runner, open_runner, top_k


@dataclass(frozen=True)
class Prediction:
    """One label of an image's top-k and its probability (softmax of the model's logits)."""

    label: str
    probability: float


def choose_format(meta: BundleMeta, folder: Path, runtime: str | None) -> Format:
    """The format to run: by runtime or format name, or the bundle's first that runs here."""
    if runtime is None:
        runnable = [name for name in FORMATS if name in meta.formats and FORMATS[name].runs_here()]
        if not runnable:
            listed = ", ".join(meta.formats) or "none"
            raise BundleError(f"bundle {folder} has no model that runs on this machine (it has: {listed})")
        return FORMATS[runnable[0]]
    by_name = {fmt.runtime: fmt for fmt in FORMATS.values()} | FORMATS
    if runtime not in by_name:
        names = sorted({*FORMATS, *(f.runtime for f in FORMATS.values())})
        raise BundleError(f"unknown runtime or format {runtime!r}; valid: {', '.join(names)}")
    return by_name[runtime]


def to_pixels(image: Any, size: int) -> np.ndarray:
    """A path, a ``PIL.Image`` or an ``(H, W, 3)`` uint8 RGB array -> float32 HWC in [0, 1] at ``size``."""
    return to_uint8(image, size).astype(np.float32) / 255.0


def to_uint8(image: Any, size: int) -> np.ndarray:
    """A path, a ``PIL.Image`` or an ``(H, W, 3)`` uint8 RGB array -> uint8 ``(size, size, 3)`` RGB pixels: the
    whole image resized with Pillow's BILINEAR (an array already at ``size`` is left as it is)."""
    from PIL import Image

    if isinstance(image, (str, Path)):
        image = load_rgb(image)
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ImageError(f"an image array must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
        if image.shape[:2] == (size, size):
            return np.ascontiguousarray(image)
        image = Image.fromarray(image, "RGB")
    if hasattr(image, "resize") and hasattr(image, "mode"):  # a PIL image
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        return np.asarray(rgb.resize((size, size), Image.BILINEAR), dtype=np.uint8)
    raise ImageError(f"cannot predict on a {type(image).__name__}: give a file path, a PIL image or a uint8 array")


class Predictor:
    """One model of a bundle, open in its runtime. Create it with [load][deepsquare.runtime.predictor.load]."""

    def __init__(self, folder: Path, fmt: Format, runner: Runner, meta: BundleMeta) -> None:
        self.folder, self.format, self.runner, self.meta = folder, fmt.name, runner, meta
        self.runtime = fmt.runtime
        self._probabilities = fmt.outputs == "probabilities"

    @property
    def classes(self) -> list[str]:
        return list(self.meta.classes)

    def scores(self, images: list[Any]) -> np.ndarray:
        """The model's raw output for several images, ``(N, num_classes)`` (logits; Core ML: probabilities)."""
        pixels = np.stack([to_uint8(image, self.meta.input_size) for image in images])
        return self._run(pixels)

    def _run(self, pixels: np.ndarray) -> np.ndarray:
        """``(N, H, W, 3)`` uint8 pixels, or float32 in [0, 1] (pixel levels / 255) -> the model's scores."""
        if getattr(self.runner, "input_dtype", "float32") == "float32":  # normalized here, as in training
            values = pixels.astype(np.float32) / 255.0 if pixels.dtype == np.uint8 else pixels
            scores = self.runner.run(normalize_nchw(values, self.meta))
        else:  # a graph that takes the pixels (--input uint8, Core ML's ImageType): straight in
            if pixels.dtype != np.uint8:
                pixels = np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)
            scores = self.runner.run_pixels(pixels)
        if scores.shape[-1] != len(self.meta.classes):
            raise BundleError(
                f"{self.folder}: the {self.format} model gives {scores.shape[-1]} scores but model.json lists "
                f"{len(self.meta.classes)} classes; the bundle is inconsistent: re-export it"
            )
        return scores

    def predict(self, image: Any, top: int = 5) -> list[Prediction]:
        """The ``top`` labels of one image (a file path, a PIL image, or an ``(H, W, 3)`` uint8 array), best first."""
        return self.predict_pixels(to_uint8(image, self.meta.input_size), top)

    def predict_pixels(self, pixels: np.ndarray, top: int = 5) -> list[Prediction]:
        """The ``top`` labels of one image already at the input size: ``(H, W, 3)`` RGB, uint8 pixels or float32
        in [0, 1] (rounded to pixel levels for a bundle that takes uint8)."""
        if top < 1:
            raise ValueError(f"top must be >= 1, got {top}")
        scores = self._run(pixels[None])[0]
        return [Prediction(label, p) for label, p in top_k(scores, self.meta.classes, top, self._probabilities)]

    def __repr__(self) -> str:
        return f"Predictor({str(self.folder)!r}, format={self.format!r}, classes={len(self.meta.classes)})"


def load(bundle: str | Path, runtime: str | None = None, threads: int = 1) -> Predictor:
    """Open a bundle written by ``deepsquare export`` for prediction.

    Args:
        bundle: the bundle folder (with ``model.json``).
        runtime: ``onnxruntime``, ``litert``, ``executorch``, ``coreml`` (macOS), or a format name (``onnx``,
            ``tflite``, ...); default: the bundle's first format that runs on this machine.
        threads: runtime threads (0: the runtime's choice).

    Returns:
        A [Predictor][deepsquare.runtime.predictor.Predictor]; ``.predict(image)`` gives the top-5
        [Prediction][deepsquare.runtime.predictor.Prediction] s.

    Raises:
        BundleError: not a bundle, no such model in it, or a damaged model file (one line each).
        RuntimeUnavailable: the runtime is not installed here or needs another OS.
    """
    folder, meta = load_bundle(bundle)
    fmt = choose_format(meta, folder, runtime)
    runner, meta = open_runner(folder, fmt.name, threads)
    return Predictor(folder, fmt, runner, meta)


__all__ = ["Prediction", "Predictor", "load"]

"""What every runner shares: the two ways to feed it (normalized float, or pixels) and ``RuntimeUnavailable``.

A runner's file takes one of three inputs (``input_dtype``, as ``model.json`` says): ``"float32"``, the
normalized float the PyTorch model takes; ``"uint8"``, RGB pixels ``[N, H, W, 3]`` with the normalization inside
the graph (``deepsquare export --input uint8``); ``"image"``, a picture (Core ML's ImageType). Every runner
answers both calls, converting where its file wants the other:

- ``run(batch_nchw)``: normalized float32 ``(N, 3, H, W)``, what the PyTorch model takes (a file that takes
  pixels gets the nearest pixels of the denormalized batch: exact when the batch came from pixels);
- ``run_pixels(pixels)``: uint8 ``(N, H, W, 3)`` RGB at the input size (a float file gets them normalized with
  the bundle's mean and std, as ``deepsquare.runtime.preprocess.normalize_nchw`` does).

Both return float32 ``(N, num_classes)``. No torch here.
"""

from __future__ import annotations

import numpy as np

from .bundle import BundleMeta
from .preprocess import normalize_nchw

PIXEL_INPUTS = ("uint8", "image")  # input_dtype of the files that take pixels


class RuntimeUnavailable(RuntimeError):
    """The runtime cannot run here (not installed, or needs another OS)."""


def check_pixels(pixels: np.ndarray) -> np.ndarray:
    """``(N, H, W, 3)`` uint8, C-contiguous; ValueError naming what is wrong otherwise."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[-1] != 3:
        raise ValueError(f"pixels must be (N, H, W, 3) uint8 RGB, got {pixels.shape} {pixels.dtype}")
    return np.ascontiguousarray(pixels)


def pixels_of(batch_nchw: np.ndarray, meta: BundleMeta) -> np.ndarray:
    """Normalized float32 ``(N, 3, H, W)`` -> the nearest uint8 ``(N, H, W, 3)`` pixels (exact for a batch that
    ``normalize_nchw`` made from pixels)."""
    mean = np.asarray(meta.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(meta.std, dtype=np.float32)[:, None, None]
    values = np.rint((np.asarray(batch_nchw, dtype=np.float32) * std + mean) * 255.0)
    return np.clip(values, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1).copy()


def normalized_of(pixels: np.ndarray, meta: BundleMeta) -> np.ndarray:
    """uint8 ``(N, H, W, 3)`` -> normalized float32 ``(N, 3, H, W)``, as ``deepsquare predict`` normalizes."""
    return normalize_nchw(pixels.astype(np.float32) / 255.0, meta)


def pixel_levels(batch_nchw: np.ndarray, meta: BundleMeta | None) -> np.ndarray:
    """``batch_nchw`` as is (no ``meta``), or the normalized batch of its nearest pixels: one image that a float graph
    (fed this) and a uint8 graph (fed ``pixels_of`` this, exactly) both see, for a paired timing of the two."""
    return batch_nchw if meta is None else normalized_of(pixels_of(batch_nchw, meta), meta)


class PixelInput:
    """``run`` and ``run_pixels`` over a runner's ``_run_float`` (normalized NCHW) or ``_run_uint8`` (pixels)."""

    input_dtype: str = "float32"
    meta: BundleMeta | None = None

    def _need_meta(self, call: str) -> BundleMeta:
        if self.meta is None:
            wants = "pixels" if self.input_dtype in PIXEL_INPUTS else "normalized float"
            raise ValueError(f"{call}: this model takes {wants}; converting needs the bundle's mean and std (meta)")
        return self.meta

    def run(self, batch_nchw: np.ndarray) -> np.ndarray:
        """Normalized float32 ``(N, 3, H, W)`` -> float32 ``(N, num_classes)``."""
        if self.input_dtype in PIXEL_INPUTS:
            return self._run_uint8(pixels_of(batch_nchw, self._need_meta("run")))
        return self._run_float(batch_nchw)

    def run_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 RGB ``(N, H, W, 3)`` at the input size -> float32 ``(N, num_classes)``."""
        pixels = check_pixels(pixels)
        if self.input_dtype in PIXEL_INPUTS:
            return self._run_uint8(pixels)
        return self._run_float(normalized_of(pixels, self._need_meta("run_pixels")))

    def _run_float(self, batch_nchw: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _run_uint8(self, pixels: np.ndarray) -> np.ndarray:
        raise NotImplementedError
